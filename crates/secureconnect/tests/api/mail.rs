//! Mail through a real SMTP server (`SmtpSink`: the `mailin` crate in this process), the queue's
//! retry when SMTP is down, and STARTTLS refusing a certificate nobody vouches for.

use crate::common::*;
use sc_core::config::SmtpSecurity;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn mail_goes_through_smtp() {
    let smtp = SmtpSink::start().await;
    let port = smtp.port;
    let app = TestApp::spawn_with(|c| {
        c.smtp_host = Some("127.0.0.1".into());
        c.smtp_port = port;
        c.smtp_security = SmtpSecurity::None;
        c.mail_from = "SecureConnect <noreply@sc.test>".into();
    })
    .await;
    let u = app.register("smtpuser").await;
    let mail = wait_for_mail_in(smtp.dir.path(), &u.email, "verify-email?token=").await;
    assert!(
        mail.contains("From: SecureConnect <noreply@sc.test>"),
        "{mail}"
    );
    assert!(mail.contains("Subject: Confirm your email address"));
    assert!(
        mails_in(&app.outbox()).is_empty(),
        "SMTP configured: nothing in the outbox"
    );
    assert!(
        app.metrics()
            .await
            .contains("secureconnect_mail_sent_total 1")
    );
}

#[tokio::test]
async fn smtp_down_never_fails_the_request_and_mail_is_retried() {
    let port = free_port();
    let app = TestApp::spawn_with(|c| {
        c.smtp_host = Some("127.0.0.1".into());
        c.smtp_port = port;
        c.smtp_security = SmtpSecurity::None;
    })
    .await;
    // Nothing listens on the port: the request still succeeds.
    let u = app.register("retryuser").await;
    for _ in 0..100 {
        if app
            .metrics()
            .await
            .contains("secureconnect_mail_failed_total 1")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        app.metrics()
            .await
            .contains("secureconnect_mail_failed_total 1")
    );
    // Readiness says so, without taking the instance out (mail is queued, not lost).
    let ready = app.get("/ready", None).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["checks"]["mail"], "degraded", "{}", ready.body);
    assert_eq!(ready.body["status"], "degraded");
    // The listener comes up; the queued mail is delivered on a later attempt.
    let smtp = SmtpSink::start_on(port).await;
    let dir = smtp.dir.path().to_path_buf();
    let mut found = false;
    for _ in 0..200 {
        if mails_in(&dir).iter().any(|m| m.contains(&u.email)) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "mail delivered after SMTP came back");
    // The successful delivery is recorded right after the server took the mail.
    let mut mail_state = Value::Null;
    for _ in 0..50 {
        mail_state = app.get("/ready", None).await.body["checks"]["mail"].clone();
        if mail_state == "ok" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mail_state, "ok");
}

/// STARTTLS mode really upgrades and checks the certificate: against a server offering STARTTLS
/// with a self-signed certificate the mailer aborts the handshake and sends nothing; the request
/// still succeeds and the mail stays queued. (That STARTTLS *delivers* is not tested here: the
/// mailer trusts only the public web roots and has no knob to trust a test CA.)
#[tokio::test]
async fn starttls_refuses_an_untrusted_certificate() {
    let smtp = SmtpSink::start_with_self_signed_starttls().await;
    let port = smtp.port;
    let app = TestApp::spawn_with(|c| {
        c.smtp_host = Some("127.0.0.1".into());
        c.smtp_port = port;
        c.smtp_security = SmtpSecurity::Starttls;
    })
    .await;
    let u = app.register("tlsuser").await;
    let mut failed = false;
    for _ in 0..100 {
        failed = app
            .metrics()
            .await
            .contains("secureconnect_mail_failed_total 1");
        if failed && !smtp.tls_failures.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failed, "the send failed");
    let failures = smtp.tls_failures.lock().unwrap().clone();
    assert!(
        failures.iter().any(|e| e.contains("fatal alert")),
        "the client upgraded with STARTTLS and rejected the certificate: {failures:?}"
    );
    assert!(
        !mails_in(smtp.dir.path())
            .iter()
            .any(|m| m.contains(&u.email)),
        "nothing sent over an unverified connection"
    );
}
