//! Mail delivery: files in `data/outbox/` (embedded default) or SMTP through lettre.

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart, header::ContentType},
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
    },
};
use sc_core::config::{Config, SmtpSecurity};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address: {0}")]
    Address(String),
    #[error("transport: {0}")]
    Transport(String),
}

/// An outgoing mail as the services compose it.
pub struct OutgoingMail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// An HTML alternative of the body.
    pub html: Option<&'a str>,
    /// `List-Unsubscribe` (RFC 2369): `<url>` of the preferences that stop such mails.
    pub list_unsubscribe: Option<&'a str>,
}

/// The `List-Unsubscribe` header.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl lettre::message::header::Header for ListUnsubscribe {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_string()))
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

pub enum Mailer {
    Outbox {
        dir: PathBuf,
        from: Mailbox,
    },
    Smtp {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
    },
}

impl Mailer {
    pub fn from_config(cfg: &Config) -> Result<Self, MailError> {
        let from: Mailbox = cfg
            .mail_from
            .parse()
            .map_err(|_| MailError::Address("mail_from".into()))?;
        let Some(host) = cfg.smtp_host.clone() else {
            return Ok(Mailer::Outbox {
                dir: cfg.data_dir.join("outbox"),
                from,
            });
        };
        let tls =
            || TlsParameters::new(host.clone()).map_err(|e| MailError::Transport(e.to_string()));
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(cfg.smtp_port)
            .timeout(Some(Duration::from_secs(15)));
        builder = match cfg.smtp_security {
            SmtpSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
            SmtpSecurity::None => builder.tls(Tls::None),
        };
        if let (Some(user), Some(pass)) = (&cfg.smtp_username, &cfg.smtp_password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
        }
        Ok(Mailer::Smtp {
            transport: Box::new(builder.build()),
            from,
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Mailer::Outbox { .. } => "outbox",
            Mailer::Smtp { .. } => "smtp",
        }
    }

    pub async fn send(&self, mail: &OutgoingMail<'_>) -> Result<(), MailError> {
        let from = match self {
            Mailer::Outbox { from, .. } | Mailer::Smtp { from, .. } => from.clone(),
        };
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| MailError::Address("recipient".into()))?;
        let mut builder = Message::builder().from(from).to(to).subject(mail.subject);
        if let Some(target) = mail.list_unsubscribe {
            builder = builder.header(ListUnsubscribe(target.to_string()));
        }
        let message = match mail.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                mail.body.to_string(),
                html.to_string(),
            )),
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(mail.body.to_string()),
        }
        .map_err(|e| MailError::Transport(e.to_string()))?;
        match self {
            Mailer::Outbox { dir, .. } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| MailError::Transport(e.to_string()))?;
                let name = format!(
                    "{}-{}.eml",
                    sc_core::time::Timestamp::now().millis(),
                    uuid::Uuid::now_v7().simple()
                );
                // Written under a temporary name, then renamed: readers never see half a mail.
                let tmp = dir.join(format!(".{name}.tmp"));
                tokio::fs::write(&tmp, message.formatted())
                    .await
                    .map_err(|e| MailError::Transport(e.to_string()))?;
                tokio::fs::rename(&tmp, dir.join(name))
                    .await
                    .map_err(|e| MailError::Transport(e.to_string()))?;
                Ok(())
            }
            Mailer::Smtp { transport, .. } => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Transport(e.to_string())),
        }
    }
}
