//! The notification mails: immediate ones (missed calls, shares, reminders, security) and
//! digests. Each has a plain-text and an HTML part (everything user-made is escaped) and a
//! `List-Unsubscribe` pointing at the preferences. Digests quote message text only from plain
//! conversations and only when the operator allows it.

use sc_core::{config::Config, ids::MailId, time::Timestamp};
use sc_db::{
    mail::NewMail,
    notification_prefs::Recipient,
    notifications::{DigestRecipient, MessageSummary},
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The first `max` characters of `text` on one line, with an ellipsis when cut.
pub fn excerpt(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.chars().count() <= max {
        return flat.to_string();
    }
    let mut cut: String = flat.chars().take(max).collect();
    cut.push('…');
    cut
}

/// HTML-escapes text for an element or a double-quoted attribute.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn app_url(cfg: &Config) -> String {
    cfg.public_url.trim_end_matches('/').to_string()
}

fn preferences_url(cfg: &Config) -> String {
    format!("{}/settings/notifications", app_url(cfg))
}

/// A mail from paragraphs of plain text: the text part, and an HTML part of the same
/// paragraphs (escaped) with the app link as a link.
fn compose(
    cfg: &Config,
    to: &str,
    subject: &str,
    greeting: &str,
    paragraphs: &[String],
    now: Timestamp,
) -> NewMail {
    let app = app_url(cfg);
    let prefs = preferences_url(cfg);
    let mut text = format!("{greeting}\n\n");
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><p>{}</p>",
        escape_html(greeting)
    );
    for p in paragraphs {
        let _ = write!(text, "{p}\n\n");
        let _ = write!(html, "<p>{}</p>", escape_html(p).replace('\n', "<br>"));
    }
    let _ = write!(
        text,
        "Open SecureConnect: {app}\n\n--\nChange which mails you get: {prefs}\n"
    );
    let _ = write!(
        html,
        "<p><a href=\"{}\">Open SecureConnect</a></p><hr><p style=\"font-size:small\">\
         <a href=\"{}\">Change which mails you get</a></p></body></html>",
        escape_html(&app),
        escape_html(&prefs)
    );
    NewMail {
        id: MailId::new(),
        recipient: to.to_string(),
        subject: subject.to_string(),
        body: text,
        html_body: Some(html),
        list_unsubscribe: Some(format!("<{prefs}>")),
        now,
    }
}

/// The mail of a kind that is mailed as it happens.
pub fn immediate(
    cfg: &Config,
    who: &Recipient,
    kind: &str,
    data: &Value,
    now: Timestamp,
) -> NewMail {
    let field = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (subject, lines): (&str, Vec<String>) = match kind {
        "call.missed" => (
            "You missed a call",
            vec!["Someone called you on SecureConnect and nobody answered.".into()],
        ),
        "file.shared" => (
            "A file was shared with you",
            vec![format!(
                "A file was shared with you ({} access). You find it under \"Shared with me\".",
                field("permission")
            )],
        ),
        "call.scheduled" => (
            "A scheduled call is starting",
            vec![format!(
                "A call planned for {} is starting now.",
                field("starts_at")
            )],
        ),
        _ => security_text(&field("event"), &field("until")),
    };
    let greeting = format!("Hello {},", who.display_name);
    compose(
        cfg,
        &who.email,
        &format!("SecureConnect: {subject}"),
        &greeting,
        &lines,
        now,
    )
}

fn security_text(event: &str, until: &str) -> (&'static str, Vec<String>) {
    let not_you =
        "If this was not you, change your password and review your sessions at once.".to_string();
    match event {
        "password.changed" => (
            "your password was changed",
            vec!["The password of your account was changed.".into(), not_you],
        ),
        "2fa.enabled" => (
            "two-factor authentication is on",
            vec![
                "Two-factor authentication was turned on for your account.".into(),
                not_you,
            ],
        ),
        "2fa.disabled" => (
            "two-factor authentication is off",
            vec![
                "Two-factor authentication was turned off for your account.".into(),
                not_you,
            ],
        ),
        "account.locked" => (
            "your account was locked",
            vec![
                format!(
                    "Your account was locked until {until} after repeated failed sign-in attempts."
                ),
                "If this was not you, change your password once the lock ends.".into(),
            ],
        ),
        "session.new_device" => (
            "a new sign-in",
            vec![
                "Your account was signed in to from a device it had not used before.".into(),
                not_you,
            ],
        ),
        _ => (
            "a security event",
            vec![
                "There was a security event on your account.".into(),
                not_you,
            ],
        ),
    }
}

/// A digest: per conversation, who wrote and how many messages, mentions first; message text
/// only from plain conversations when the operator allows it.
pub fn digest(
    cfg: &Config,
    who: &DigestRecipient,
    items: &[MessageSummary],
    now: Timestamp,
) -> NewMail {
    struct Group<'a> {
        title: String,
        messages: usize,
        mentions: usize,
        senders: Vec<&'a str>,
        quotes: Vec<String>,
    }
    let mut groups: BTreeMap<String, Group<'_>> = BTreeMap::new();
    for i in items {
        let g = groups
            .entry(i.conversation_id.to_string())
            .or_insert_with(|| Group {
                title: match (&i.conversation_title, i.conversation_kind.as_str()) {
                    (Some(t), "group") if !t.is_empty() => t.clone(),
                    _ => format!("your conversation with {}", i.sender_name),
                },
                messages: 0,
                mentions: 0,
                senders: Vec::new(),
                quotes: Vec::new(),
            });
        g.messages += 1;
        if i.kind == "mention" {
            g.mentions += 1;
        }
        if !g.senders.contains(&i.sender_name.as_str()) {
            g.senders.push(&i.sender_name);
        }
        if cfg.email_include_content
            && !i.encrypted
            && let Some(c) = &i.content
            && g.quotes.len() < 5
        {
            g.quotes
                .push(format!("{}: {}", i.sender_name, excerpt(c, 300)));
        }
    }
    let total = items.len();
    let mentions: usize = groups.values().map(|g| g.mentions).sum();
    let mut ordered: Vec<&Group<'_>> = groups.values().collect();
    ordered.sort_by_key(|g| std::cmp::Reverse((g.mentions, g.messages)));
    let mut lines = Vec::new();
    for g in ordered {
        let plural = if g.messages == 1 { "" } else { "s" };
        let mut line = format!(
            "{} new message{plural} in {} from {}",
            g.messages,
            g.title,
            g.senders.join(", ")
        );
        if g.mentions > 0 {
            let _ = write!(line, " ({} mentioning you)", g.mentions);
        }
        for q in &g.quotes {
            let _ = write!(line, "\n  {q}");
        }
        lines.push(line);
    }
    let subject = match (total, mentions) {
        (1, 1) => "SecureConnect: you were mentioned".to_string(),
        (n, 0) => format!(
            "SecureConnect: {n} unread message{}",
            if n == 1 { "" } else { "s" }
        ),
        (n, m) => format!("SecureConnect: {n} unread messages, {m} mentioning you"),
    };
    let greeting = format!("Hello {}, while you were away:", who.display_name);
    compose(cfg, &who.email, &subject, &greeting, &lines, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_excerpts() {
        assert_eq!(
            escape_html("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
        assert_eq!(excerpt("a\nb", 10), "a b");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}
