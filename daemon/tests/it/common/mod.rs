//! Test harness: the end-to-end harness's sandbox, the real daemon binary
//! as a child process (killed in Drop, even on panic), and store readers.
//! The IPC client and the sample envelopes are the end-to-end harness's
//! (`spec_kitty_e2e::daemon`), re-exported.
#![allow(dead_code, unused_imports)]

pub use spec_kitty_e2e::daemon::{
    accepted, emit_one, envelope, envelope_with_id, read_line_with_deadline, Client,
    Syncd as Daemon, PROJECT,
};
use spec_kitty_e2e::Sandbox;
use spec_kitty_protocol::ipc::Readiness;
use spec_kitty_protocol::Paths;
use std::process::{Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_spec-kitty-syncd");
pub use spec_kitty_e2e::DEADLINE;

/// An isolated user for the daemon: the end-to-end harness's [`Sandbox`]
/// (temp `HOME` and `SPEC_KITTY_SYNC_HOME`; a daemon left on it is stopped
/// when it drops) and its [`Paths`].
pub struct Home {
    pub sb: Sandbox,
    pub paths: Paths,
}

impl Home {
    pub fn new() -> Home {
        let sb = Sandbox::new();
        std::fs::create_dir_all(sb.sk_home()).unwrap();
        let paths = sb.paths();
        Home { sb, paths }
    }

    /// `SPEC_KITTY_SYNC_HOME` (created).
    pub fn root(&self) -> std::path::PathBuf {
        self.sb.sk_home()
    }

    /// The daemon command with the sandbox's environment, no systemd
    /// socket or notify socket inherited, and no idle exit.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        self.sb.env(&mut c);
        c.env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("NOTIFY_SOCKET")
            .env("SPEC_KITTY_SYNCD_IDLE_EXIT_SECS", "0")
            .stdin(Stdio::null());
        c
    }

    /// Starts `run` in the foreground and waits until it answers.
    pub fn start(&self) -> Daemon {
        Daemon::start(&self.sb)
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
            (Some(Daemon::from_child(child)), line)
        } else {
            let _ = child.wait();
            (None, line)
        }
    }
}

/// Polls `f` until it is true, or panics naming `what` after the deadline.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    spec_kitty_e2e::wait_for(what, || f().then_some(()));
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
