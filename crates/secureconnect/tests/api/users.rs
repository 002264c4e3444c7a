//! Profiles, password change, account deletion, search and blocking.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn profile_get_and_patch() {
    let app = TestApp::spawn().await;
    let u = app.register("profiled").await;
    let t = Some(u.access.as_str());
    let me = app.get("/v1/users/me", t).await;
    assert_eq!(me.assert_ok(200)["email"], "profiled@example.org");
    let p = app
        .call(
            Method::PATCH,
            "/v1/users/me",
            t,
            json!({"display_name": "  New Name ", "avatar_url": "https://cdn.example.org/a.png"}),
        )
        .await;
    let d = p.assert_ok(200);
    assert_eq!(d["display_name"], "New Name");
    assert_eq!(d["avatar_url"], "https://cdn.example.org/a.png");
    let p = app
        .call(
            Method::PATCH,
            "/v1/users/me",
            t,
            json!({"avatar_url": null}),
        )
        .await;
    assert_eq!(p.assert_ok(200)["avatar_url"], Value::Null);
    assert_eq!(p.body["data"]["display_name"], "New Name");
    app.call(
        Method::PATCH,
        "/v1/users/me",
        t,
        json!({"avatar_url": "javascript:alert(1)"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.call(
        Method::PATCH,
        "/v1/users/me",
        t,
        json!({"email": "x@example.org"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.call(
        Method::PATCH,
        "/v1/users/me",
        t,
        json!({"display_name": "x".repeat(65)}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    let other = app.register("viewer").await;
    let pub_profile = app
        .get(&format!("/v1/users/{}", u.id), Some(&other.access))
        .await;
    let d = pub_profile.assert_ok(200);
    assert_eq!(d["username"], "profiled");
    assert!(
        d.get("email").is_none(),
        "public profiles never include email"
    );
    app.get(
        &format!("/v1/users/{}", uuid::Uuid::now_v7()),
        Some(&other.access),
    )
    .await
    .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn search_by_prefix_with_pages() {
    let app = TestApp::spawn().await;
    let me = app.register("searcher").await;
    for name in ["zeta_one", "zeta_two", "zeta_three", "zebra"] {
        app.register(name).await;
    }
    let t = Some(me.access.as_str());
    let r = app.get("/v1/users?q=ZETA&limit=2", t).await;
    let d = r.assert_ok(200).clone();
    let items = d["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.get("email").is_none()));
    let cursor = d["next_cursor"].as_str().unwrap();
    let r2 = app
        .get(&format!("/v1/users?q=zeta&limit=2&cursor={cursor}"), t)
        .await;
    let d2 = r2.assert_ok(200);
    assert_eq!(d2["items"].as_array().unwrap().len(), 1);
    assert_eq!(d2["next_cursor"], Value::Null);
    // Display-name prefix (registered display name = username here) and wildcards are literal.
    assert_eq!(
        app.get("/v1/users?q=zeb", t).await.body["data"]["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get("/v1/users?q=%25", t).await.body["data"]["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        app.get("/v1/users?q=z_t", t).await.body["data"]["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn block_unblock_list() {
    let app = TestApp::spawn().await;
    let a = app.register("blocker").await;
    let b = app.register("blockee").await;
    let t = Some(a.access.as_str());
    app.post(&format!("/v1/users/{}/block", b.id), t, Value::Null)
        .await
        .assert_ok(200);
    app.post(&format!("/v1/users/{}/block", b.id), t, Value::Null)
        .await
        .assert_ok(200);
    app.post(&format!("/v1/users/{}/block", a.id), t, Value::Null)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.post(
        &format!("/v1/users/{}/block", uuid::Uuid::now_v7()),
        t,
        Value::Null,
    )
    .await
    .assert_error(404, "NOT_FOUND");
    let list = app.get("/v1/users/me/blocked", t).await;
    let items = list.assert_ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], b.id.as_str());
    assert!(items[0].get("email").is_none());
    assert_eq!(
        app.get("/v1/users/me/blocked", Some(&b.access)).await.body["data"]["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    app.call(
        Method::DELETE,
        &format!("/v1/users/{}/block", b.id),
        t,
        Value::Null,
    )
    .await
    .assert_ok(200);
    assert_eq!(
        app.get("/v1/users/me/blocked", t).await.body["data"]["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn change_password_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let u = app.register("changer").await;
    let other = TestUser::from_pair(app.login("changer").await.assert_ok(200), &u.email);
    let t = Some(u.access.as_str());
    app.post(
        "/v1/users/me/password",
        t,
        json!({"current_password": "wrong-password-0", "new_password": "blueberry-harbor-33"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        "/v1/users/me/password",
        t,
        json!({"current_password": PASSWORD, "new_password": "changer-is-me-123"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.post(
        "/v1/users/me/password",
        t,
        json!({"current_password": PASSWORD, "new_password": "blueberry-harbor-33"}),
    )
    .await
    .assert_ok(200);
    app.get("/v1/users/me", t).await.assert_ok(200);
    app.get("/v1/users/me", Some(&other.access))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.post(
        "/v1/auth/login",
        None,
        json!({"username": "changer", "password": "blueberry-harbor-33"}),
    )
    .await
    .assert_ok(200);
    app.wait_for_mail(&u.email, "password was changed").await;
}

#[tokio::test]
async fn delete_account_needs_password() {
    let app = TestApp::spawn().await;
    let u = app.register("leaver").await;
    let t = Some(u.access.as_str());
    app.call(
        Method::DELETE,
        "/v1/users/me",
        t,
        json!({"password": "wrong-password-0"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.call(
        Method::DELETE,
        "/v1/users/me",
        t,
        json!({"password": PASSWORD}),
    )
    .await
    .assert_ok(200);
    app.get("/v1/users/me", t)
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.login("leaver").await.assert_error(401, "UNAUTHORIZED");
    // The name is free again.
    app.register("leaver").await;
}

#[tokio::test]
async fn password_guessing_with_a_stolen_token_is_limited() {
    let app = TestApp::spawn().await;
    let u = app.register("stolen").await;
    for i in 0..10 {
        let body = json!({"current_password": format!("guess-number-{i}"), "new_password": "blueberry-harbor-33"});
        app.post("/v1/users/me/password", Some(&u.access), body)
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    // The right password no longer gets a hearing: the budget is spent.
    let body = json!({"current_password": PASSWORD, "new_password": "blueberry-harbor-33"});
    app.post("/v1/users/me/password", Some(&u.access), body)
        .await
        .assert_error(429, "RATE_LIMITED");
    app.call(
        Method::DELETE,
        "/v1/users/me",
        Some(&u.access),
        json!({"password": PASSWORD}),
    )
    .await
    .assert_error(429, "RATE_LIMITED");
}
