//! Every list pages with `{items, next_cursor}`, `limit` and `cursor` (API.md §12 "Lists").

use crate::common::*;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Follows `next_cursor` from the first page to the last; returns every item in order and the
/// number of pages. Each page must hold at most `limit` items and only the last may be short.
async fn walk(app: &TestApp, path: &str, token: &str, limit: usize) -> (Vec<Value>, usize) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (mut items, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let r = app.get(&url, Some(token)).await;
        let data = r.assert_ok(200).clone();
        let page = data["items"].as_array().expect("items").clone();
        assert!(
            page.len() <= limit,
            "{path}: page of {} > {limit}",
            page.len()
        );
        pages += 1;
        items.extend(page.iter().cloned());
        match data["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(page.len(), limit, "{path}: a short page before the last");
                cursor = Some(c.to_string());
            }
            None => {
                assert!(
                    data["next_cursor"].is_null(),
                    "{path}: next_cursor null at the end"
                );
                break;
            }
        }
        assert!(pages < 100, "{path}: paging does not end");
    }
    (items, pages)
}

fn ids(items: &[Value], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[key].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn members_receipts_and_presence_page_with_cursors() {
    let app = TestApp::spawn().await;
    let owner = app.register("pager").await;
    let mut others = Vec::new();
    for i in 0..11 {
        others.push(app.register(&format!("paged{i}")).await);
    }
    let refs: Vec<&TestUser> = others.iter().collect();
    let g = app.group(&owner, &refs).await;

    // Members: 12 in joining order, pages of 5 → 5, 5, 2; no one twice, no one missing.
    let (members, pages) = walk(
        &app,
        &format!("/v1/conversations/{g}/members"),
        &owner.access,
        5,
    )
    .await;
    assert_eq!(pages, 3);
    let member_ids = ids(&members, "user_id");
    let unique: HashSet<&String> = member_ids.iter().collect();
    assert_eq!(unique.len(), 12);
    assert!(unique.contains(&owner.id));
    assert!(others.iter().all(|o| unique.contains(&o.id)));
    let joined: Vec<&str> = members
        .iter()
        .map(|m| m["joined_at"].as_str().unwrap())
        .collect();
    assert!(joined.windows(2).all(|w| w[0] <= w[1]), "joining order");
    // The default page is 20: all 12 and no cursor.
    let all = app
        .get(
            &format!("/v1/conversations/{g}/members"),
            Some(&owner.access),
        )
        .await;
    assert_eq!(all.assert_ok(200)["items"].as_array().unwrap().len(), 12);
    assert!(all.body["data"]["next_cursor"].is_null());

    // Receipts: the same 12 members, by id.
    let (receipts, pages) = walk(
        &app,
        &format!("/v1/conversations/{g}/receipts"),
        &owner.access,
        4,
    )
    .await;
    assert_eq!(pages, 3);
    let receipt_ids = ids(&receipts, "user_id");
    assert_eq!(receipt_ids.iter().collect::<HashSet<_>>(), unique);
    assert!(receipt_ids.windows(2).all(|w| w[0] < w[1]), "id order");

    // Presence: 11 named users who share the group, pages of 3; a stranger is left out.
    let stranger = app.register("pagestranger").await;
    let mut named: Vec<&str> = others.iter().map(|o| o.id.as_str()).collect();
    named.push(&stranger.id);
    let q = format!("/v1/presence?user_ids={}", named.join(","));
    let (presence, pages) = walk(&app, &q, &owner.access, 3).await;
    assert_eq!(pages, 4);
    let seen = ids(&presence, "user_id");
    assert_eq!(seen.len(), 11);
    assert!(!seen.contains(&stranger.id));
    assert!(seen.windows(2).all(|w| w[0] < w[1]));

    // Bad paging input is a 400 naming the parameter, on every list.
    for path in [
        format!("/v1/conversations/{g}/members"),
        format!("/v1/conversations/{g}/receipts"),
        "/v1/auth/sessions".to_string(),
        format!("/v1/presence?user_ids={}", owner.id),
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        for (bad, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=x", "limit"),
            ("cursor=%21%21", "cursor"),
            ("cursor=bm90LWEta2V5c2V0", "cursor"),
        ] {
            let r = app
                .get(&format!("{path}{sep}{bad}"), Some(&owner.access))
                .await;
            r.assert_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["error"]["details"]["field"], field, "{path} {bad}");
        }
    }
    // A stranger still gets 404 for the group's lists, cursor or not.
    app.get(
        &format!("/v1/conversations/{g}/members?limit=2"),
        Some(&stranger.access),
    )
    .await
    .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn sessions_page_most_recent_first() {
    let app = TestApp::spawn().await;
    let u = app.register("sessionpager").await;
    let mut last = u.access.clone();
    for _ in 0..3 {
        let r = app.login("sessionpager").await;
        last = r.assert_ok(200)["access_token"]
            .as_str()
            .unwrap()
            .to_string();
    }
    let (sessions, pages) = walk(&app, "/v1/auth/sessions", &last, 2).await;
    assert_eq!((sessions.len(), pages), (4, 2));
    assert_eq!(ids(&sessions, "id").iter().collect::<HashSet<_>>().len(), 4);
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    let seen: Vec<&str> = sessions
        .iter()
        .map(|s| s["last_seen_at"].as_str().unwrap())
        .collect();
    assert!(seen.windows(2).all(|w| w[0] >= w[1]), "most recent first");
}

#[tokio::test]
async fn adding_members_answers_the_first_page() {
    let app = TestApp::spawn().await;
    let owner = app.register("addpager").await;
    let first = app.register("addfirst").await;
    let g = app.group(&owner, &[&first]).await;
    let newcomer = app.register("addnew").await;
    let r = app
        .post(
            &format!("/v1/conversations/{g}/members"),
            Some(&owner.access),
            json!({"user_ids": [newcomer.id]}),
        )
        .await;
    let data = r.assert_ok(200);
    assert_eq!(data["items"].as_array().unwrap().len(), 3);
    assert!(data["next_cursor"].is_null());
}
