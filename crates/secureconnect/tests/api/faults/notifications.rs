//! Notifications against the real binary: killed with SIGKILL while its worker holds a batch
//! of jobs (the test watches the job table and kills the moment a claim appears, and checks the
//! claim outlived the process), then started again on the same data — once the dead worker's
//! lease runs out, every offline member has exactly one record per message (the unique key and
//! the job's single transaction): none lost, none doubled.

use super::drive::{Api, env};
use super::procs::Server;
use crate::common::Shared;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const MEMBERS: usize = 40;
const PER_ROUND: usize = 30;
/// Rounds at most; the test stops early once two kills landed mid-batch.
const MAX_ROUNDS: usize = 6;

/// Jobs claimed by a worker and not finished.
async fn claimed_jobs(db: &sc_db::Db) -> i64 {
    let sql = "SELECT COUNT(*) FROM notification_jobs WHERE claimed_until IS NOT NULL";
    let n: Result<i64, sqlx::Error> = match db {
        sc_db::Db::Sqlite(p, _) => sqlx::query_scalar(sql).fetch_one(p).await,
        sc_db::Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
    };
    n.unwrap_or(0)
}

/// Message ids of a member's notifications, with how many records each has.
async fn records(api: &Api, token: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/notifications?limit=100&cursor={c}"),
            None => "/v1/notifications?limit=100".to_string(),
        };
        let r = api.call(Method::GET, &path, token, Value::Null).await;
        let page = r.assert_ok(200);
        for n in page["items"].as_array().unwrap() {
            let id = n["data"]["message_id"].as_str().unwrap().to_string();
            *out.entry(id).or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn a_worker_killed_mid_batch_writes_each_record_exactly_once() {
    let shared = Shared::new().await;
    let logs = tempfile::tempdir().unwrap();
    let env = env(
        &shared,
        false,
        &[
            ("SC_MESSAGE_RATE_PER_USER_PER_MINUTE", "100000".into()),
            ("SC_API_RATE_PER_USER_PER_MINUTE", "100000".into()),
        ],
    );
    let mut server = Server::start(env, logs.path()).await;
    let api = Api::new(&server.base);
    let owner = api.register("killnotify").await;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        members.push(api.register(&format!("killnotify{i}")).await);
    }
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let conv = api
        .call(
            Method::POST,
            "/v1/conversations",
            &owner.access,
            json!({"kind": "group", "member_ids": ids, "title": "kill"}),
        )
        .await;
    let conv = conv.assert_ok(201)["id"].as_str().unwrap().to_string();

    let db = secureconnect::app::connect_db(&shared.config())
        .await
        .unwrap();
    let mut sent = Vec::new();
    let mut mid_batch = 0;
    let path = format!("/v1/conversations/{conv}/messages");
    for round in 0..MAX_ROUNDS {
        let sends = (0..PER_ROUND).map(|i| {
            api.call(
                Method::POST,
                &path,
                &owner.access,
                json!({"client_message_id": format!("k{round}-{i}"), "content": "x"}),
            )
        });
        for r in futures_util::future::join_all(sends).await {
            sent.push(r.assert_ok(201)["id"].as_str().unwrap().to_string());
        }
        // Killed the moment a worker holds a batch (or after 2 s without one).
        let watching = Instant::now();
        while claimed_jobs(&db).await == 0 && watching.elapsed() < Duration::from_secs(2) {
            tokio::task::yield_now().await;
        }
        server.kill9();
        if claimed_jobs(&db).await > 0 {
            mid_batch += 1;
        }
        server.restart().await;
        if mid_batch >= 2 {
            break;
        }
    }
    assert!(mid_batch >= 1, "no kill landed while a batch was held");

    // Leases of the killed workers run out; then every record is there once.
    let expected = sent.len();
    let started = Instant::now();
    for m in &members {
        loop {
            let got = records(&api, &m.access).await;
            if got.len() == expected {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "{} has {} of {expected} records",
                m.username,
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for m in &members {
        let got = records(&api, &m.access).await;
        assert_eq!(got.len(), expected, "no record lost");
        assert!(got.values().all(|n| *n == 1), "no record doubled: {got:?}");
        assert!(sent.iter().all(|id| got.contains_key(id)));
    }
}
