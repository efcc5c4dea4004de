//! Test harness: a temp `SPEC_KITTY_SYNC_HOME`, the real daemon binary as a
//! child process (killed in Drop, even on panic), and a small synchronous
//! client over the protocol crate's frame codec.
#![allow(dead_code)]

use spec_kitty_protocol::ipc::{self, Hello, HelloReply, Request, Response, Welcome};
use spec_kitty_protocol::Paths;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_spec-kitty-syncd");
pub const DEADLINE: Duration = Duration::from_secs(20);

/// An isolated spec-kitty home.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub paths: Paths,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::Builder::new().prefix("skd-").tempdir().unwrap();
        let paths = Paths::new(dir.path());
        Home { dir, paths }
    }

    /// The daemon command with this home (and HOME) set.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("SPEC_KITTY_SYNC_HOME", self.dir.path())
            .env("HOME", self.dir.path())
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("NOTIFY_SOCKET")
            .env("SPEC_KITTY_SYNCD_IDLE_EXIT_SECS", "0")
            .stdin(Stdio::null());
        c
    }

    /// Starts `run` in the foreground and waits until it answers.
    pub fn start(&self) -> Daemon {
        let child = self
            .cmd()
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn daemon");
        let pid = child.id();
        let d = Daemon {
            pid,
            child: Some(child),
        };
        wait_until("the daemon answers", || {
            Client::connect(&self.paths).is_ok()
        });
        d
    }

    /// Starts `run --spawned` and returns the daemon guard (if it stayed up)
    /// and its readiness line.
    pub fn spawn(&self, extra: &[&str]) -> (Option<Daemon>, String) {
        let mut child = self
            .cmd()
            .args(["run", "--spawned"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn daemon");
        let line = read_line_with_deadline(child.stdout.take().unwrap());
        if line.starts_with("READY") {
            let pid = child.id();
            (
                Some(Daemon {
                    pid,
                    child: Some(child),
                }),
                line,
            )
        } else {
            let _ = child.wait();
            (None, line)
        }
    }
}

pub fn read_line_with_deadline(out: std::process::ChildStdout) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(DEADLINE)
        .expect("the daemon reported nothing within the deadline")
        .trim()
        .to_string()
}

/// Polls `f` until it is true, or panics naming `what` after the deadline.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A daemon process, SIGKILLed in Drop unless it already exited.
pub struct Daemon {
    pub pid: u32,
    pub child: Option<Child>,
}

impl Daemon {
    pub fn kill9(&mut self) {
        // SAFETY: kill(2) on the pid of our own child.
        unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of our own child.
        unsafe { libc::kill(self.pid as i32, sig) };
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut child = self.child.take().expect("child");
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code();
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("daemon {} did not exit within the deadline", self.pid);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill9();
        }
    }
}

/// A synchronous IPC client.
pub struct Client {
    pub stream: UnixStream,
    pub welcome: Welcome,
}

impl Client {
    pub fn connect(paths: &Paths) -> std::io::Result<Client> {
        Self::connect_with(paths, Hello::current("test"))
    }

    pub fn connect_with(paths: &Paths, hello: Hello) -> std::io::Result<Client> {
        let mut stream = UnixStream::connect(paths.socket())?;
        stream.set_read_timeout(Some(DEADLINE))?;
        ipc::write_frame(&mut stream, &hello).map_err(std::io::Error::other)?;
        match ipc::read_frame::<_, HelloReply>(&mut stream).map_err(std::io::Error::other)? {
            HelloReply::Welcome(welcome) => Ok(Client { stream, welcome }),
            HelloReply::Incompatible { reason, .. } => Err(std::io::Error::other(reason)),
        }
    }

    pub fn request(&mut self, req: &Request) -> Result<Response, ipc::FrameError> {
        ipc::write_frame(&mut self.stream, req)?;
        ipc::read_frame(&mut self.stream)
    }

    pub fn emit(&mut self, envelope: &str) -> Result<Response, ipc::FrameError> {
        self.request(&Request::Emit {
            envelope: envelope.to_string(),
        })
    }

    pub fn status(&mut self) -> spec_kitty_protocol::ipc::DaemonStatus {
        match self.request(&Request::Status).unwrap() {
            Response::Status { json } => serde_json::from_str(&json).unwrap(),
            other => panic!("status: {other:?}"),
        }
    }
}

pub const PROJECT: &str = "3f0b5c1e-9a1d-4c55-9d44-6f1e2a3b4c5d";

/// A valid unstamped envelope with a fresh ULID.
pub fn envelope(project: Option<&str>) -> (String, String) {
    let id = ulid::Ulid::new().to_string();
    (id.clone(), envelope_with_id(&id, project))
}

pub fn envelope_with_id(id: &str, project: Option<&str>) -> String {
    serde_json::json!({
        "event_id": id,
        "event_type": "WPStatusChanged",
        "aggregate_id": "WP01",
        "aggregate_type": "WorkPackage",
        "payload": {"wp_id": "WP01", "from_lane": "planned", "to_lane": "in_progress",
                    "actor": "user", "feature_slug": "001-demo", "policy_metadata": null},
        "node_id": "000000000000",
        "lamport_clock": 0,
        "causation_id": null,
        "timestamp": "2026-02-07T08:34:22.123456+00:00",
        "team_slug": "local",
        "project_uuid": project,
        "project_slug": project.map(|_| "demo"),
        "git_branch": "main",
        "head_commit_sha": null,
        "repo_slug": null
    })
    .to_string()
}

/// Accepted values or a panic naming the response.
pub fn accepted(r: Response) -> (u64, u64, bool) {
    match r {
        Response::Accepted {
            lamport_clock,
            seq,
            duplicate,
        } => (lamport_clock, seq, duplicate),
        other => panic!("expected Accepted, got {other:?}"),
    }
}

/// Opens the store read-only.
pub fn store(paths: &Paths) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(paths.store(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
}

/// (seq, event_id, lamport) of every row, in seq order.
pub fn rows(paths: &Paths) -> Vec<(i64, String, i64)> {
    let c = store(paths);
    let mut s = c
        .prepare("SELECT seq, event_id, lamport_clock FROM events ORDER BY seq")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
