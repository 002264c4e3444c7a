//! The command line: `serve`, `migrate`, `config check|print`, `admin …`, `backup`, `restore`,
//! `openapi`, `bench …`, `client …`.

use crate::app::{App, connect_db};
use anyhow::Context;
use clap::{Parser, Subcommand};
use sc_core::{
    config::Config,
    domain::{DisplayName, Email, Username},
};
use sc_core::{domain::BanReason, time::Timestamp};
use sc_db::audit::AuditFilter;
use sc_service::{AuthService, ClientInfo, Role, admin::UserPatch};
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "secureconnect",
    version,
    about = "SecureConnect: secure chat, calls and files in one binary"
)]
pub struct Cli {
    /// TOML configuration file (SC_* environment variables override it).
    #[arg(long, global = true, env = "SC_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Administrative tasks.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Measure throughput on this machine (see docs/benchmarks.md).
    Bench(crate::bench::BenchArgs),
    /// A terminal client of a SecureConnect server, end-to-end encryption included
    /// (docs/e2ee.md).
    #[cfg(feature = "client")]
    Client(crate::client_cli::ClientArgs),
    /// Back up the embedded mode (database, blobs, generated keys) into an empty directory,
    /// while the server runs (see docs/operations.md for PostgreSQL + S3).
    Backup {
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup made by `backup` into an empty data directory.
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
    /// Print the OpenAPI document (the one served at /v1/openapi.json) as JSON; the web app
    /// generates its API types from it (`npm run openapi` in web/).
    Openapi,
}

#[derive(Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration; the error names the bad key.
    Check,
    /// Print the effective configuration with secrets redacted.
    Print,
}

#[derive(Subcommand)]
pub enum AdminAction {
    /// Create an account (the first admin comes from here: there are no default accounts).
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from this file instead of standard input.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Create the configured S3 bucket (a new MinIO or s3s-fs store; one you already own is
    /// fine). On AWS, create buckets with AWS's own tools and policies instead.
    CreateBucket,
    /// The push queue: pushes waiting, dead letters (the newest, with why they failed), and
    /// with `--requeue-dead` every dead letter back in the queue.
    PushQueue {
        #[arg(long)]
        requeue_dead: bool,
    },
    /// Change an account's role.
    SetRole {
        #[arg(long)]
        username: String,
        /// "user" or "admin"
        #[arg(long)]
        role: String,
    },
    /// Ban an account: its sessions end everywhere and login is refused until the ban ends.
    Ban {
        #[arg(long)]
        username: String,
        #[arg(long)]
        reason: String,
        /// RFC 3339 end of the ban; without it, until `unban`.
        #[arg(long)]
        until: Option<String>,
    },
    /// Lift a ban.
    Unban {
        #[arg(long)]
        username: String,
    },
    /// Set an account's storage quota in bytes.
    SetQuota {
        #[arg(long)]
        username: String,
        #[arg(long)]
        bytes: u64,
    },
    /// Turn two-factor authentication off for a user who lost their authenticator and recovery
    /// codes (check who is asking first). Their sessions end.
    #[command(name = "reset-2fa")]
    Reset2fa {
        #[arg(long)]
        username: String,
    },
    /// Write the audit log as JSON lines to standard output, newest first.
    AuditLog {
        /// Only entries about this user or caused by them.
        #[arg(long)]
        username: Option<String>,
        /// Only this event (e.g. `login.failed`).
        #[arg(long)]
        event: Option<String>,
        /// RFC 3339: only entries from this time on.
        #[arg(long)]
        since: Option<String>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Bench(args) = cli.command {
        return crate::bench::run(args).await;
    }
    #[cfg(feature = "client")]
    if let Command::Client(args) = cli.command {
        return crate::client_cli::run(args).await;
    }
    if let Command::Openapi = cli.command {
        // Depends on the code only: no configuration, data directory or database is touched.
        let mut out = std::io::stdout().lock();
        out.write_all(&sc_api::openapi::DOCUMENT)?;
        out.write_all(b"\n")?;
        return Ok(());
    }
    let cfg = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            let telemetry = crate::telemetry::init_server(&cfg)?;
            let listen = cfg.listen;
            let app = App::build(cfg).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            tracing::info!(address = %listener.local_addr()?, "secureconnect serving");
            app.serve(listener, shutdown_signal()).await?;
            tracing::info!("secureconnect stopped");
            telemetry.shutdown().await;
        }
        Command::Migrate => {
            crate::telemetry::init(cfg.log_format, &cfg.log_level);
            let db = connect_db(&cfg).await?;
            db.migrate().await?;
            println!(
                "migrations applied: {:?}",
                sc_db::Db::migration_versions(db.backend())
            );
        }
        Command::Config {
            action: ConfigAction::Check,
        } => println!("configuration is valid"),
        Command::Config {
            action: ConfigAction::Print,
        } => print!("{}", cfg.to_redacted_toml()),
        Command::Admin { action } => admin(cfg, action).await?,
        Command::Backup { to } => crate::backup::backup(&cfg, &to).await?,
        Command::Restore { from } => crate::backup::restore(&cfg, &from).await?,
        Command::Bench(_) | Command::Openapi => unreachable!("handled above"),
        #[cfg(feature = "client")]
        Command::Client(_) => unreachable!("handled above"),
    }
    Ok(())
}

async fn admin(mut cfg: Config, action: AdminAction) -> anyhow::Result<()> {
    crate::telemetry::init(cfg.log_format, "warn");
    if let AdminAction::CreateBucket = action {
        // Before App::build, whose readiness checks would find no bucket.
        let settings = sc_infra::blobs::S3Settings::from_config(&cfg)
            .context("no S3 store is configured (SC_S3_ENDPOINT and SC_S3_BUCKET)")?;
        let bucket = settings.bucket.clone();
        sc_infra::blobs::S3Blobs::new(settings)?
            .create_bucket()
            .await?;
        println!("bucket {bucket} is ready");
        return Ok(());
    }
    // The CLI sends no mail and needs no workers.
    cfg.mail_workers = 1;
    let app = App::build_for_command(cfg).await?;
    let auth: &AuthService = &app.state().auth;
    let admin = &app.state().admin;
    // Actions from the command line have no actor and no address in the audit log.
    let operator = ClientInfo::default();
    match action {
        AdminAction::CreateUser {
            email,
            username,
            display_name,
            password_file,
            admin,
        } => {
            let email = Email::parse("email", &email)?;
            let username = Username::parse("username", &username)?;
            let display = DisplayName::parse(
                "display_name",
                display_name.as_deref().unwrap_or(username.as_str()),
            )?;
            let password = match password_file {
                Some(p) => std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?,
                None => {
                    let mut line = String::new();
                    eprintln!("password (read from standard input):");
                    std::io::stdin().read_line(&mut line)?;
                    line
                }
            };
            let password = password.trim_end_matches(['\n', '\r']);
            let role = if admin { Role::Admin } else { Role::User };
            let id = auth
                .create_user_admin(email, username, display, password, role)
                .await?;
            println!("created user {id} ({})", role.as_str());
        }
        AdminAction::SetRole { username, role } => {
            let role = Role::parse(&role).context("role must be \"user\" or \"admin\"")?;
            let id = admin.find_by_username(&parse_username(&username)?).await?;
            let patch = UserPatch {
                role: Some(role),
                ..UserPatch::default()
            };
            let v = admin.update_user(None, id, patch, &operator).await?;
            println!("{} is now {}", v.username, v.role);
        }
        AdminAction::Ban {
            username,
            reason,
            until,
        } => {
            let id = admin.find_by_username(&parse_username(&username)?).await?;
            let reason = BanReason::parse("reason", &reason)?;
            let until = until
                .map(|u| Timestamp::parse_rfc3339(&u).context("--until must be an RFC 3339 time"))
                .transpose()?;
            let v = admin.ban(None, id, &reason, until, &operator).await?;
            match v.banned_until {
                Some(u) => println!("{} is banned until {}", v.username, u.to_rfc3339()),
                None => println!("{} is banned until unbanned", v.username),
            }
        }
        AdminAction::Unban { username } => {
            let id = admin.find_by_username(&parse_username(&username)?).await?;
            let v = admin.unban(None, id, &operator).await?;
            println!("{} is not banned", v.username);
        }
        AdminAction::SetQuota { username, bytes } => {
            let id = admin.find_by_username(&parse_username(&username)?).await?;
            let patch = UserPatch {
                quota: Some(bytes),
                ..UserPatch::default()
            };
            let v = admin.update_user(None, id, patch, &operator).await?;
            println!(
                "{} may store {} bytes ({} used)",
                v.username, v.quota, v.storage_used
            );
        }
        AdminAction::Reset2fa { username } => {
            let id = admin.find_by_username(&parse_username(&username)?).await?;
            let v = admin.reset_2fa(id).await?;
            println!(
                "two-factor authentication is off for {}; their sessions ended",
                v.username
            );
        }
        AdminAction::AuditLog {
            username,
            event,
            since,
        } => {
            let user = match username {
                Some(u) => Some(admin.find_by_username(&parse_username(&u)?).await?),
                None => None,
            };
            let since = since
                .map(|t| Timestamp::parse_rfc3339(&t).context("--since must be an RFC 3339 time"))
                .transpose()?;
            let filter = AuditFilter {
                user,
                event: event.as_deref(),
                since,
                before: None,
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            admin
                .audit_export(filter, |entry| {
                    serde_json::to_writer(&mut out, &entry)?;
                    out.write_all(b"\n")
                })
                .await?;
            out.flush()?;
        }
        AdminAction::PushQueue { requeue_dead } => {
            let push = app.state().deps.db.push();
            if requeue_dead {
                let n = push.requeue_dead(sc_core::time::Timestamp::now()).await?;
                println!("requeued {n} dead letters");
            }
            let (queued, dead) = push.queue_depth().await?;
            println!("queued {queued}, dead {dead}");
            for d in push.dead_letters(20).await? {
                println!(
                    "{}  {}  {:>2} attempts  {}  {}",
                    d.created_at.to_rfc3339(),
                    d.channel,
                    d.attempts,
                    d.id,
                    d.last_error.as_deref().unwrap_or("-")
                );
            }
        }
        AdminAction::CreateBucket => unreachable!("handled above"),
    }
    Ok(())
}

fn parse_username(raw: &str) -> anyhow::Result<Username> {
    Ok(Username::parse("username", raw)?)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; draining");
}
