//! `secureconnect bench mls`: the Delivery Service under concurrency — commits accepted by
//! compare-and-swap (contended and not) and key-package claims — against the single-row INSERT
//! ceiling of the same database in the same run; then the SDK's MLS costs in a group of 100
//! devices (sc_client::bench) against one Ed25519 signature.

use crate::bench::{Load, drive, tempfile_dir};
use crate::bench_chat::{config, insert_ceiling, register, start};
use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(clap::Args)]
pub struct MlsArgs {
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent committers and claimers (and INSERT loops for the ceiling).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Devices in the SDK's group measurement.
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// PostgreSQL database (the figures the issue asks for); SQLite without it.
    #[arg(long)]
    database_url: Option<String>,
}

struct Device {
    token: String,
    user_id: String,
}

async fn device(client: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<Device> {
    let (token, user_id) = register(client, base, name).await?;
    let key: [u8; 32] = rand::random();
    let r: Value = client
        .put(format!("{base}/v1/devices/me"))
        .bearer_auth(&token)
        .json(&json!({"signature_key": STANDARD.encode(key), "credential": STANDARD.encode(name)}))
        .send()
        .await?
        .json()
        .await?;
    r["data"]["device_id"].as_str().context("device")?;
    Ok(Device { token, user_id })
}

fn report(what: &str, load: &Load, ceiling: f64) {
    println!(
        "{what}: {:.0}/s (errors {}), p50 {:.1} ms, p95 {:.1} ms → {:.2} × the INSERT ceiling",
        load.rate(),
        load.errors,
        load.percentile_ms(0.5),
        load.percentile_ms(0.95),
        load.rate() / ceiling
    );
}

/// `concurrency` loops committing to `rooms` encrypted conversations (several loops per room
/// when rooms < loops): each posts at the epoch it believes current and, on 409, adopts
/// `details.current_epoch`. Counts accepted commits; 409s are reported separately.
async fn commits(
    client: &reqwest::Client,
    base: &str,
    owner: &Device,
    dur: Duration,
    concurrency: usize,
    rooms: usize,
) -> anyhow::Result<(Load, u64)> {
    let mut convs = Vec::new();
    for i in 0..rooms {
        let r: Value = client
            .post(format!("{base}/v1/conversations"))
            .bearer_auth(&owner.token)
            .json(&json!({"kind": "group", "member_ids": [], "title": format!("sealed {i}"), "encrypted": true}))
            .send()
            .await?
            .json()
            .await?;
        let id = r["data"]["id"].as_str().context("create")?.to_string();
        convs.push((id, Arc::new(AtomicU64::new(0))));
    }
    let convs = Arc::new(convs);
    let conflicts = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let commit = STANDARD.encode([7u8; 512]);
    let (client, base, token) = (client.clone(), base.to_string(), owner.token.clone());
    let conflicts2 = conflicts.clone();
    let load = drive(dur, concurrency, move || {
        let (client, base, token, convs, conflicts, commit) = (
            client.clone(),
            base.clone(),
            token.clone(),
            convs.clone(),
            conflicts2.clone(),
            commit.clone(),
        );
        let n = next.fetch_add(1, Ordering::Relaxed) as usize;
        async move {
            let (id, epoch) = &convs[n % convs.len()];
            loop {
                let at = epoch.load(Ordering::Relaxed);
                let r = client
                    .post(format!("{base}/v1/conversations/{id}/mls/commits"))
                    .bearer_auth(&token)
                    .json(&json!({"epoch": at, "commit": commit}))
                    .send()
                    .await;
                let Ok(r) = r else { return false };
                let status = r.status().as_u16();
                let Ok(v) = r.json::<Value>().await else {
                    return false;
                };
                match status {
                    201 => {
                        epoch.fetch_max(at + 1, Ordering::Relaxed);
                        return true;
                    }
                    409 => {
                        conflicts.fetch_add(1, Ordering::Relaxed);
                        let current = v["error"]["details"]["current_epoch"].as_u64();
                        let Some(current) = current else { return false };
                        epoch.fetch_max(current, Ordering::Relaxed);
                    }
                    _ => return false,
                }
            }
        }
    })
    .await;
    Ok((load, conflicts.load(Ordering::Relaxed)))
}

pub async fn mls(args: MlsArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let prefix = format!("scbench:{}:", uuid::Uuid::new_v4().simple());
    let (base, db) = start(config(&dir, args.database_url.as_deref(), None, &prefix)?).await?;
    let dur = Duration::from_secs(args.seconds);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "machine: {cores} cores, {}; backend {}; {}s per measurement; {} loops",
        std::env::consts::ARCH,
        if args.database_url.is_some() {
            "postgresql"
        } else {
            "sqlite"
        },
        args.seconds,
        args.concurrency
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();

    let ceiling = insert_ceiling(&db, dur, args.concurrency).await?;
    println!(
        "single-row INSERT ceiling: {:.0}/s, p95 {:.1} ms",
        ceiling.rate(),
        ceiling.percentile_ms(0.95)
    );
    let ceiling = ceiling.rate();

    let owner = device(&client, &base, &format!("m{run}owner")).await?;
    let (spread, _) = commits(
        &client,
        &base,
        &owner,
        dur,
        args.concurrency,
        args.concurrency,
    )
    .await?;
    report("commits, one committer per conversation", &spread, ceiling);
    let rooms = (args.concurrency / 8).max(1);
    let (contended, conflicts) =
        commits(&client, &base, &owner, dur, args.concurrency, rooms).await?;
    report(
        &format!("commits, 8 committers racing per conversation ({rooms} conversations)"),
        &contended,
        ceiling,
    );
    println!(
        "  409 answers: {conflicts} ({:.1} per accepted commit)",
        conflicts as f64 / contended.requests.max(1) as f64
    );

    // Claims: 600 target users with one device each and 500 packages apiece (never exhausted
    // in a run: a claim that finds fewer than 10 counts as an error); claimers take one package
    // of each of 10 users per request (adding 10 members), the per-caller limit lifted.
    let mut targets = Vec::new();
    for i in 0..600 {
        let d = device(&client, &base, &format!("m{run}t{i}")).await?;
        for _ in 0..5 {
            let packages: Vec<String> = (0..100)
                .map(|_| STANDARD.encode(rand::random::<[u8; 32]>().repeat(8)))
                .collect();
            client
                .post(format!("{base}/v1/keys/packages"))
                .bearer_auth(&d.token)
                .json(&json!({"key_packages": packages}))
                .send()
                .await?
                .error_for_status()?;
        }
        targets.push(d.user_id);
    }
    let mut claimers = Vec::new();
    for i in 0..16 {
        claimers.push(register(&client, &base, &format!("m{run}c{i}")).await?.0);
    }
    let (targets, claimers) = (Arc::new(targets), Arc::new(claimers));
    let packages = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let (c2, b2, p2) = (client.clone(), base.clone(), packages.clone());
    let load = drive(dur, args.concurrency, move || {
        let (client, base, targets, claimers, packages) = (
            c2.clone(),
            b2.clone(),
            targets.clone(),
            claimers.clone(),
            p2.clone(),
        );
        let n = next.fetch_add(1, Ordering::Relaxed) as usize;
        async move {
            let users: Vec<&String> = (0..10)
                .map(|k| &targets[(n * 10 + k) % targets.len()])
                .collect();
            let r = client
                .post(format!("{base}/v1/keys/claim"))
                .bearer_auth(&claimers[n % claimers.len()])
                .json(&json!({"user_ids": users}))
                .send()
                .await;
            let Ok(r) = r else { return false };
            if !r.status().is_success() {
                return false;
            }
            let Ok(v) = r.json::<Value>().await else {
                return false;
            };
            let got = v["data"]["items"].as_array().map_or(0, Vec::len);
            packages.fetch_add(got as u64, Ordering::Relaxed);
            got == 10
        }
    })
    .await;
    report("claims of 10 users each", &load, ceiling);
    println!(
        "  key packages handed out: {:.0}/s → {:.2} × the INSERT ceiling",
        packages.load(Ordering::Relaxed) as f64 / load.elapsed.as_secs_f64(),
        packages.load(Ordering::Relaxed) as f64 / load.elapsed.as_secs_f64() / ceiling
    );

    let members = args.members;
    let t = tokio::task::spawn_blocking(move || sc_client::bench::group_timings(members, 20))
        .await?
        .map_err(|e| anyhow::anyhow!(e))?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let x = |d: Duration| d.as_secs_f64() / t.sign.as_secs_f64();
    println!(
        "SDK, group of {} devices (baseline: one Ed25519 signature of 1 KiB = {:.3} ms):",
        t.members,
        ms(t.sign)
    );
    println!(
        "  add {} devices in one commit: {:.1} ms",
        t.members - 1,
        ms(t.add_all)
    );
    println!("  join from the welcome: {:.1} ms", ms(t.join_welcome));
    println!(
        "  self-update commit: build {:.2} ms ({:.0} ×), process {:.2} ms ({:.0} ×)",
        ms(t.build_commit),
        x(t.build_commit),
        ms(t.process_commit),
        x(t.process_commit)
    );
    println!(
        "  1 KiB message: encrypt {:.3} ms ({:.1} ×), decrypt {:.3} ms ({:.1} ×)",
        ms(t.encrypt),
        x(t.encrypt),
        ms(t.decrypt),
        x(t.decrypt)
    );
    Ok(())
}
