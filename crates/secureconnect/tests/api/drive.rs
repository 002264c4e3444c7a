//! The drive over HTTP: uploads through signed URLs, atomic quota, verified types, folders,
//! downloads, cleanup of abandoned uploads, and who may touch what.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// The smallest valid PNG (1×1, transparent).
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];
/// The start of an ELF executable.
const ELF: &[u8] = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00";

/// URLs are built on `public_url` (http://sc.test in tests): aim them at this instance.
pub fn local(app: &TestApp, url: &str) -> String {
    url.replacen("http://sc.test", &app.base, 1)
}

pub async fn init(app: &TestApp, u: &TestUser, body: Value) -> Resp {
    app.post("/v1/files/uploads", Some(&u.access), body).await
}

pub async fn put_bytes(app: &TestApp, ticket: &Value, bytes: &[u8]) -> reqwest::Response {
    let mut req = app
        .client
        .put(local(app, ticket["upload_url"].as_str().unwrap()));
    for (k, v) in ticket["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    req.body(bytes.to_vec()).send().await.unwrap()
}

/// Init, PUT, complete: the ready File.
pub async fn upload(app: &TestApp, u: &TestUser, name: &str, ct: &str, bytes: &[u8]) -> Value {
    let t = init(
        app,
        u,
        json!({"name": name, "size": bytes.len(), "content_type": ct}),
    )
    .await;
    let ticket = t.assert_ok(201).clone();
    assert_eq!(ticket["method"], "PUT");
    let r = put_bytes(app, &ticket, bytes).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let id = ticket["file_id"].as_str().unwrap();
    app.post(
        &format!("/v1/files/{id}/complete"),
        Some(&u.access),
        json!({}),
    )
    .await
    .assert_ok(200)
    .clone()
}

pub async fn quota(app: &TestApp, u: &TestUser) -> Value {
    app.get("/v1/storage/quota", Some(&u.access))
        .await
        .assert_ok(200)
        .clone()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn upload_complete_download_round_trip() {
    let app = TestApp::spawn().await;
    let u = app.register("driver").await;
    let file = upload(&app, &u, "pixel.png", "image/png", PNG).await;
    assert_eq!(file["status"], "ready");
    assert_eq!(file["version"], 1);
    assert_eq!(file["size"], PNG.len());
    assert_eq!(file["sha256"], sha256_hex(PNG));
    assert_eq!(file["is_folder"], false);
    let q = quota(&app, &u).await;
    assert_eq!(
        (q["used"].as_i64(), q["reserved"].as_i64()),
        (Some(PNG.len() as i64), Some(0))
    );

    let id = file["id"].as_str().unwrap();
    let d = app
        .get(&format!("/v1/files/{id}/download"), Some(&u.access))
        .await;
    let url = local(&app, d.assert_ok(200)["download_url"].as_str().unwrap());
    // No bearer: the signature is the authorization.
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    // Served by the server itself (local disk), the bytes also get nosniff and a sandboxing
    // CSP; on S3 they come from the storage's own origin, never the app's.
    let on_s3 = s3_of(&app.cfg).is_some();
    if !on_s3 {
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("sandbox")
        );
    }
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);

    // A range: resumable downloads and seeking.
    let r = app
        .client
        .get(&url)
        .header("range", "bytes=1-3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 1-3/{}", PNG.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &PNG[1..4]);

    // A tampered URL is refused: a signed parameter changed, or the signature itself.
    let (signed_param, sig_param) = if on_s3 {
        (
            (
                "response-content-type=image%2Fpng",
                "response-content-type=text%2Fhtml",
            ),
            "X-Amz-Signature=",
        )
    } else {
        (("op=get", "op=put"), "sig=")
    };
    assert!(url.contains(signed_param.0), "{url}");
    let tampered = url.replacen(signed_param.0, signed_param.1, 1);
    assert_eq!(
        app.client.get(&tampered).send().await.unwrap().status(),
        403
    );
    let other_sig = {
        let (head, sig) = url.rsplit_once(sig_param).unwrap();
        let mut s: Vec<char> = sig.chars().collect();
        s[0] = if s[0] == 'a' { 'b' } else { 'a' };
        format!("{head}{sig_param}{}", s.into_iter().collect::<String>())
    };
    let r = app.client.get(&other_sig).send().await.unwrap();
    assert_eq!(r.status(), 403);
    if !on_s3 {
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "FORBIDDEN");
    }
}

#[tokio::test]
async fn expired_signed_urls_are_refused() {
    let app = TestApp::spawn_with(|c| c.download_url_ttl_seconds = 1).await;
    let u = app.register("expirer").await;
    let file = upload(&app, &u, "late.png", "image/png", PNG).await;
    let id = file["id"].as_str().unwrap();
    let d = app
        .get(&format!("/v1/files/{id}/download"), Some(&u.access))
        .await;
    let url = local(&app, d.assert_ok(200)["download_url"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn concurrent_uploads_never_exceed_the_quota() {
    let app = TestApp::spawn_with(|c| c.default_quota_bytes = 1000).await;
    let u = app.register("quotarace").await;
    // 20 inits of 150 bytes: 3,000 requested against 1,000.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (base, client, token) = (app.base.clone(), app.client.clone(), u.access.clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/v1/files/uploads"))
                .bearer_auth(token)
                .json(
                    &json!({"name": format!("f{i}.png"), "size": 150, "content_type": "image/png"}),
                )
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 => accepted += 1,
            507 => {
                assert_eq!(body["error"]["code"], "QUOTA_EXCEEDED");
                assert_eq!(body["error"]["details"]["quota"], 1000);
                assert_eq!(body["error"]["details"]["requested"], 150);
            }
            s => panic!("unexpected {s}: {body}"),
        }
    }
    assert_eq!(accepted, 6, "1000 / 150 = 6 reservations fit");
    let q = quota(&app, &u).await;
    assert_eq!(q["reserved"], 900);
    assert_eq!(q["available"], 100);
}

#[tokio::test]
async fn refused_types_and_mismatched_bytes_release_the_quota() {
    let app = TestApp::spawn().await;
    let u = app.register("typechecker").await;
    for (name, ct) in [
        ("setup.exe", "application/octet-stream"),
        ("setup.exe", "image/png"),
        ("run.sh", "text/plain"),
        ("page.html", "text/html"),
        ("logo.svg", "image/svg+xml"),
        ("photo.png", "application/pdf"),
        ("noext", "image/png"),
    ] {
        init(
            &app,
            &u,
            json!({"name": name, "size": 10, "content_type": ct}),
        )
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    }
    for bad in [
        "a/b.png",
        ".hidden.png",
        "evil\u{202e}gnp.exe",
        "tab\there.png",
        "",
    ] {
        init(
            &app,
            &u,
            json!({"name": bad, "size": 10, "content_type": "image/png"}),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    }
    // Over the per-file limit: 413 before anything else.
    init(
        &app,
        &u,
        json!({"name": "huge.png", "size": 200 * 1024 * 1024, "content_type": "image/png"}),
    )
    .await
    .assert_error(413, "PAYLOAD_TOO_LARGE");

    // A PNG declared as a PDF, an ELF declared as a PNG: 415 at complete, file gone, quota back.
    for (name, ct, bytes) in [
        ("doc.pdf", "application/pdf", PNG),
        ("pic.png", "image/png", ELF),
    ] {
        let t = init(
            &app,
            &u,
            json!({"name": name, "size": bytes.len(), "content_type": ct}),
        )
        .await;
        let ticket = t.assert_ok(201).clone();
        assert_eq!(put_bytes(&app, &ticket, bytes).await.status(), 200);
        assert_eq!(quota(&app, &u).await["reserved"], bytes.len());
        let id = ticket["file_id"].as_str().unwrap();
        app.post(
            &format!("/v1/files/{id}/complete"),
            Some(&u.access),
            json!({}),
        )
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
        app.get(&format!("/v1/files/{id}"), Some(&u.access))
            .await
            .assert_error(404, "NOT_FOUND");
        let q = quota(&app, &u).await;
        assert_eq!(
            (q["used"].as_i64(), q["reserved"].as_i64()),
            (Some(0), Some(0))
        );
    }

    // Nothing uploaded, or a different size: 400 and the reservation is released.
    let t = init(
        &app,
        &u,
        json!({"name": "empty.png", "size": 70, "content_type": "image/png"}),
    )
    .await;
    let id = t.assert_ok(201)["file_id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/files/{id}/complete"),
        Some(&u.access),
        json!({}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    assert_eq!(quota(&app, &u).await["reserved"], 0);
    // More bytes than declared are refused by the PUT itself.
    let t = init(
        &app,
        &u,
        json!({"name": "short.png", "size": 10, "content_type": "image/png"}),
    )
    .await;
    let ticket = t.assert_ok(201).clone();
    if s3_of(&app.cfg).is_none() {
        let r = put_bytes(&app, &ticket, PNG).await;
        assert!(r.status() == 413 || r.status() == 400, "{}", r.status());
    } else {
        // S3 signed the declared length: a PUT of another length is refused by S3.
        let mut req = app.client.put(ticket["upload_url"].as_str().unwrap());
        for (k, v) in ticket["headers"].as_object().unwrap() {
            if !k.eq_ignore_ascii_case("content-length") {
                req = req.header(k, v.as_str().unwrap());
            }
        }
        let r = req.body(PNG.to_vec()).send().await.unwrap();
        assert_eq!(r.status(), 403);
    }

    // A client-side encrypted file is not sniffed and is served as octet-stream.
    let blob = b"\x00\x01opaque ciphertext bytes";
    let t = init(
        &app,
        &u,
        json!({"name": "secret.pdf", "size": blob.len(), "content_type": "application/pdf", "encrypted": true}),
    )
    .await;
    let ticket = t.assert_ok(201).clone();
    assert_eq!(put_bytes(&app, &ticket, blob).await.status(), 200);
    let id = ticket["file_id"].as_str().unwrap();
    let f = app
        .post(
            &format!("/v1/files/{id}/complete"),
            Some(&u.access),
            json!({}),
        )
        .await;
    assert_eq!(f.assert_ok(200)["encrypted"], true);
    let d = app
        .get(&format!("/v1/files/{id}/download"), Some(&u.access))
        .await;
    let url = local(&app, d.assert_ok(200)["download_url"].as_str().unwrap());
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
}

/// A declared sha256: signed into the S3 upload URL (S3 refuses other bytes at the PUT), checked
/// at complete on local disk (400 `sha256`, the upload given up); malformed ones are 400.
#[tokio::test]
async fn declared_sha256_is_verified_on_either_backend() {
    use base64::Engine;
    let app = TestApp::spawn().await;
    let u = app.register("digester").await;
    let on_s3 = s3_of(&app.cfg).is_some();
    let text: Vec<u8> = b"hello world\n".repeat(2000); // 24,000 bytes: more than the sniffed head
    let digest = sha256_hex(&text);

    // Malformed: 400 naming the field, for an upload and for a version.
    let existing = upload(&app, &u, "v.txt", "text/plain", b"one").await;
    let vid = existing["id"].as_str().unwrap().to_string();
    for bad in [
        json!("abc"),
        json!(digest.to_uppercase()),
        json!(format!("{digest}0")),
        json!(&digest[1..]),
        json!("g".repeat(64)),
        json!(format!(" {}", &digest[1..])),
        json!(42),
    ] {
        let r = init(
            &app,
            &u,
            json!({"name": "bad.txt", "size": text.len(), "content_type": "text/plain", "sha256": bad}),
        )
        .await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["error"]["details"]["field"], "sha256", "{bad}");
        let r = app
            .post(
                &format!("/v1/files/{vid}/versions"),
                Some(&u.access),
                json!({"size": 3, "content_type": "text/plain", "sha256": bad}),
            )
            .await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert_eq!(r.body["error"]["details"]["field"], "sha256", "{bad}");
    }
    assert_eq!(quota(&app, &u).await["reserved"], 0);

    // Declared and matching: ready with that digest, a large file and a small one.
    for (name, ct, bytes) in [
        ("big.txt", "text/plain", text.as_slice()),
        ("pic.png", "image/png", PNG),
    ] {
        let declared = sha256_hex(bytes);
        let ticket = init(
            &app,
            &u,
            json!({"name": name, "size": bytes.len(), "content_type": ct, "sha256": declared}),
        )
        .await
        .assert_ok(201)
        .clone();
        let checksum = &ticket["headers"]["x-amz-checksum-sha256"];
        if on_s3 {
            let raw: Vec<u8> = (0..32)
                .map(|i| u8::from_str_radix(&declared[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            assert_eq!(
                checksum.as_str(),
                Some(
                    base64::engine::general_purpose::STANDARD
                        .encode(raw)
                        .as_str()
                )
            );
        } else {
            assert!(checksum.is_null(), "{ticket}");
        }
        assert_eq!(put_bytes(&app, &ticket, bytes).await.status(), 200);
        let id = ticket["file_id"].as_str().unwrap();
        let f = app
            .post(
                &format!("/v1/files/{id}/complete"),
                Some(&u.access),
                json!({}),
            )
            .await;
        assert_eq!(f.assert_ok(200)["sha256"], declared.as_str());
    }
    let used = quota(&app, &u).await["used"].as_i64().unwrap();

    // Declared, but other bytes of the same size: S3 refuses the PUT; local disk stores them and
    // complete refuses them. Either way complete is 400, the file is gone and the quota is back.
    let mut other = text.clone();
    other[23_999] = b'!';
    let ticket = init(
        &app,
        &u,
        json!({"name": "liar.txt", "size": text.len(), "content_type": "text/plain", "sha256": digest}),
    )
    .await
    .assert_ok(201)
    .clone();
    let id = ticket["file_id"].as_str().unwrap();
    let r = put_bytes(&app, &ticket, &other).await;
    if on_s3 {
        assert!(
            matches!(r.status().as_u16(), 400 | 403),
            "S3 took bytes that do not match the signed checksum: {}",
            r.status()
        );
    } else {
        assert_eq!(r.status(), 200);
    }
    let r = app
        .post(
            &format!("/v1/files/{id}/complete"),
            Some(&u.access),
            json!({}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    // s3s-fs keeps a refused body under the key (AWS S3 does not): either way not accepted.
    let field = r.body["error"]["details"]["field"].as_str().unwrap();
    if on_s3 {
        assert!(matches!(field, "sha256" | "size"), "{}", r.text);
    } else {
        assert_eq!(field, "sha256", "{}", r.text);
    }
    app.get(&format!("/v1/files/{id}"), Some(&u.access))
        .await
        .assert_error(404, "NOT_FOUND");
    let q = quota(&app, &u).await;
    assert_eq!(
        (q["used"].as_i64(), q["reserved"].as_i64()),
        (Some(used), Some(0))
    );

    // A version: declared and matching, then declared and not matching (the file stays as it was).
    let version = |bytes: Vec<u8>, declared: String| {
        let (app, token, vid) = (&app, u.access.clone(), vid.clone());
        async move {
            let ticket = app
                .post(
                    &format!("/v1/files/{vid}/versions"),
                    Some(&token),
                    json!({"size": bytes.len(), "content_type": "text/plain", "sha256": declared}),
                )
                .await
                .assert_ok(201)
                .clone();
            let put = put_bytes(app, &ticket, &bytes).await.status();
            let done = app
                .post(
                    &format!("/v1/files/{vid}/complete"),
                    Some(&token),
                    json!({}),
                )
                .await;
            (put, done)
        }
    };
    let (put, done) = version(b"two".to_vec(), sha256_hex(b"two")).await;
    assert_eq!(put, 200);
    let f = done.assert_ok(200);
    assert_eq!(
        (f["version"].as_i64(), f["sha256"].as_str()),
        (Some(2), Some(sha256_hex(b"two").as_str()))
    );
    let (put, done) = version(b"six".to_vec(), sha256_hex(b"ten")).await;
    assert_eq!(put.as_u16() == 200, !on_s3, "{put}");
    done.assert_error(400, "VALIDATION_ERROR");
    let f = app
        .get(&format!("/v1/files/{vid}"), Some(&u.access))
        .await
        .assert_ok(200)
        .clone();
    assert_eq!(
        (f["version"].as_i64(), f["sha256"].as_str()),
        (Some(2), Some(sha256_hex(b"two").as_str()))
    );
    assert_eq!(quota(&app, &u).await["reserved"], 0);
}

#[tokio::test]
async fn folders_listing_moves_and_recursive_delete() {
    let app = TestApp::spawn().await;
    let u = app.register("folderer").await;
    let mk = |name: &str, parent: Option<&str>| {
        let body = match parent {
            Some(p) => json!({"name": name, "parent_id": p}),
            None => json!({"name": name}),
        };
        let (app, token) = (&app, u.access.clone());
        async move { app.post("/v1/folders", Some(&token), body).await }
    };
    let docs = mk("docs", None).await.assert_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let inner = mk("inner", Some(&docs)).await.assert_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    mk("docs", None).await.assert_error(409, "CONFLICT");

    // Files in the inner folder, listed by name in pages.
    for i in 0..5 {
        let t = init(
            &app,
            &u,
            json!({"name": format!("n{i}.txt"), "size": 5, "content_type": "text/plain", "parent_id": inner}),
        )
        .await;
        let ticket = t.assert_ok(201).clone();
        assert_eq!(put_bytes(&app, &ticket, b"hello").await.status(), 200);
        let id = ticket["file_id"].as_str().unwrap();
        app.post(
            &format!("/v1/files/{id}/complete"),
            Some(&u.access),
            json!({}),
        )
        .await
        .assert_ok(200);
    }
    let p1 = app
        .get(
            &format!("/v1/files?parent_id={inner}&limit=3"),
            Some(&u.access),
        )
        .await;
    let p1 = p1.assert_ok(200).clone();
    assert_eq!(p1["items"].as_array().unwrap().len(), 3);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2 = app
        .get(
            &format!("/v1/files?parent_id={inner}&limit=3&cursor={cursor}"),
            Some(&u.access),
        )
        .await;
    let names: Vec<&str> = p2.assert_ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["n3.txt", "n4.txt"]);
    assert!(p2.body["data"]["next_cursor"].is_null());
    // The root holds only "docs"; search finds files anywhere.
    let root = app.get("/v1/files", Some(&u.access)).await;
    assert_eq!(root.assert_ok(200)["items"].as_array().unwrap().len(), 1);
    let found = app.get("/v1/files?q=N2", Some(&u.access)).await;
    assert_eq!(found.assert_ok(200)["items"][0]["name"], "n2.txt");

    // A folder cannot move into itself or below itself.
    for target in [&docs, &inner] {
        app.call(
            Method::PATCH,
            &format!("/v1/files/{docs}"),
            Some(&u.access),
            json!({"parent_id": target}),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    }
    // Move the inner folder to the root, rename it; then back under docs.
    let moved = app
        .call(
            Method::PATCH,
            &format!("/v1/files/{inner}"),
            Some(&u.access),
            json!({"parent_id": null, "name": "top"}),
        )
        .await;
    assert!(moved.assert_ok(200)["parent_id"].is_null());
    app.call(
        Method::PATCH,
        &format!("/v1/files/{inner}"),
        Some(&u.access),
        json!({"parent_id": docs}),
    )
    .await
    .assert_ok(200);

    // Deleting docs deletes everything below it and gives the bytes back.
    assert_eq!(quota(&app, &u).await["used"], 25);
    app.call(
        Method::DELETE,
        &format!("/v1/files/{docs}"),
        Some(&u.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    app.get(&format!("/v1/files/{inner}"), Some(&u.access))
        .await
        .assert_error(404, "NOT_FOUND");
    assert_eq!(quota(&app, &u).await["used"], 0);
    let root = app.get("/v1/files", Some(&u.access)).await;
    assert!(root.assert_ok(200)["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn strangers_reach_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.register("fileowner").await;
    let stranger = app.register("filestranger").await;
    let file = upload(&app, &owner, "mine.png", "image/png", PNG).await;
    let id = file["id"].as_str().unwrap();
    let folder = app
        .post(
            "/v1/folders",
            Some(&owner.access),
            json!({"name": "private"}),
        )
        .await;
    let folder = folder.assert_ok(201)["id"].as_str().unwrap().to_string();
    let t = &stranger.access;
    for (m, path, body) in [
        (Method::GET, format!("/v1/files/{id}"), Value::Null),
        (
            Method::PATCH,
            format!("/v1/files/{id}"),
            json!({"name": "x.png"}),
        ),
        (Method::DELETE, format!("/v1/files/{id}"), Value::Null),
        (Method::GET, format!("/v1/files/{id}/download"), Value::Null),
        (Method::POST, format!("/v1/files/{id}/complete"), json!({})),
        (
            Method::GET,
            format!("/v1/files?parent_id={folder}"),
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/folders".to_string(),
            json!({"name": "x", "parent_id": folder}),
        ),
        (
            Method::POST,
            "/v1/files/uploads".to_string(),
            json!({"name": "x.png", "size": 1, "content_type": "image/png", "parent_id": folder}),
        ),
    ] {
        app.call(m.clone(), &path, Some(t), body)
            .await
            .assert_error(404, "NOT_FOUND");
    }
    // Still there, untouched.
    let f = app
        .get(&format!("/v1/files/{id}"), Some(&owner.access))
        .await;
    assert_eq!(f.assert_ok(200)["name"], "mine.png");
    // Search and the root list only the caller's own.
    let s = app.get("/v1/files?q=mine", Some(t)).await;
    assert!(s.assert_ok(200)["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn abandoned_uploads_are_cleaned_up() {
    // Three seconds: the upload URL lives as long as the reservation, and a loaded CI machine
    // can take more than one second between init and PUT.
    let app = TestApp::spawn_with(|c| {
        c.upload_reservation_ttl_seconds = 3;
        c.drive_cleanup_interval_seconds = 1;
    })
    .await;
    let u = app.register("abandoner").await;
    let t = init(
        &app,
        &u,
        json!({"name": "gone.png", "size": PNG.len(), "content_type": "image/png"}),
    )
    .await;
    let ticket = t.assert_ok(201).clone();
    assert_eq!(put_bytes(&app, &ticket, PNG).await.status(), 200);
    // The objects in the store: the files under data_dir/blobs, or the keys of the S3 bucket.
    let blobs = app.cfg.data_dir.join("blobs");
    let s3 = s3_of(&app.cfg);
    let count_objects = || async {
        match &s3 {
            Some(s3) => list_all_keys(s3).await.len(),
            None => walk_files(&blobs)
                .into_iter()
                .filter(|p| {
                    !p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(".tmp-")
                })
                .count(),
        }
    };
    assert_eq!(count_objects().await, 1);
    assert_eq!(quota(&app, &u).await["reserved"], PNG.len());
    // Never completed: after the reservation and one cleanup interval, nothing is left.
    let id = ticket["file_id"].as_str().unwrap();
    let mut gone = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if count_objects().await == 0 && quota(&app, &u).await["reserved"] == 0 {
            gone = true;
            break;
        }
    }
    assert!(gone, "object deleted and reservation released");
    app.get(&format!("/v1/files/{id}"), Some(&u.access))
        .await
        .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_deleted_account_leaves_no_objects_behind() {
    let app = TestApp::spawn_with(|c| c.drive_cleanup_interval_seconds = 1).await;
    let u = app.register("leavingowner").await;
    let folder = app
        .post("/v1/folders", Some(&u.access), json!({"name": "mine"}))
        .await;
    let folder = folder.assert_ok(201)["id"].as_str().unwrap().to_string();
    upload(&app, &u, "a.png", "image/png", PNG).await;
    let t = init(
        &app,
        &u,
        json!({"name": "b.txt", "size": 5, "content_type": "text/plain", "parent_id": folder}),
    )
    .await;
    let ticket = t.assert_ok(201).clone();
    assert_eq!(put_bytes(&app, &ticket, b"hello").await.status(), 200);
    let objects = || async {
        match s3_of(&app.cfg) {
            Some(s3) => list_all_keys(&s3).await.len(),
            None => walk_files(&app.cfg.data_dir.join("blobs"))
                .into_iter()
                .filter(|p| {
                    !p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(".tmp-")
                })
                .count(),
        }
    };
    assert_eq!(objects().await, 2);
    app.call(
        Method::DELETE,
        "/v1/users/me",
        Some(&u.access),
        json!({"password": PASSWORD}),
    )
    .await
    .assert_ok(200);
    let mut left = usize::MAX;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = objects().await;
        if left == 0 {
            break;
        }
    }
    assert_eq!(
        left, 0,
        "the account's objects (ready and pending) are deleted"
    );
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn versions_upload_list_restore_and_count_against_the_quota() {
    let app = TestApp::spawn_with(|c| c.max_versions_per_file = 3).await;
    let u = app.register("versioner").await;
    let file = upload(&app, &u, "notes.txt", "text/plain", b"one").await;
    let id = file["id"].as_str().unwrap().to_string();
    let new_version = |bytes: &'static [u8]| {
        let (app, token, id) = (&app, u.access.clone(), id.clone());
        async move {
            let t = app
                .post(
                    &format!("/v1/files/{id}/versions"),
                    Some(&token),
                    json!({"size": bytes.len(), "content_type": "text/plain"}),
                )
                .await;
            let ticket = t.assert_ok(201).clone();
            assert_eq!(ticket["file_id"], id.as_str());
            assert_eq!(put_bytes(app, &ticket, bytes).await.status(), 200);
            app.post(&format!("/v1/files/{id}/complete"), Some(&token), json!({}))
                .await
                .assert_ok(200)
                .clone()
        }
    };
    let f = new_version(b"second").await;
    assert_eq!(
        (f["version"].as_i64(), f["size"].as_i64()),
        (Some(2), Some(6))
    );
    assert_eq!(f["sha256"], sha256_hex(b"second"));
    // Every version counts.
    assert_eq!(quota(&app, &u).await["used"], 3 + 6);

    // One upload at a time per file.
    let first = app
        .post(
            &format!("/v1/files/{id}/versions"),
            Some(&u.access),
            json!({"size": 4, "content_type": "text/plain"}),
        )
        .await;
    first.assert_ok(201);
    app.post(
        &format!("/v1/files/{id}/versions"),
        Some(&u.access),
        json!({"size": 4, "content_type": "text/plain"}),
    )
    .await
    .assert_error(409, "CONFLICT");
    // The pending one fails its check (nothing uploaded): the file stays at version 2.
    app.post(
        &format!("/v1/files/{id}/complete"),
        Some(&u.access),
        json!({}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    let f = app.get(&format!("/v1/files/{id}"), Some(&u.access)).await;
    assert_eq!(f.assert_ok(200)["version"], 2);
    // A type the name's extension does not fit is refused.
    app.post(
        &format!("/v1/files/{id}/versions"),
        Some(&u.access),
        json!({"size": 4, "content_type": "image/png"}),
    )
    .await
    .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");

    // Restore version 1: a new current version with its bytes.
    let r = app
        .post(
            &format!("/v1/files/{id}/versions/1/restore"),
            Some(&u.access),
            json!({}),
        )
        .await;
    let restored = r.assert_ok(200).clone();
    // The abandoned upload left no version behind: ready versions are numbered without gaps.
    assert_eq!(restored["version"], 3);
    assert_eq!(restored["sha256"], sha256_hex(b"one"));
    let d = app
        .get(&format!("/v1/files/{id}/download"), Some(&u.access))
        .await;
    let url = local(&app, d.assert_ok(200)["download_url"].as_str().unwrap());
    assert_eq!(
        app.client
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        b"one"
    );
    assert_eq!(quota(&app, &u).await["used"], 3 + 6 + 3);

    // The list: newest first, paged.
    let v = app
        .get(&format!("/v1/files/{id}/versions?limit=2"), Some(&u.access))
        .await;
    let v = v.assert_ok(200).clone();
    let nums: Vec<i64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["version"].as_i64().unwrap())
        .collect();
    assert_eq!(nums, [3, 2]);
    let c = v["next_cursor"].as_str().unwrap();
    let v2 = app
        .get(
            &format!("/v1/files/{id}/versions?limit=2&cursor={c}"),
            Some(&u.access),
        )
        .await;
    assert_eq!(v2.assert_ok(200)["items"][0]["version"], 1);

    // With max_versions_per_file = 3, a fourth ready version prunes the oldest and its bytes.
    new_version(b"fifth!!").await;
    let v = app
        .get(&format!("/v1/files/{id}/versions"), Some(&u.access))
        .await;
    let nums: Vec<i64> = v.assert_ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["version"].as_i64().unwrap())
        .collect();
    assert_eq!(nums, [4, 3, 2]);
    assert_eq!(quota(&app, &u).await["used"], 6 + 3 + 7);
    // Unknown version, a stranger: 404.
    app.post(
        &format!("/v1/files/{id}/versions/1/restore"),
        Some(&u.access),
        json!({}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    let stranger = app.register("versionstranger").await;
    app.get(&format!("/v1/files/{id}/versions"), Some(&stranger.access))
        .await
        .assert_error(404, "NOT_FOUND");
    // Deleting the file gives back every version's bytes.
    app.call(
        Method::DELETE,
        &format!("/v1/files/{id}"),
        Some(&u.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    assert_eq!(quota(&app, &u).await["used"], 0);
}

#[tokio::test]
async fn shares_give_what_they_say_and_end_at_once() {
    let app = TestApp::spawn().await;
    let owner = app.register("shareowner").await;
    let reader = app.register("sharereader").await;
    let writer = app.register("sharewriter").await;
    let member = app.register("sharemember").await;
    let stranger = app.register("sharestranger").await;
    let folder = app
        .post("/v1/folders", Some(&owner.access), json!({"name": "team"}))
        .await;
    let folder = folder.assert_ok(201)["id"].as_str().unwrap().to_string();
    let t = init(
        &app,
        &owner,
        json!({"name": "plan.txt", "size": 4, "content_type": "text/plain", "parent_id": folder}),
    )
    .await;
    let ticket = t.assert_ok(201).clone();
    assert_eq!(put_bytes(&app, &ticket, b"plan").await.status(), 200);
    let file = ticket["file_id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/files/{file}/complete"),
        Some(&owner.access),
        json!({}),
    )
    .await
    .assert_ok(200);
    let sub = app
        .post(
            "/v1/folders",
            Some(&owner.access),
            json!({"name": "sub", "parent_id": folder}),
        )
        .await;
    let sub = sub.assert_ok(201)["id"].as_str().unwrap().to_string();

    // The folder to the reader (read) and the writer (write); the file to a group.
    let share = |body: Value, id: &str| {
        let (app, token, id) = (&app, owner.access.clone(), id.to_string());
        async move {
            app.post(&format!("/v1/files/{id}/shares"), Some(&token), body)
                .await
        }
    };
    let read_share = share(json!({"user_id": reader.id, "permission": "read"}), &folder).await;
    let read_share = read_share.assert_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    share(
        json!({"user_id": writer.id, "permission": "write"}),
        &folder,
    )
    .await
    .assert_ok(201);
    // Again for the same grantee: the same share, its permission changed (200).
    share(
        json!({"user_id": writer.id, "permission": "write"}),
        &folder,
    )
    .await
    .assert_ok(200);
    let g = app.group(&owner, &[&member]).await;
    share(json!({"conversation_id": g, "permission": "read"}), &file)
        .await
        .assert_ok(201);
    share(json!({"user_id": owner.id, "permission": "read"}), &file)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    share(json!({"user_id": reader.id, "permission": "admin"}), &file)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    share(
        json!({"user_id": reader.id, "conversation_id": g, "permission": "read"}),
        &file,
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    // The matrix: each caller, each route, the status API.md §12 gives.
    let rename = |name: &str| json!({"name": name});
    let version = json!({"size": 3, "content_type": "text/plain"});
    let to_share = json!({"user_id": stranger.id, "permission": "read"});
    let cases: Vec<(&TestUser, [u16; 9])> = vec![
        // get, download, list folder, rename, new version, list shares, share, delete, versions
        (&reader, [200, 200, 200, 403, 403, 403, 403, 403, 200]),
        (&writer, [200, 200, 200, 200, 201, 403, 403, 403, 200]),
        (&member, [200, 200, 404, 403, 403, 403, 403, 403, 200]),
        (&stranger, [404, 404, 404, 404, 404, 404, 404, 404, 404]),
    ];
    for (who, expected) in cases {
        let t = Some(who.access.as_str());
        let got = [
            app.get(&format!("/v1/files/{file}"), t)
                .await
                .status
                .as_u16(),
            app.get(&format!("/v1/files/{file}/download"), t)
                .await
                .status
                .as_u16(),
            app.get(&format!("/v1/files?parent_id={folder}"), t)
                .await
                .status
                .as_u16(),
            app.call(
                Method::PATCH,
                &format!("/v1/files/{file}"),
                t,
                rename(&format!("{}.txt", who.username)),
            )
            .await
            .status
            .as_u16(),
            app.post(&format!("/v1/files/{file}/versions"), t, version.clone())
                .await
                .status
                .as_u16(),
            app.get(&format!("/v1/files/{file}/shares"), t)
                .await
                .status
                .as_u16(),
            app.post(&format!("/v1/files/{file}/shares"), t, to_share.clone())
                .await
                .status
                .as_u16(),
            app.call(Method::DELETE, &format!("/v1/files/{file}"), t, Value::Null)
                .await
                .status
                .as_u16(),
            app.get(&format!("/v1/files/{file}/versions"), t)
                .await
                .status
                .as_u16(),
        ];
        assert_eq!(got, expected, "{}", who.username);
    }
    // The writer moved nothing out of the owner's tree: into their own folder is refused.
    let mine = app
        .post("/v1/folders", Some(&writer.access), json!({"name": "mine"}))
        .await;
    let mine = mine.assert_ok(201)["id"].as_str().unwrap().to_string();
    app.call(
        Method::PATCH,
        &format!("/v1/files/{file}"),
        Some(&writer.access),
        json!({"parent_id": mine}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    app.call(
        Method::PATCH,
        &format!("/v1/files/{file}"),
        Some(&writer.access),
        json!({"parent_id": null}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    // …but within it, into a folder the share covers, it moves.
    app.call(
        Method::PATCH,
        &format!("/v1/files/{file}"),
        Some(&writer.access),
        json!({"parent_id": sub}),
    )
    .await
    .assert_ok(200);

    // Shared with me: the folder for the reader, the file for the group member.
    let swm = app
        .get("/v1/files/shared-with-me", Some(&reader.access))
        .await;
    let items = swm.assert_ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], folder.as_str());
    // The grantee can tell whose file it is (only the owner shares it).
    assert_eq!(items[0]["owner_id"], owner.id.as_str());
    let swm = app
        .get("/v1/files/shared-with-me", Some(&member.access))
        .await;
    assert_eq!(swm.assert_ok(200)["items"][0]["id"], file.as_str());
    // A user grantee got a file.shared notification; the group member did not.
    let n = app.get("/v1/notifications", Some(&reader.access)).await;
    let kinds: Vec<&str> = n.assert_ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["file.shared"]);
    assert_eq!(n.body["data"]["items"][0]["data"]["permission"], "read");

    // Revoked: the reader loses access at once. Removed from the group: the member too.
    app.call(
        Method::DELETE,
        &format!("/v1/files/{folder}/shares/{read_share}"),
        Some(&owner.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    app.get(&format!("/v1/files/{file}"), Some(&reader.access))
        .await
        .assert_error(404, "NOT_FOUND");
    app.call(
        Method::DELETE,
        &format!("/v1/conversations/{g}/members/{}", member.id),
        Some(&owner.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    app.get(&format!("/v1/files/{file}/download"), Some(&member.access))
        .await
        .assert_error(404, "NOT_FOUND");
    // Only the owner lists shares: two left (the writer's and the group's).
    let list = app
        .get(&format!("/v1/files/{file}/shares"), Some(&owner.access))
        .await;
    assert_eq!(
        list.assert_ok(200)["items"].as_array().unwrap().len(),
        1,
        "the file's own share"
    );
    let list = app
        .get(&format!("/v1/files/{folder}/shares"), Some(&owner.access))
        .await;
    assert_eq!(
        list.assert_ok(200)["items"].as_array().unwrap().len(),
        1,
        "the folder's: the writer's"
    );
}

/// Signed URLs are bearer secrets: neither they nor their signatures reach a log line.
#[tokio::test]
async fn signed_urls_never_reach_the_logs() {
    let app = TestApp::spawn().await;
    let u = app.register("urllogger").await;
    let t = init(
        &app,
        &u,
        json!({"name": "logged.png", "size": PNG.len(), "content_type": "image/png"}),
    )
    .await;
    let ticket = t.assert_ok(201).clone();
    assert_eq!(put_bytes(&app, &ticket, PNG).await.status(), 200);
    let id = ticket["file_id"].as_str().unwrap();
    app.post(
        &format!("/v1/files/{id}/complete"),
        Some(&u.access),
        json!({}),
    )
    .await
    .assert_ok(200);
    let d = app
        .get(&format!("/v1/files/{id}/download"), Some(&u.access))
        .await;
    let download = d.assert_ok(200)["download_url"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.client.get(local(&app, &download)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A refused (tampered) URL is logged as refused, still without its signature.
    let tampered = format!("{download}x");
    app.client.get(local(&app, &tampered)).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = captured_logs();
    assert!(
        logs.contains("/v1/files/{id}/download"),
        "the capture works"
    );
    let upload = ticket["upload_url"].as_str().unwrap();
    let signature = |url: &str| {
        url.split(['?', '&'])
            .find_map(|p| {
                p.strip_prefix("sig=")
                    .or_else(|| p.strip_prefix("X-Amz-Signature="))
            })
            .unwrap()
            .to_string()
    };
    for (what, secret) in [
        ("upload URL", upload.to_string()),
        ("download URL", download.clone()),
        ("upload signature", signature(upload)),
        ("download signature", signature(&download)),
    ] {
        assert!(!logs.contains(&secret), "the {what} reached the logs");
    }
}
