//! Test harness: a temp `SPEC_KITTY_SYNC_HOME`, the real daemon binary as a
//! child process (killed in Drop, even on panic), and store readers. The
//! IPC client and the sample envelopes are the end-to-end harness's
//! (`spec_kitty_e2e::daemon`), re-exported.
#![allow(dead_code, unused_imports)]

pub use spec_kitty_e2e::daemon::{accepted, envelope, envelope_with_id, Client, PROJECT};
use spec_kitty_protocol::ipc::Readiness;
use spec_kitty_protocol::Paths;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_spec-kitty-syncd");
pub use spec_kitty_e2e::DEADLINE;

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
        if matches!(line.parse(), Ok(Readiness::Ready { .. })) {
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
