//! Processes the episodes break: a redis-server they own (killed, paused, restarted), the real
//! `secureconnect` binary as a child process (killed with SIGKILL, restarted on the same port
//! and data), and a small tmpfs for the full-disk episode.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

pub fn require_all() -> bool {
    std::env::var("SC_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// A redis-server owned by one episode.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    paused: bool,
}

impl Redis {
    /// Starts one, or — when redis-server is missing — fails in CI and returns None.
    pub fn start_or_skip() -> Option<Redis> {
        let mut r = Redis {
            port: crate::common::free_port(),
            child: None,
            paused: false,
        };
        if r.spawn() {
            return Some(r);
        }
        assert!(!require_all(), "redis-server is required in CI");
        None
    }

    fn spawn(&mut self) -> bool {
        let Ok(child) = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
        else {
            return false;
        };
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// SIGKILL: the process and everything it held are gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A fresh, empty redis-server on the same port.
    pub fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "redis-server restarts on port {}", self.port);
    }

    /// SIGSTOP: the kernel still accepts connections, nothing answers.
    pub fn pause(&mut self) {
        if let Some(c) = &self.child {
            signal(c.id(), "STOP");
            self.paused = true;
        }
    }

    pub fn resume(&mut self) {
        if let Some(c) = &self.child {
            signal(c.id(), "CONT");
            self.paused = false;
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if self.paused {
            self.resume();
        }
        self.kill();
    }
}

/// The real binary, serving on a fixed port, with its logs in files.
pub struct Server {
    pub port: u16,
    pub base: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
    logs: PathBuf,
    runs: usize,
}

impl Server {
    /// Starts `secureconnect serve` with exactly `env` (plus `SC_LISTEN`) and waits for /health.
    pub async fn start(env: Vec<(String, String)>, logs: &Path) -> Server {
        let port = crate::common::free_port();
        let mut s = Server {
            port,
            base: format!("http://127.0.0.1:{port}"),
            env,
            child: None,
            logs: logs.to_path_buf(),
            runs: 0,
        };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        self.runs += 1;
        let log = |kind: &str| {
            std::fs::File::create(
                self.logs
                    .join(format!("{}-{}.{kind}", self.port, self.runs)),
            )
            .unwrap()
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_secureconnect"));
        for (k, _) in std::env::vars() {
            if k.starts_with("SC_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("SC_LISTEN", format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::from(log("out")))
            .stderr(Stdio::from(log("err")));
        self.child = Some(cmd.spawn().expect("secureconnect starts"));
        let client = reqwest::Client::new();
        for _ in 0..300 {
            let up = client
                .get(format!("{}/health", self.base))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if up {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "secureconnect exited at start: {status}; logs: {}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "secureconnect did not serve on {}: {}",
            self.base,
            self.logs()
        );
    }

    /// The process id of the running binary (`None` between a kill and a restart).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9`: no shutdown, no flush, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port, data and configuration.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    /// Everything every run of this server wrote to stdout and stderr.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for run in 1..=self.runs {
            for kind in ["out", "err"] {
                let p = self.logs.join(format!("{}-{run}.{kind}", self.port));
                all.push_str(&std::fs::read_to_string(p).unwrap_or_default());
            }
        }
        all
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Err(reason) when mounting is refused (not root, no tmpfs, a container without the right).
    pub fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs refused: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}
