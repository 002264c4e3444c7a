//! The `secureconnect` binary itself: embedded defaults, config commands, admin commands.

use crate::common::KillOnDrop;
use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_secureconnect"));
    // The tests' own environment must not leak into these processes.
    for (k, _) in std::env::vars() {
        if k.starts_with("SC_") {
            c.env_remove(k);
        }
    }
    c
}

#[tokio::test]
async fn serve_with_no_configuration_creates_data_and_serves() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let port = crate::common::free_port();
    let mut child = bin()
        .arg("serve")
        .current_dir(dir.path())
        // Only the port differs from the defaults, so tests can run in parallel.
        .env("SC_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
        {
            up = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let data = dir.path().join("data");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let checks = || {
        assert!(up, "server answered /health");
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("jwt_secret")), 0o600);
        assert_eq!(mode(&data.join("data_key")), 0o600);
        assert!(data.join("secureconnect.db").exists());
    };
    let result = std::panic::catch_unwind(checks);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    result.unwrap();
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(
        out.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "JSON log lines: {out}"
    );
}

#[test]
fn config_check_names_the_bad_key_and_print_redacts() {
    let out = bin()
        .args(["config", "check"])
        .env("SC_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("smtp_pw");
    std::fs::write(&secret_file, "smtp-super-secret\n").unwrap();
    let out = bin()
        .args(["config", "print"])
        .env(
            "SC_DATABASE_URL",
            "postgres://app:db-super-secret@db.internal/sc",
        )
        .env("SC_SMTP_PASSWORD_FILE", &secret_file)
        .env("SC_JWT_SECRET", "jwt-super-secret-jwt-super-secret-0123")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("database_url"), "{text}");
    assert!(
        text.contains("smtp_password"),
        "the file's secret was loaded: {text}"
    );
    for s in ["db-super-secret", "smtp-super-secret", "jwt-super-secret"] {
        assert!(!text.contains(s), "{s} printed: {text}");
    }
    let ok = bin().args(["config", "check"]).output().unwrap();
    assert!(ok.status.success());
}

#[tokio::test]
async fn admin_create_user_and_set_role() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "granite-falcon-harvest-8\n").unwrap();
    let data = dir.path().join("data");
    let out = bin()
        .args([
            "admin",
            "create-user",
            "--email",
            "root@example.org",
            "--username",
            "rootadmin",
            "--admin",
            "--password-file",
        ])
        .arg(&pw)
        .env("SC_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(admin)"));
    let weak = dir.path().join("weak");
    std::fs::write(&weak, "password").unwrap();
    let out = bin()
        .args([
            "admin",
            "create-user",
            "--email",
            "w@example.org",
            "--username",
            "weak",
            "--password-file",
        ])
        .arg(&weak)
        .env("SC_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = bin()
        .args([
            "admin",
            "set-role",
            "--username",
            "rootadmin",
            "--role",
            "user",
        ])
        .env("SC_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The account works against a server on the same data.
    let mut cfg = sc_core::config::Config::default();
    cfg.data_dir = data.clone();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let app = crate::common::TestApp::start(cfg, None).await;
    let r = app
        .post(
            "/v1/auth/login",
            None,
            serde_json::json!({"username": "rootadmin", "password": "granite-falcon-harvest-8"}),
        )
        .await;
    let d = r.assert_ok(200);
    assert_eq!(d["user"]["role"], "user");
    assert_eq!(d["user"]["email_verified"], true);
}

#[tokio::test]
async fn migrations_define_the_same_schema_on_both_backends() {
    crate::common::assert_required_backends();
    let Some(pg) = crate::common::pg_url() else {
        eprintln!("skipping schema parity: SC_TEST_PG_URL not set");
        return;
    };
    assert_eq!(
        sc_db::Db::migration_versions(sc_db::Backend::Sqlite),
        sc_db::Db::migration_versions(sc_db::Backend::Postgres)
    );
    let dir = tempfile::tempdir().unwrap();
    let lite = sc_db::Db::connect_sqlite(&dir.path().join("s.db"), 2)
        .await
        .unwrap();
    lite.migrate().await.unwrap();
    let shared = crate::common::Shared::new().await;
    let url = shared.database_url.clone().unwrap_or(pg);
    let pgdb = sc_db::Db::connect_postgres(&url, 2).await.unwrap();
    pgdb.migrate().await.unwrap();
    let (a, b) = (
        lite.schema_columns().await.unwrap(),
        pgdb.schema_columns().await.unwrap(),
    );
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[tokio::test]
async fn housekeeping_purges_only_expired_rows() {
    use sc_core::{ids::*, time::Timestamp};
    let shared = crate::common::Shared::new().await;
    let db = match &shared.database_url {
        Some(url) => sc_db::Db::connect_postgres(url, 2).await.unwrap(),
        None => sc_db::Db::connect_sqlite(&shared.data_dir.path().join("h.db"), 2)
            .await
            .unwrap(),
    };
    db.migrate().await.unwrap();
    let now = Timestamp::now();
    let user = UserId::new();
    let new = sc_db::users::NewUser {
        id: user,
        email: "h@example.org",
        email_normalized: "h@example.org",
        username: "housekeeper",
        display_name: "h",
        search_name: "h",
        password_hash: "x",
        role: "user",
        email_verified: true,
        now,
    };
    db.users().insert(&new).await.unwrap().unwrap();
    let session = sc_db::sessions::SessionRow {
        id: SessionId::new(),
        user_id: user,
        device_name: None,
        ip: None,
        user_agent: None,
        created_at: now,
        last_seen_at: now,
        idle_expires_at: now.plus(std::time::Duration::from_secs(3600)),
        absolute_expires_at: now.plus(std::time::Duration::from_secs(7200)),
        revoked_at: None,
    };
    db.sessions()
        .insert(&session, "refresh-hash")
        .await
        .unwrap();
    db.realtime()
        .insert_ticket("old", session.id, user, now)
        .await
        .unwrap();
    db.realtime()
        .insert_ticket(
            "fresh",
            session.id,
            user,
            now.plus(std::time::Duration::from_secs(30)),
        )
        .await
        .unwrap();
    // One hour and a bit later only the old ticket is past its keep time.
    let later = now.plus(std::time::Duration::from_secs(3600 + 10));
    assert_eq!(db.purge_expired(later).await.unwrap(), 1);
    assert_eq!(db.purge_expired(later).await.unwrap(), 0);
    assert!(
        db.sessions().find(session.id).await.unwrap().is_some(),
        "live sessions are kept"
    );
}

/// A minimal OTLP/HTTP receiver: answers 200 to every POST and keeps the request lines and
/// bodies (protobuf; span names, attribute keys and string values appear as plain bytes).
async fn otlp_receiver() -> (
    u16,
    std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).await.unwrap();
                        if h == "\r\n" || h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.unwrap();
                    sink.lock()
                        .unwrap()
                        .push((request_line.trim().to_string(), body));
                    reader
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                }
            });
        }
    });
    (port, got)
}

// Multi-threaded: the receiver keeps answering while the test waits for the process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_an_otlp_collector_with_the_request_id_on_every_span() {
    let (otlp_port, received) = otlp_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let port = crate::common::free_port();
    let mut child = KillOnDrop(
        bin()
            .arg("serve")
            .env("SC_DATA_DIR", dir.path().join("data"))
            .env("SC_LISTEN", format!("127.0.0.1:{port}"))
            .env("SC_OTLP_ENDPOINT", format!("http://127.0.0.1:{otlp_port}"))
            .env("SC_OTLP_SERVICE_NAME", "sc-trace-test")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let request_id = "otlp-trace-check-7f3a";
    let r = client
        .post(format!("{base}/v1/auth/register"))
        .header("x-request-id", request_id)
        .json(
            &serde_json::json!({"email": "traced@example.org", "username": "traced",
            "display_name": "Traced", "password": crate::common::PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 201, "{}", r.text().await.unwrap());
    // A graceful stop flushes the spans still buffered.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status();
    assert!(child.0.wait().unwrap().success());
    let got = received.lock().unwrap().clone();
    assert!(!got.is_empty(), "no export reached the collector");
    assert!(
        got.iter()
            .all(|(line, _)| line.starts_with("POST /v1/traces ")),
        "{:?}",
        got.iter().map(|(l, _)| l).collect::<Vec<_>>()
    );
    let all: Vec<u8> = got.into_iter().flat_map(|(_, b)| b).collect();
    let count = |needle: &str| {
        all.windows(needle.len())
            .filter(|w| *w == needle.as_bytes())
            .count()
    };
    assert!(count("sc-trace-test") > 0, "service.name missing");
    assert!(count("db.query") > 0, "no database child span");
    // The request span and each of its database spans carry the request id.
    assert!(
        count(request_id) > count("db.query").min(2),
        "request id on {} spans, db spans {}",
        count(request_id),
        count("db.query")
    );
    // No secret in an exported span.
    assert_eq!(count(crate::common::PASSWORD), 0);
}
