//! `secureconnect client …`: a terminal client on the SDK (crates/sc-client). It signs in once
//! (the device and its keys live in a state file encrypted with a passphrase), then lists,
//! reads, writes and follows plain and end-to-end encrypted conversations.
//!
//! The passphrase comes from `SC_CLIENT_PASSPHRASE` or the first line of standard input; the
//! account password (for `login`) from the next line. Neither is ever printed or logged.

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use sc_client::realtime::Realtime;
use sc_client::{Api, Decrypted, E2eeClient, Payload, Vault, VaultKey};
use std::io::BufRead;
use std::path::PathBuf;
use uuid::Uuid;

#[derive(Args)]
pub struct ClientArgs {
    /// The encrypted state file of this device.
    #[arg(
        long,
        env = "SC_CLIENT_STATE",
        default_value = "secureconnect-client.state"
    )]
    pub state: PathBuf,
    #[command(subcommand)]
    pub action: ClientAction,
}

#[derive(Subcommand)]
pub enum ClientAction {
    /// Sign in (password on standard input), register this device and its key packages.
    Login {
        #[arg(long)]
        server: String,
        /// Username or email.
        #[arg(long)]
        login: String,
        /// The current 2FA code, if the account has 2FA.
        #[arg(long)]
        code: Option<String>,
    },
    /// List conversations (`E2EE` marks encrypted ones).
    Conversations,
    /// Create a group (encrypted with --encrypted: MLS, every member device added).
    Create {
        #[arg(long)]
        title: String,
        /// Usernames, comma separated.
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
        #[arg(long)]
        encrypted: bool,
    },
    /// Add a member (all of their devices, in encrypted conversations).
    Add {
        #[arg(long)]
        conversation: Uuid,
        #[arg(long)]
        username: String,
    },
    /// Remove a member (all of their devices leave the group first).
    Remove {
        #[arg(long)]
        conversation: Uuid,
        #[arg(long)]
        username: String,
    },
    /// Print the conversation: new messages are decrypted and kept in the state file.
    Read {
        #[arg(long)]
        conversation: Uuid,
    },
    /// Send a message (the text, or standard input with `-`).
    Send {
        #[arg(long)]
        conversation: Uuid,
        text: String,
    },
    /// Send a file, encrypted with a fresh key in encrypted conversations.
    SendFile {
        #[arg(long)]
        conversation: Uuid,
        #[arg(long)]
        path: PathBuf,
        #[arg(long)]
        content_type: String,
    },
    /// Save the attachment of an encrypted message (by its seq) to a file.
    SaveFile {
        #[arg(long)]
        conversation: Uuid,
        #[arg(long)]
        seq: i64,
        #[arg(long)]
        to: PathBuf,
    },
    /// Follow a conversation live over the realtime socket (Ctrl-C stops).
    Follow {
        #[arg(long)]
        conversation: Uuid,
    },
    /// The safety number between you and another user, to compare out of band.
    Safety {
        #[arg(long)]
        username: String,
    },
    /// End this device's session on the server and delete the state file.
    Logout,
}

struct Input {
    lines: std::io::Lines<std::io::StdinLock<'static>>,
}

impl Input {
    fn new() -> Self {
        Input {
            lines: std::io::stdin().lock().lines(),
        }
    }
    fn line(&mut self, what: &str) -> anyhow::Result<String> {
        self.lines
            .next()
            .ok_or_else(|| anyhow!("{what} expected on standard input"))?
            .context("reading standard input")
    }
    fn passphrase(&mut self) -> anyhow::Result<VaultKey> {
        let p = match std::env::var("SC_CLIENT_PASSPHRASE") {
            Ok(p) => p,
            Err(_) => self.line("the state passphrase")?,
        };
        if p.is_empty() {
            bail!("an empty passphrase would not protect the state file");
        }
        Ok(VaultKey::Passphrase(p))
    }
}

pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let mut input = Input::new();
    let key = input.passphrase()?;
    if let ClientAction::Login {
        server,
        login,
        code,
    } = &args.action
    {
        let password = input.line("the password")?;
        let api = Api::new(server)?;
        let pair = api
            .login(login, &password, code.as_deref(), "secureconnect client")
            .await?;
        let vault = Vault::create(&args.state, &key)?;
        let client = E2eeClient::register_device(api, pair, Some(vault)).await?;
        println!(
            "signed in as {} (device {})",
            client.user().username,
            client.device_id()
        );
        return Ok(());
    }
    let mut c = E2eeClient::open(&args.state, &key)
        .await
        .context("open the state file (run `client login` first)")?;
    c.accept_welcomes().await?;
    c.top_up_key_packages().await?;
    match args.action {
        ClientAction::Login { .. } => unreachable!("handled above"),
        ClientAction::Conversations => {
            for conv in c.api().conversations().await? {
                println!(
                    "{}  {:6}  {:4}  unread {:3}  {}",
                    conv.id,
                    conv.kind,
                    if conv.encrypted { "E2EE" } else { "" },
                    conv.unread_count,
                    conv.title.as_deref().unwrap_or("(direct)"),
                );
            }
        }
        ClientAction::Create {
            title,
            members,
            encrypted,
        } => {
            let ids = user_ids(&c, &members).await?;
            let conv = if encrypted {
                c.create_conversation("group", &ids, Some(&title)).await?
            } else {
                c.api()
                    .create_conversation("group", &ids, Some(&title), false)
                    .await?
            };
            println!("{}", conv.id);
        }
        ClientAction::Add {
            conversation,
            username,
        } => {
            let id = user_ids(&c, &[username]).await?;
            if c.api().conversation(conversation).await?.encrypted {
                c.add_members(conversation, &id).await?;
            } else {
                c.api().add_members(conversation, &id).await?;
            }
        }
        ClientAction::Remove {
            conversation,
            username,
        } => {
            let id = user_ids(&c, &[username]).await?[0];
            if c.api().conversation(conversation).await?.encrypted {
                c.remove_member(conversation, id).await?;
            } else {
                c.api().remove_member(conversation, id).await?;
            }
        }
        ClientAction::Read { conversation } => {
            let members = c.api().members(conversation).await?;
            let name = |id: Uuid| {
                members
                    .iter()
                    .find(|m| m.user_id == id)
                    .map(|m| m.username.clone())
                    .unwrap_or_else(|| id.to_string())
            };
            if c.api().conversation(conversation).await?.encrypted {
                c.read_new(conversation).await?;
                for m in c.history(conversation) {
                    println!("{:>5} {}: {}", m.seq, name(m.sender_id), render(m));
                }
            } else {
                let mut page = c.api().latest_messages(conversation, 100).await?;
                page.reverse();
                for m in page {
                    println!(
                        "{:>5} {}: {}",
                        m.seq,
                        name(m.sender_id),
                        m.content.as_deref().unwrap_or("(deleted)")
                    );
                }
            }
        }
        ClientAction::Send { conversation, text } => {
            let text = if text == "-" {
                input.line("the message")?
            } else {
                text
            };
            let m = if c.api().conversation(conversation).await?.encrypted {
                c.send_text(conversation, &text).await?
            } else {
                c.api().send_plain(conversation, &text).await?
            };
            println!("sent as seq {}", m.seq);
        }
        ClientAction::SendFile {
            conversation,
            path,
            content_type,
        } => {
            let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| anyhow!("the path has no file name"))?
                .to_string();
            if !c.api().conversation(conversation).await?.encrypted {
                bail!(
                    "send-file encrypts for encrypted conversations; use the drive for plain ones"
                );
            }
            let (m, _) = c
                .send_file(conversation, &name, &content_type, &bytes, None)
                .await?;
            println!("sent as seq {}", m.seq);
        }
        ClientAction::SaveFile {
            conversation,
            seq,
            to,
        } => {
            c.read_new(conversation).await?;
            let file = c
                .history(conversation)
                .iter()
                .find(|m| m.seq == seq)
                .and_then(|m| match &m.body {
                    Ok(Payload::File { file, .. }) => Some(file.clone()),
                    _ => None,
                })
                .ok_or_else(|| {
                    anyhow!("message {seq} carries no attachment this device can read")
                })?;
            let bytes = c.fetch_attachment(&file).await?;
            std::fs::write(&to, bytes).with_context(|| format!("write {}", to.display()))?;
            println!("saved {} ({} bytes)", file.name, file.size);
        }
        ClientAction::Follow { conversation } => follow(&mut c, conversation).await?,
        ClientAction::Safety { username } => {
            let id = user_ids(&c, &[username]).await?[0];
            println!("{}", c.safety_number(id).await?);
        }
        ClientAction::Logout => {
            c.sign_out().await?;
            std::fs::remove_file(&args.state).ok();
            println!("signed out");
            return Ok(());
        }
    }
    c.save()?;
    Ok(())
}

async fn user_ids(c: &E2eeClient, usernames: &[String]) -> anyhow::Result<Vec<Uuid>> {
    let mut out = Vec::new();
    for u in usernames {
        let user = c
            .api()
            .find_user(u)
            .await?
            .ok_or_else(|| anyhow!("no user named {u}"))?;
        out.push(user.id);
    }
    Ok(out)
}

fn render(m: &Decrypted) -> String {
    match &m.body {
        Ok(Payload::Text { text }) => text.clone(),
        Ok(Payload::File { file, text }) => format!(
            "[file {} · {} bytes · save-file --seq {}] {}",
            file.name,
            file.size,
            m.seq,
            text.as_deref().unwrap_or("")
        ),
        Err(reason) => format!("(cannot decrypt: {reason})"),
    }
}

/// Prints new messages as the socket announces them; after a disconnect, reconnects and
/// reads what was missed (`after_seq`), so nothing is skipped.
async fn follow(c: &mut E2eeClient, conversation: Uuid) -> anyhow::Result<()> {
    let encrypted = c.api().conversation(conversation).await?.encrypted;
    let mut last = if encrypted {
        c.read_new(conversation).await?;
        0
    } else {
        c.api()
            .latest_messages(conversation, 1)
            .await?
            .first()
            .map(|m| m.seq)
            .unwrap_or(0)
    };
    loop {
        let mut socket = Realtime::connect(c.api()).await?;
        eprintln!("following {conversation} (Ctrl-C stops)");
        loop {
            let event = tokio::select! {
                e = socket.next() => e?,
                _ = tokio::signal::ctrl_c() => { c.save()?; return Ok(()); }
            };
            let Some(event) = event else { break };
            let ours = event.data["conversation_id"].as_str() == Some(&conversation.to_string());
            match event.kind.as_str() {
                "mls.welcome" => {
                    c.accept_welcomes().await?;
                }
                "message.created" | "mls.commit" if ours => {
                    if encrypted {
                        for m in c.read_new(conversation).await? {
                            println!("{:>5} {}: {}", m.seq, m.sender_id, render(&m));
                        }
                    } else {
                        for m in c.api().messages_after(conversation, last, 100).await? {
                            last = m.seq;
                            println!(
                                "{:>5} {}: {}",
                                m.seq,
                                m.sender_id,
                                m.content.as_deref().unwrap_or("")
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        eprintln!("disconnected; reconnecting");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
