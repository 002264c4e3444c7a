//! End-to-end encryption with the SDK (crates/sc-client) against the real server: devices of
//! several users in one MLS group, commits racing for an epoch, removal, offline catch-up, a new
//! device, encrypted attachments, and the server's database and logs without any plaintext.

use crate::common::*;
use sc_client::{Api, ClientError, E2eeClient, Payload, Vault, VaultKey};
use std::collections::{BTreeSet, HashSet};
use uuid::Uuid;

async fn device(app: &TestApp, username: &str) -> E2eeClient {
    let api = Api::new(&app.base).unwrap();
    let pair = api
        .login(username, PASSWORD, None, "e2ee test")
        .await
        .unwrap();
    E2eeClient::register_device(api, pair, None).await.unwrap()
}

fn uid(u: &TestUser) -> Uuid {
    Uuid::parse_str(&u.id).unwrap()
}

/// Every text a device can read in a conversation, in order (undecryptable ones as `None`).
async fn texts(d: &mut E2eeClient, conv: Uuid) -> Vec<Option<String>> {
    d.read_new(conv)
        .await
        .unwrap()
        .iter()
        .map(|m| m.text().map(str::to_string))
        .collect()
}

/// Makes a group of `owner` with `members`, and has every other device accept its welcome.
async fn sealed_group(
    owner: &mut E2eeClient,
    members: &[Uuid],
    others: &mut [&mut E2eeClient],
) -> Uuid {
    let conv = owner
        .create_conversation("group", members, Some("sealed"))
        .await
        .unwrap();
    for d in others.iter_mut() {
        assert_eq!(d.accept_welcomes().await.unwrap(), vec![conv.id], "{d:?}");
    }
    conv.id
}

#[tokio::test]
async fn three_users_with_two_devices_each_read_every_message() {
    // Two instances on one database: each user's devices are on different instances.
    let apps = TestApp::spawn_cluster(2, |_| {}).await;
    let app = &apps[0];
    let (a, b, c) = (
        app.register("e2alice").await,
        app.register("e2bob").await,
        app.register("e2carol").await,
    );
    let mut devices = Vec::new();
    for (i, name) in ["e2alice", "e2alice", "e2bob", "e2bob", "e2carol", "e2carol"]
        .into_iter()
        .enumerate()
    {
        devices.push(device(&apps[i % 2], name).await);
    }
    let (owner, rest) = devices.split_first_mut().unwrap();
    let mut others: Vec<&mut E2eeClient> = rest.iter_mut().collect();
    let conv = sealed_group(owner, &[uid(&b), uid(&c)], &mut others).await;

    // One commit added the five other devices: everyone is at epoch 1 with six leaves.
    for d in devices.iter_mut() {
        assert_eq!(d.epoch(conv), Some(1));
        assert_eq!(d.group_members(conv).len(), 6);
    }
    for (i, d) in devices.iter_mut().enumerate() {
        d.send_text(conv, &format!("marmalade-{i}")).await.unwrap();
    }
    let expected: Vec<Option<String>> = (0..6).map(|i| Some(format!("marmalade-{i}"))).collect();
    for d in devices.iter_mut() {
        assert_eq!(texts(d, conv).await, expected, "{d:?}");
    }
    // The server stored ciphertext only, and search finds nothing.
    let page = app
        .get(
            &format!("/v1/conversations/{conv}/messages"),
            Some(&b.access),
        )
        .await;
    for m in page.assert_ok(200)["items"].as_array().unwrap() {
        assert!(m["content"].is_null());
        assert!(m["ciphertext"].as_str().unwrap().len() > 40);
    }
    let found = app
        .get("/v1/search/messages?q=marmalade", Some(&b.access))
        .await;
    assert_eq!(found.assert_ok(200)["items"], serde_json::json!([]));
    // A commit through one instance reaches a member's socket on the other (through Redis;
    // the embedded tier has no cross-instance bus, so there the socket shares the instance).
    let mut ws = apps[if redis_url().is_some() { 0 } else { 1 }].ws(&a).await;
    devices[3].rotate_keys(conv).await.unwrap();
    let ev = ws.expect("mls.commit").await;
    assert_eq!(ev["conversation_id"], conv.to_string());
    assert_eq!(ev["epoch"], 2);
}

#[tokio::test]
async fn concurrent_commits_one_wins_and_the_loser_retries_on_top() {
    let app = TestApp::spawn().await;
    let _a = app.register("e2race_a").await;
    let b = app.register("e2race_b").await;
    let mut a1 = device(&app, "e2race_a").await;
    let mut b1 = device(&app, "e2race_b").await;
    let mut b2 = device(&app, "e2race_b").await;
    let conv = sealed_group(&mut a1, &[uid(&b)], &mut [&mut b1, &mut b2]).await;

    // Both devices catch up to epoch 1 and build a commit on it before either posts: the
    // server takes exactly one, the other answers 409 and is rebuilt on epoch 2.
    let (ra, rb) = tokio::join!(a1.rotate_keys(conv), b1.rotate_keys(conv));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(a1.commit_conflicts() + b1.commit_conflicts(), 1);
    b2.catch_up_commits(conv).await.unwrap();
    a1.catch_up_commits(conv).await.unwrap();
    b1.catch_up_commits(conv).await.unwrap();
    for d in [&mut a1, &mut b1, &mut b2] {
        assert_eq!(d.epoch(conv), Some(3), "{d:?}");
    }
    a1.send_text(conv, "after the race").await.unwrap();
    assert_eq!(
        texts(&mut b2, conv).await,
        vec![Some("after the race".into())]
    );
    assert_eq!(
        texts(&mut b1, conv).await,
        vec![Some("after the race".into())]
    );
}

#[tokio::test]
async fn a_removed_member_cannot_read_what_is_sent_after() {
    let app = TestApp::spawn().await;
    let _a = app.register("e2rm_a").await;
    let b = app.register("e2rm_b").await;
    let c = app.register("e2rm_c").await;
    let mut a1 = device(&app, "e2rm_a").await;
    let mut b1 = device(&app, "e2rm_b").await;
    let mut c1 = device(&app, "e2rm_c").await;
    let mut c2 = device(&app, "e2rm_c").await;
    let conv = sealed_group(
        &mut a1,
        &[uid(&b), uid(&c)],
        &mut [&mut b1, &mut c1, &mut c2],
    )
    .await;
    a1.send_text(conv, "before removal").await.unwrap();
    assert_eq!(
        texts(&mut c1, conv).await,
        vec![Some("before removal".into())]
    );

    a1.remove_member(conv, uid(&c)).await.unwrap();
    assert_eq!(a1.group_members(conv).len(), 2);
    a1.send_text(conv, "quince-after-removal").await.unwrap();
    assert_eq!(
        texts(&mut b1, conv).await,
        vec![
            Some("before removal".into()),
            Some("quince-after-removal".into())
        ]
    );
    // The server no longer serves them the conversation; and even with the ciphertext in
    // hand (here from a remaining member), neither of their devices can decrypt it.
    let err = c1.read_new(conv).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    let latest = a1.api().latest_messages(conv, 1).await.unwrap();
    for d in [&mut c1, &mut c2] {
        let got = d.decrypt(&latest[0]);
        assert!(got.body.is_err(), "{:?}", got.body);
    }
}

#[tokio::test]
async fn an_offline_device_catches_up_across_several_commits() {
    let app = TestApp::spawn().await;
    let _a = app.register("e2off_a").await;
    let b = app.register("e2off_b").await;
    let d = app.register("e2off_d").await;
    let mut a1 = device(&app, "e2off_a").await;
    let mut b1 = device(&app, "e2off_b").await;
    let mut d1 = device(&app, "e2off_d").await;
    let conv = sealed_group(&mut a1, &[uid(&b)], &mut [&mut b1]).await;
    // b1 goes offline while the group changes four times and messages arrive in between.
    a1.send_text(conv, "one").await.unwrap();
    a1.rotate_keys(conv).await.unwrap();
    a1.send_text(conv, "two").await.unwrap();
    a1.add_members(conv, &[uid(&d)]).await.unwrap();
    assert_eq!(d1.accept_welcomes().await.unwrap(), vec![conv]);
    d1.send_text(conv, "three").await.unwrap();
    d1.rotate_keys(conv).await.unwrap();
    a1.rotate_keys(conv).await.unwrap();
    a1.send_text(conv, "four").await.unwrap();
    assert_eq!(a1.epoch(conv), Some(5));

    assert_eq!(b1.epoch(conv), Some(1));
    let got = texts(&mut b1, conv).await;
    assert_eq!(b1.epoch(conv), Some(5));
    assert_eq!(
        got,
        ["one", "two", "three", "four"]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect::<Vec<_>>()
    );
    // d1 joined at epoch 3: what was sent before it cannot be read, the rest can.
    assert_eq!(
        texts(&mut d1, conv).await,
        vec![None, None, Some("three".into()), Some("four".into())]
    );
}

#[tokio::test]
async fn a_new_device_joins_and_reads_new_messages_not_old_ones() {
    let app = TestApp::spawn().await;
    let a = app.register("e2new_a").await;
    let b = app.register("e2new_b").await;
    let mut a1 = device(&app, "e2new_a").await;
    let mut b1 = device(&app, "e2new_b").await;
    let conv = sealed_group(&mut a1, &[uid(&b)], &mut [&mut b1]).await;
    b1.send_text(conv, "old news").await.unwrap();

    // A device made later joins from the group info (an external commit); the server
    // accepts it because its user is a member, and the others check it is a listed device.
    let mut a2 = device(&app, "e2new_a").await;
    a2.rejoin(conv).await.unwrap();
    b1.send_text(conv, "fresh news").await.unwrap();
    assert_eq!(
        texts(&mut a2, conv).await,
        vec![None, Some("fresh news".into())]
    );
    a2.send_text(conv, "hello from the new device")
        .await
        .unwrap();
    assert_eq!(
        texts(&mut b1, conv).await,
        vec![
            Some("old news".into()),
            Some("fresh news".into()),
            Some("hello from the new device".into())
        ]
    );
    assert_eq!(a1.group_members(conv).len(), 2);
    texts(&mut a1, conv).await;
    assert_eq!(a1.group_members(conv).len(), 3);
    // Safety numbers: both sides compute the same digits, and a new device changes them.
    let before = b1.safety_number(uid(&a)).await.unwrap();
    assert_eq!(before, a1.safety_number(uid(&b)).await.unwrap());
    let a3 = device(&app, "e2new_a").await;
    assert_ne!(before, b1.safety_number(uid(&a)).await.unwrap());
    drop(a3);
}

#[tokio::test]
async fn an_outsider_cannot_commit_and_a_forged_sender_is_refused() {
    let app = TestApp::spawn().await;
    let _a = app.register("e2out_a").await;
    let b = app.register("e2out_b").await;
    let _m = app.register("e2out_m").await;
    let mut a1 = device(&app, "e2out_a").await;
    let mut b1 = device(&app, "e2out_b").await;
    let mut mallory = device(&app, "e2out_m").await;
    let conv = sealed_group(&mut a1, &[uid(&b)], &mut [&mut b1]).await;
    // Not a member: the Delivery Service does not even show the group info.
    let err = mallory.rejoin(conv).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    // A message whose MLS sender is a1 but whose server-side author is someone else is
    // not shown as that author's.
    let sent = a1.send_text(conv, "signed by alice").await.unwrap();
    let mut forged = sent.clone();
    forged.sender_id = uid(&b);
    let got = b1.decrypt(&forged);
    let reason = got.body.unwrap_err();
    assert!(reason.contains("sender does not match"), "{reason}");
}

#[tokio::test]
async fn encrypted_attachments_are_ciphertext_on_the_server() {
    // The SDK follows the signed URLs as given: they must name this instance.
    let port = free_port();
    let app = TestApp::spawn_with(|c| {
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.public_url = format!("http://127.0.0.1:{port}");
    })
    .await;
    let _a = app.register("e2file_a").await;
    let b = app.register("e2file_b").await;
    let mut a1 = device(&app, "e2file_a").await;
    let mut b1 = device(&app, "e2file_b").await;
    let conv = sealed_group(&mut a1, &[uid(&b)], &mut [&mut b1]).await;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(std::iter::repeat_n(b"persimmon-pixels".as_slice(), 64).flatten());
    let (message, key) = a1
        .send_file(conv, "holiday.png", "image/png", &png, Some("a photo"))
        .await
        .unwrap();
    assert_eq!(message.attachments, vec![key.file_id]);

    let got = b1.read_new(conv).await.unwrap();
    let Ok(Payload::File { file, text }) = &got[0].body else {
        panic!("{:?}", got[0].body)
    };
    assert_eq!(text.as_deref(), Some("a photo"));
    assert_eq!(file.name, "holiday.png");
    assert_eq!(b1.fetch_attachment(file).await.unwrap(), png);
    // What the server holds and serves: a random name, opaque bytes, octet-stream.
    let view = app
        .get(&format!("/v1/files/{}", key.file_id), Some(&b.access))
        .await;
    let view = view.assert_ok(200);
    assert_eq!(view["encrypted"], true);
    assert!(!view["name"].as_str().unwrap().contains("holiday"));
    let raw = b1.api().download_file(key.file_id).await.unwrap();
    assert_eq!(raw.len(), png.len() + 16);
    assert!(!raw.windows(9).any(|w| w == b"persimmon"));
    // An attachment that does not match its message's hash is refused.
    let mut tampered = file.clone();
    tampered.sha256 = "00".repeat(32);
    assert!(matches!(
        b1.fetch_attachment(&tampered).await,
        Err(ClientError::Untrusted(_))
    ));
}

#[tokio::test]
async fn device_state_survives_a_restart_encrypted_at_rest() {
    let app = TestApp::spawn().await;
    let _a = app.register("e2vault_a").await;
    let b = app.register("e2vault_b").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob.state");
    let key = VaultKey::Passphrase("plum tree lantern".into());
    let mut a1 = device(&app, "e2vault_a").await;
    let api = Api::new(&app.base).unwrap();
    let pair = api
        .login("e2vault_b", PASSWORD, None, "vault")
        .await
        .unwrap();
    let vault = Vault::create(&path, &key).unwrap();
    let mut b1 = E2eeClient::register_device(api, pair, Some(vault))
        .await
        .unwrap();
    let conv = sealed_group(&mut a1, &[uid(&b)], &mut [&mut b1]).await;
    a1.send_text(conv, "tangelo-before-restart").await.unwrap();
    b1.send_text(conv, "tangelo-own-message").await.unwrap();
    let device_id = b1.device_id();
    drop(b1);

    let raw = std::fs::read(&path).unwrap();
    assert!(!raw.windows(7).any(|w| w == b"tangelo"));
    assert!(
        E2eeClient::open(&path, &VaultKey::Passphrase("wrong".into()))
            .await
            .is_err()
    );
    let mut b1 = E2eeClient::open(&path, &key).await.unwrap();
    assert_eq!(b1.device_id(), device_id);
    a1.send_text(conv, "after restart").await.unwrap();
    assert_eq!(
        texts(&mut b1, conv).await,
        vec![
            Some("tangelo-before-restart".into()),
            Some("tangelo-own-message".into()),
            Some("after restart".into())
        ]
    );
}

#[tokio::test]
async fn no_plaintext_of_encrypted_messages_in_the_database_or_the_logs() {
    let app = TestApp::spawn().await;
    let _a = app.register("e2leak_a").await;
    let b = app.register("e2leak_b").await;
    let mut a1 = device(&app, "e2leak_a").await;
    let mut b1 = device(&app, "e2leak_b").await;
    let conv = sealed_group(&mut a1, &[uid(&b)], &mut [&mut b1]).await;
    let words: BTreeSet<String> = (0..5)
        .map(|i| format!("kumquat{}zebra{i}", Uuid::new_v4().simple()))
        .collect();
    for w in &words {
        a1.send_text(conv, w).await.unwrap();
    }
    let read: HashSet<String> = b1
        .read_new(conv)
        .await
        .unwrap()
        .iter()
        .filter_map(|m| m.text().map(str::to_string))
        .collect();
    assert_eq!(read.len(), words.len());

    let logs = captured_logs();
    let db = database_text(&app).await;
    // The scan does see the data (a username), so an empty scan cannot pass.
    assert!(db.contains("e2leak_a"));
    for w in &words {
        assert!(!logs.contains(w.as_str()), "a log line holds {w}");
        assert!(!db.contains(w.as_str()), "the database holds {w}");
    }
}

/// Everything the database holds, as text: the SQLite files byte for byte, or every row of
/// every table of the PostgreSQL database.
async fn database_text(app: &TestApp) -> String {
    let db = secureconnect::app::connect_db(&app.cfg).await.unwrap();
    match db {
        sc_db::Db::Sqlite(..) => {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&app.cfg.data_dir).unwrap() {
                let p = entry.unwrap().path();
                if p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains(".db"))
                {
                    out.extend(std::fs::read(&p).unwrap_or_default());
                }
            }
            String::from_utf8_lossy(&out).to_string()
        }
        sc_db::Db::Postgres(p) => {
            let tables: Vec<(String,)> = sqlx::query_as(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_all(&p)
            .await
            .unwrap();
            let mut out = String::new();
            for (t,) in tables {
                let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT t::text FROM \"{t}\" t"
                )))
                .fetch_all(&p)
                .await
                .unwrap();
                for (r,) in rows {
                    out.push_str(&r);
                    out.push('\n');
                }
            }
            out
        }
    }
}

/// The terminal client (`secureconnect client …`, the real binary) as one side of an
/// encrypted conversation, the SDK as the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_client_reads_and_writes_an_encrypted_conversation() {
    let app = TestApp::spawn().await;
    let a = app.register("e2cli_a").await;
    let _b = app.register("e2cli_b").await;
    let mut b1 = device(&app, "e2cli_b").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("alice.state");
    let cli = |args: &[&str], stdin: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_secureconnect"));
        for (k, _) in std::env::vars() {
            if k.starts_with("SC_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .arg("client")
            .arg("--state")
            .arg(&state)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "client {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let pass = "lantern orchard\n";
    let login_input = format!("{pass}{PASSWORD}\n");
    let out = tokio::task::block_in_place(|| {
        cli(
            &["login", "--server", &app.base, "--login", "e2cli_a"],
            &login_input,
        )
    });
    assert!(out.contains("signed in as e2cli_a"), "{out}");
    assert!(
        !std::fs::read(&state)
            .unwrap()
            .windows(7)
            .any(|w| w == b"e2cli_a")
    );
    let conv = tokio::task::block_in_place(|| {
        cli(
            &[
                "create",
                "--title",
                "cli room",
                "--members",
                "e2cli_b",
                "--encrypted",
            ],
            pass,
        )
    });
    let conv = Uuid::parse_str(conv.trim()).unwrap();
    assert_eq!(b1.accept_welcomes().await.unwrap(), vec![conv]);
    let listed = tokio::task::block_in_place(|| cli(&["conversations"], pass));
    assert!(
        listed.contains(&conv.to_string()) && listed.contains("E2EE"),
        "{listed}"
    );
    let c = conv.to_string();
    tokio::task::block_in_place(|| {
        cli(
            &["send", "--conversation", &c, "guava from the terminal"],
            pass,
        )
    });
    assert_eq!(
        texts(&mut b1, conv).await,
        vec![Some("guava from the terminal".into())]
    );
    b1.send_text(conv, "papaya from the sdk").await.unwrap();
    let read = tokio::task::block_in_place(|| cli(&["read", "--conversation", &c], pass));
    assert!(read.contains("e2cli_a: guava from the terminal"), "{read}");
    assert!(read.contains("e2cli_b: papaya from the sdk"), "{read}");
    let safety = tokio::task::block_in_place(|| cli(&["safety", "--username", "e2cli_b"], pass));
    assert_eq!(safety.trim(), b1.safety_number(uid(&a)).await.unwrap());

    // `follow` prints what arrives while it runs.
    let mut follow = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_secureconnect"))
            .env("SC_CLIENT_PASSPHRASE", pass.trim())
            .args(["client", "--state"])
            .arg(&state)
            .args(["follow", "--conversation", &c])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = |r: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(r).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        rx
    };
    let out_lines = lines(Box::new(follow.0.stdout.take().unwrap()));
    let err_lines = lines(Box::new(follow.0.stderr.take().unwrap()));
    let wait_for = |rx: &std::sync::mpsc::Receiver<String>, needle: &str| loop {
        let l = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no line with {needle}"));
        if l.contains(needle) {
            return;
        }
    };
    tokio::task::block_in_place(|| wait_for(&err_lines, "following"));
    b1.send_text(conv, "lychee while following").await.unwrap();
    tokio::task::block_in_place(|| wait_for(&out_lines, "lychee while following"));
    drop(follow);

    tokio::task::block_in_place(|| cli(&["logout"], pass));
    assert!(!state.exists());
}
