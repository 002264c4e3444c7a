//! `secureconnect backup` and `secureconnect restore`, run as the real binary against a data
//! directory an instance is serving from: the backup is taken while messages keep arriving, and
//! a new instance on the restored directory serves the state of one point in time: users and
//! their logins (password, TOTP through the restored data key, tokens through the restored JWT
//! key), conversations, messages with their seq, and files byte for byte.
//!
//! Backup and restore are the embedded mode's (SQLite and blobs in data_dir): these tests build
//! their own embedded configuration whatever SC_TEST_PG_URL / SC_TEST_S3_URL say. PostgreSQL +
//! S3 deployments use scripts/backup-postgres-s3.sh, which needs pg_dump and an S3 client and
//! is not run here.

use crate::common::*;
use crate::drive::{PNG, local, sha256_hex, upload};
use reqwest::Method;
use sc_core::config::Config;
use sc_service::crypto::{base32_decode, totp_code};
use serde_json::{Value, json};
use std::{
    path::Path,
    process::Output,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

/// The real binary, without the test environment's `SC_*` variables, on `data_dir`.
async fn secureconnect(data_dir: &Path, args: &[&std::ffi::OsStr]) -> Output {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_secureconnect"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SC_") {
            c.env_remove(k);
        }
    }
    c.env("SC_DATA_DIR", data_dir)
        .args(args)
        .output()
        .await
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An embedded instance on `data_dir`: SQLite, blobs on disk, and every secret generated into
/// the data directory (none from the configuration), so the backup has to carry them.
fn embedded(data_dir: &Path) -> Config {
    let mut cfg = Config::default();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.data_dir = data_dir.to_path_buf();
    cfg.public_url = "http://sc.test".into();
    cfg.login_rate_per_ip_per_minute = 1000;
    cfg.auth_rate_per_ip_per_minute = 1000;
    cfg.api_rate_per_user_per_minute = 1_000_000;
    cfg.message_rate_per_user_per_minute = 1_000_000;
    cfg.shutdown_grace_seconds = 2;
    cfg
}

fn note_tier() {
    if pg_url().is_some() || s3_url().is_some() {
        eprintln!(
            "backup/restore covers the embedded mode: this test runs on SQLite and local blobs \
             whatever SC_TEST_PG_URL / SC_TEST_S3_URL say (PostgreSQL + S3 use \
             scripts/backup-postgres-s3.sh, not run in tests)"
        );
    }
}

/// Every message of a conversation, oldest first.
async fn history(app: &TestApp, token: &str, conv: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let r = app
            .get(
                &format!("/v1/conversations/{conv}/messages?after_seq={after}&limit=100"),
                Some(token),
            )
            .await;
        let d = r.assert_ok(200).clone();
        let items = d["items"].as_array().unwrap().clone();
        if let Some(last) = items.last() {
            after = last["seq"].as_i64().unwrap();
        }
        all.extend(items);
        if d["has_more"] != true {
            return all;
        }
    }
}

fn seqs(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

/// (id, kind, title) of the caller's conversations, sorted.
async fn conversations(app: &TestApp, token: &str) -> Vec<(String, String, String)> {
    let r = app.get("/v1/conversations?limit=100", Some(token)).await;
    let mut out: Vec<_> = r.assert_ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["kind"].as_str().unwrap().to_string(),
                c["title"].to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn root_files(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get("/v1/files?limit=100", Some(token)).await;
    let mut items = r.assert_ok(200)["items"].as_array().unwrap().clone();
    items.sort_by_key(|f| f["name"].as_str().unwrap().to_string());
    items
}

async fn download(app: &TestApp, token: &str, file_id: &str) -> Vec<u8> {
    let d = app
        .get(&format!("/v1/files/{file_id}/download"), Some(token))
        .await;
    let url = local(app, d.assert_ok(200)["download_url"].as_str().unwrap());
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200, "download of {file_id}");
    r.bytes().await.unwrap().to_vec()
}

/// Keeps sending messages into `conv` until stopped; returns (seq, content) of each.
struct Writer {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<(i64, String)>>,
}

impl Writer {
    fn start(app: &TestApp, user: &TestUser, conv: &str) -> Writer {
        let (stop, sent) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/v1/conversations/{conv}/messages")),
            user.access.clone(),
        );
        let (stop_flag, counter) = (stop.clone(), sent.clone());
        let task = tokio::spawn(async move {
            let mut out = Vec::new();
            while !stop_flag.load(Ordering::SeqCst) {
                let content = format!("during backup {}", out.len());
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"client_message_id": format!("w-{}", out.len()), "content": content}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201, "a send while the backup runs");
                let v: Value = r.json().await.unwrap();
                out.push((v["data"]["seq"].as_i64().unwrap(), content));
                counter.fetch_add(1, Ordering::SeqCst);
            }
            out
        });
        Writer { stop, sent, task }
    }

    fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    async fn finish(self) -> Vec<(i64, String)> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the writer did not fail")
    }
}

/// Files are 0600 and directories 0700, all the way down.
fn assert_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_private(&path);
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn flip_byte(path: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x01]).unwrap();
}

fn sha256_of_file(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap())
}

fn login_body(name: &str, code: Option<&str>) -> Value {
    match code {
        Some(c) => json!({"username": name, "password": PASSWORD, "totp_code": c}),
        None => json!({"username": name, "password": PASSWORD}),
    }
}

/// Some text several chunks long (the copies stream it).
fn notes() -> Vec<u8> {
    let mut text = Vec::new();
    let mut i = 0;
    while text.len() < 3 * 1024 * 1024 {
        text.extend_from_slice(format!("line {i}: the quick brown fox, backed up\n").as_bytes());
        i += 1;
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_one_point_in_time() {
    note_tier();
    let root = tempfile::tempdir().unwrap();
    let live_dir = root.path().join("live");
    let live = TestApp::start(embedded(&live_dir), None).await;

    // Users, a group and a direct conversation with messages, files, a user with 2FA.
    let alice = live.register("alice").await;
    let bob = live.register("bob").await;
    let carol = live.register("carol").await;
    let group = live.group(&alice, &[&bob, &carol]).await;
    let direct = live
        .post(
            "/v1/conversations",
            Some(&alice.access),
            json!({"kind": "direct", "member_ids": [bob.id]}),
        )
        .await
        .assert_ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..20 {
        let (who, conv) = if i % 2 == 0 {
            (&alice, &group)
        } else {
            (&bob, &direct)
        };
        live.send_text(who, conv, &format!("before-{i}"), &format!("before {i}"))
            .await
            .assert_ok(201);
    }
    let notes = notes();
    let pixel = upload(&live, &alice, "pixel.png", "image/png", PNG).await;
    let notes_file = upload(&live, &alice, "notes.txt", "text/plain", &notes).await;
    let gone = upload(&live, &bob, "gone.txt", "text/plain", b"deleted before").await;
    let gone_id = gone["id"].as_str().unwrap();
    live.call(
        Method::DELETE,
        &format!("/v1/files/{gone_id}"),
        Some(&bob.access),
        Value::Null,
    )
    .await
    .assert_ok(200);
    let setup = live
        .post("/v1/auth/2fa/setup", Some(&carol.access), Value::Null)
        .await;
    let secret = base32_decode(setup.assert_ok(200)["secret"].as_str().unwrap()).unwrap();
    let enabled_step = sc_core::time::Timestamp::now().unix_seconds() / 30;
    live.post(
        "/v1/auth/2fa/enable",
        Some(&carol.access),
        json!({"code": totp_code(&secret, (enabled_step * 30) as u64)}),
    )
    .await
    .assert_ok(200);
    live.post("/v1/auth/login", None, login_body("carol", None))
        .await
        .assert_error(401, "TOTP_REQUIRED");

    // The backup, by the binary, while bob keeps sending into the group.
    let before = history(&live, &alice.access, &group).await.len();
    let backup = root.path().join("backup");
    let writer = Writer::start(&live, &bob, &group);
    while writer.sent() < 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sent_before = writer.sent();
    let out = secureconnect(
        &live_dir,
        &["backup".as_ref(), "--to".as_ref(), backup.as_os_str()],
    )
    .await;
    let sent_after = writer.sent();
    assert!(out.status.success(), "backup: {}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("backup complete"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Messages sent after the backup finished cannot be in it.
    while writer.sent() < sent_after + 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let written = writer.finish().await;
    assert!(
        sent_after > sent_before,
        "the server kept taking messages while the backup ran ({sent_before} before, \
         {sent_after} after)"
    );

    // The backup directory: complete, private, its manifest matching its files.
    assert!(!root.path().join("backup.partial").exists());
    assert_private(&backup);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "secureconnect-backup");
    assert_eq!(manifest["format_version"], 1);
    assert_eq!(
        manifest["database"]["migrations"],
        json!(sc_db::Db::migration_versions(sc_db::Backend::Sqlite))
    );
    assert_eq!(
        manifest["database"]["file"]["sha256"],
        sha256_of_file(&backup.join("secureconnect.db"))
    );
    let secrets: Vec<&str> = manifest["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let path = s["path"].as_str().unwrap();
            assert_eq!(s["sha256"], sha256_of_file(&backup.join(path)), "{path}");
            path
        })
        .collect();
    assert_eq!(secrets, ["jwt_secret", "data_key", "vapid_private_key"]);
    assert_eq!(manifest["secrets_from_configuration"], json!([]));
    // The two live files' objects; the deleted file's is not referenced.
    assert_eq!(manifest["blobs"]["count"], 2, "{manifest}");
    assert_eq!(manifest["blobs"]["bytes"], (PNG.len() + notes.len()) as u64);
    let mut digests: Vec<&str> = manifest["blobs"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["sha256"].as_str().unwrap())
        .collect();
    digests.sort();
    let mut expected = vec![
        pixel["sha256"].as_str().unwrap(),
        notes_file["sha256"].as_str().unwrap(),
    ];
    expected.sort();
    assert_eq!(digests, expected);
    for list in ["deleted_since_snapshot", "missing", "digest_mismatch"] {
        assert_eq!(manifest["blobs"][list], json!([]), "{list}");
    }

    // Refusals: a non-empty backup target; restoring into a data directory in use.
    let again = secureconnect(
        &live_dir,
        &["backup".as_ref(), "--to".as_ref(), backup.as_os_str()],
    )
    .await;
    assert!(!again.status.success());
    assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));
    let over = secureconnect(
        &live_dir,
        &["restore".as_ref(), "--from".as_ref(), backup.as_os_str()],
    )
    .await;
    assert!(!over.status.success());
    assert!(stderr(&over).contains("not empty"), "{}", stderr(&over));

    // A backup with one byte of its database changed is refused, and nothing is placed.
    let tampered = root.path().join("tampered");
    copy_tree(&backup, &tampered);
    let db_len = std::fs::metadata(tampered.join("secureconnect.db"))
        .unwrap()
        .len();
    flip_byte(&tampered.join("secureconnect.db"), db_len / 2);
    let refused_dir = root.path().join("refused");
    let refused = secureconnect(
        &refused_dir,
        &["restore".as_ref(), "--from".as_ref(), tampered.as_os_str()],
    )
    .await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("checksum"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !refused_dir.exists() || std::fs::read_dir(&refused_dir).unwrap().next().is_none(),
        "a refused restore leaves the data directory empty"
    );

    // The restore, and a new instance on it.
    let restored_dir = root.path().join("restored");
    let out = secureconnect(
        &restored_dir,
        &["restore".as_ref(), "--from".as_ref(), backup.as_os_str()],
    )
    .await;
    assert!(out.status.success(), "restore: {}", stderr(&out));
    assert_private(&restored_dir);
    let restored = TestApp::start(embedded(&restored_dir), None).await;

    // Tokens issued before the backup still verify (the JWT key and sessions came back).
    for u in [&alice, &bob, &carol] {
        let me = restored.get("/v1/users/me", Some(&u.access)).await;
        let me = me.assert_ok(200);
        assert_eq!(me["id"], u.id.as_str());
        assert_eq!(me["username"], u.username.as_str());
    }
    // Passwords, and carol's second factor (its secret is encrypted with the data key).
    restored.login("alice").await.assert_ok(200);
    restored.login("bob").await.assert_ok(200);
    restored
        .post("/v1/auth/login", None, login_body("carol", None))
        .await
        .assert_error(401, "TOTP_REQUIRED");
    let now_step = sc_core::time::Timestamp::now().unix_seconds() / 30;
    // The step used to enable cannot be used again: the next one (within the ±1 window) or now.
    let step = if now_step == enabled_step {
        now_step + 1
    } else {
        now_step
    };
    let code = totp_code(&secret, (step * 30) as u64);
    restored
        .post("/v1/auth/login", None, login_body("carol", Some(&code)))
        .await
        .assert_ok(200);

    // Conversations, and messages: the direct one whole; the group up to one point in time.
    for u in [&alice, &bob, &carol] {
        assert_eq!(
            conversations(&restored, &u.access).await,
            conversations(&live, &u.access).await
        );
    }
    let direct_history = history(&live, &alice.access, &direct).await;
    assert_eq!(
        history(&restored, &alice.access, &direct).await,
        direct_history
    );
    let live_group = history(&live, &alice.access, &group).await;
    let restored_group = history(&restored, &alice.access, &group).await;
    let n = restored_group.len();
    eprintln!(
        "group: {before} messages, then {sent_before} sent when the backup started, \
         {sent_after} when it finished; the snapshot has {n}"
    );
    assert_eq!(
        seqs(&restored_group),
        (1..=n as i64).collect::<Vec<_>>(),
        "gap-free from 1"
    );
    assert_eq!(
        restored_group[..],
        live_group[..n],
        "a prefix of the live history"
    );
    assert!(
        n >= before + sent_before,
        "everything sent before the backup started is in it ({n} < {before} + {sent_before})"
    );
    assert!(
        n <= before + sent_after,
        "nothing sent after the backup finished is in it ({n} > {before} + {sent_after})"
    );
    assert_eq!(live_group.len(), before + written.len());
    for (seq, content) in &written {
        let m = &live_group[(*seq - 1) as usize];
        assert_eq!(m["content"], content.as_str());
    }
    assert_eq!(
        manifest["database"]["counts"]["messages"],
        (direct_history.len() + n) as u64,
        "the manifest counts the snapshot's messages"
    );

    // Files: the same listing, the same bytes; the deleted one stays deleted.
    assert_eq!(
        root_files(&restored, &alice.access).await,
        root_files(&live, &alice.access).await
    );
    for (file, bytes) in [(&pixel, PNG), (&notes_file, notes.as_slice())] {
        let id = file["id"].as_str().unwrap();
        let got = download(&restored, &alice.access, id).await;
        assert_eq!(got.len(), bytes.len(), "{id}");
        assert!(got == bytes, "the bytes of {id}");
        assert_eq!(sha256_hex(&got), file["sha256"].as_str().unwrap());
    }
    restored
        .get(&format!("/v1/files/{gone_id}"), Some(&bob.access))
        .await
        .assert_error(404, "NOT_FOUND");

    // An object lost from the live store (its version still refers to it) is reported by the
    // backup, which still completes, and by the restore.
    let pixel_object = manifest["blobs"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["sha256"] == pixel["sha256"])
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(live_dir.join(&pixel_object)).unwrap();
    let lossy = root.path().join("lossy");
    let out = secureconnect(
        &live_dir,
        &["backup".as_ref(), "--to".as_ref(), lossy.as_os_str()],
    )
    .await;
    assert!(out.status.success(), "backup: {}", stderr(&out));
    assert!(
        stderr(&out).contains("missing from the live store"),
        "{}",
        stderr(&out)
    );
    let lossy_manifest: Value =
        serde_json::from_slice(&std::fs::read(lossy.join("manifest.json")).unwrap()).unwrap();
    let key = pixel_object.strip_prefix("blobs/").unwrap();
    assert_eq!(lossy_manifest["blobs"]["missing"], json!([key]));
    assert_eq!(lossy_manifest["blobs"]["count"], 1);
    let out = secureconnect(
        &root.path().join("lossy-restored"),
        &["restore".as_ref(), "--from".as_ref(), lossy.as_os_str()],
    )
    .await;
    assert!(out.status.success(), "restore: {}", stderr(&out));
    assert!(stderr(&out).contains("have no object"), "{}", stderr(&out));

    restored.stop().await;
    live.stop().await;
}

#[tokio::test]
async fn postgres_and_s3_configurations_are_sent_to_the_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("backup");
    let run = |command: &'static str, envs: Vec<(&'static str, &'static str)>| {
        let target = target.clone();
        let data = dir.path().join("data");
        async move {
            let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_secureconnect"));
            for (k, _) in std::env::vars() {
                if k.starts_with("SC_") {
                    c.env_remove(k);
                }
            }
            let flag = if command == "backup" {
                "--to"
            } else {
                "--from"
            };
            c.env("SC_DATA_DIR", &data)
                .envs(envs)
                .args([command, flag])
                .arg(&target)
                .output()
                .await
                .unwrap()
        }
    };
    let postgres = vec![("SC_DATABASE_URL", "postgres://sc@127.0.0.1:1/sc")];
    let s3 = vec![
        ("SC_S3_ENDPOINT", "http://127.0.0.1:1"),
        ("SC_S3_BUCKET", "sc-backup-test"),
        ("SC_S3_ACCESS_KEY_ID", "key"),
        ("SC_S3_SECRET_ACCESS_KEY", "secret"),
    ];
    for command in ["backup", "restore"] {
        for (what, envs) in [("PostgreSQL", postgres.clone()), ("S3", s3.clone())] {
            let out = run(command, envs).await;
            assert!(!out.status.success(), "{command} with {what}");
            let err = stderr(&out);
            assert!(err.contains(what), "{err}");
            assert!(
                err.contains(&format!("scripts/{command}-postgres-s3.sh")),
                "{err}"
            );
        }
    }
    assert!(!target.exists(), "nothing was written");
    assert!(
        !dir.path().join("data").exists(),
        "no data directory created"
    );
}
