//! Shared pieces of the fault and bad-input suites (`faults_*.rs`,
//! `hostile_files.rs`, `security.rs`): a foreground `spec-kitty-syncd` in a
//! [`Sandbox`] (SIGKILLed in Drop), the harness's IPC client and sample
//! envelopes (`spec_kitty_e2e::daemon`, re-exported), a login that
//! writes the credentials file the way `spec-kitty auth login` does, and
//! readers of the daemon's store, logs and the reference server's events.
//!
//! Why a module of `e2e/tests/it/` and not the harness crate: only the fault
//! suites use these.
#![allow(dead_code)]

#[allow(unused_imports)] // each suite uses some
pub use spec_kitty_e2e::daemon::{
    accepted, envelope, envelope_with_id, foreground_run, ulid, Client, Syncd, PROJECT,
};
use spec_kitty_e2e::{RefServer, Sandbox, DEADLINE};
use spec_kitty_protocol::credentials::{self, Credentials};
use spec_kitty_protocol::ipc::DaemonStatus;
use spec_kitty_protocol::saas::TokenReply;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

/// An env var as a number, else `default` (the knobs of the long variants).
pub fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Polls `f` with a custom deadline, panicking with `what` (and the last
/// observation `f` gives) when it passes.
pub fn wait_long<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}; last seen: {last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The daemon's status over a fresh connection, or why there is none.
pub fn status(sb: &Sandbox) -> Result<DaemonStatus, String> {
    spec_kitty_e2e::daemon::status(&sb.paths())
}

/// The tokens a login produced (to look for them in logs and outputs).
pub struct Login {
    pub access: String,
    pub refresh: String,
}

/// Logs `user` in at the server and writes the credentials file the way
/// `spec-kitty auth login` does (protocol crate, 0600, atomic).
pub fn login(sb: &Sandbox, server: &RefServer, user: &str, password: &str) -> Login {
    let (st, body) = server.post(
        "/api/v1/token/",
        None,
        &serde_json::json!({"username": user, "password": password}),
    );
    assert_eq!(st, 200, "login {user}: {body}");
    let tokens = TokenReply::from_json(&body).expect("tokens in the login answer");
    let now = spec_kitty_protocol::time::unix_micros(SystemTime::now());
    let (access_expires_at, refresh_expires_at) = tokens.expiries(now);
    let (access, refresh) = (tokens.access, tokens.refresh);
    let creds = Credentials {
        access: Some(access.clone()),
        refresh: Some(refresh.clone()),
        access_expires_at: Some(access_expires_at),
        refresh_expires_at: Some(refresh_expires_at),
        username: Some(user.to_string()),
        team_slug: tokens.team_slug,
        server_url: Some(server.base.clone()),
        insecure: false,
    };
    let paths = sb.paths();
    std::fs::create_dir_all(paths.root()).unwrap();
    credentials::write(&paths, &creds).expect("write credentials");
    Login { access, refresh }
}

/// One row of the daemon's store.
#[derive(Debug, Clone)]
pub struct Row {
    pub seq: i64,
    pub event_id: String,
    pub lamport: i64,
    pub state: String,
}

/// Every row of the store in `seq` order (read-only; the daemon may run).
pub fn rows(sb: &Sandbox) -> Vec<Row> {
    let path = sb.paths().store();
    let db = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    db.busy_timeout(DEADLINE).unwrap();
    let mut st = db
        .prepare("SELECT seq, event_id, lamport_clock, state FROM events ORDER BY seq")
        .unwrap();
    st.query_map([], |r| {
        Ok(Row {
            seq: r.get(0)?,
            event_id: r.get(1)?,
            lamport: r.get(2)?,
            state: r.get(3)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// As [`rows`], or `None` when the store cannot be read as is: a daemon
/// killed while creating it leaves no table yet, or a hot journal that only
/// the next daemon (a writer) can roll back.
pub fn try_rows(sb: &Sandbox) -> Option<Vec<Row>> {
    let db = rusqlite::Connection::open_with_flags(
        sb.paths().store(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    let mut st = db
        .prepare("SELECT seq, event_id, lamport_clock, state FROM events ORDER BY seq")
        .ok()?;
    let rows = st
        .query_map([], |r| {
            Ok(Row {
                seq: r.get(0)?,
                event_id: r.get(1)?,
                lamport: r.get(2)?,
                state: r.get(3)?,
            })
        })
        .ok()?
        .collect::<Result<Vec<Row>, _>>()
        .ok()?;
    Some(rows)
}

/// The store's invariant: Lamport values strictly increasing in `seq`
/// order (hence unique). Returns the rows by event id. (Each `event_id`
/// once is the schema's UNIQUE constraint, not something to assert.)
pub fn check_store(rows: &[Row]) -> HashMap<String, Row> {
    let by_id: HashMap<String, Row> = rows
        .iter()
        .map(|r| (r.event_id.clone(), r.clone()))
        .collect();
    for w in rows.windows(2) {
        assert!(
            w[1].lamport > w[0].lamport,
            "Lamport not strictly increasing in seq order: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    by_id
}

/// Every event the server stored: event_id → deliveries, and the list in
/// received order (each id must appear once).
pub fn server_events(server: &RefServer) -> (HashMap<String, u64>, usize) {
    let (st, body) = server.get("/api/v1/events/");
    assert_eq!(st, 200, "events view: {body}");
    let list = body["events"].as_array().expect("events list");
    let map: HashMap<String, u64> = list
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_string(),
                e["deliveries"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    (map, list.len())
}

/// A refserver counter from `/__control/stats`.
pub fn stat(server: &RefServer, name: &str) -> u64 {
    let (st, body) = server.get("/__control/stats");
    assert_eq!(st, 200, "{body}");
    body[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {body}"))
}

/// Sets faults on the server (`POST /__control/faults`).
pub fn faults(server: &RefServer, body: serde_json::Value) {
    let (st, resp) = server.post("/__control/faults", None, &body);
    assert_eq!(st, 200, "faults {body}: {resp}");
}

/// Everything the daemon logged to its files in this sandbox.
pub fn daemon_log(sb: &Sandbox) -> String {
    sb.daemon_log()
}

/// Resident set size of a process in KiB (`/proc/<pid>/status` VmRSS).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
