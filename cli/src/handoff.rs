//! Handing one event from this short-lived process to durable storage.
//!
//! Commands call [`deliver`] once per state change and never care how the
//! event travels. First choice: the daemon (connect → Hello → Emit →
//! Accepted, starting it when absent and `sync.auto_start` allows; see
//! [`crate::daemon_client`]). Fallback: the spool, one fsynced file per
//! event under `$SPEC_KITTY_SYNC_HOME/spool/`, which the daemon ingests at start
//! and on `IngestSpool`.
//!
//! The budget is per process, not per event: the first `deliver` starts a
//! clock ([`daemon_client::HANDOFF_BUDGET`], 1.5 s, of which
//! [`DAEMON_SHARE`] for the daemon path and the rest for spooling), and
//! once the daemon path failed every later event goes straight to the
//! spool, so a command with ten events is never ten times slower. The
//! reason is printed once, in one line on stderr; the command succeeds.
//!
//! A running daemon gets each event on a connection of its own, in one
//! round trip that the daemon closes ([`daemon_client::connect_pipelined`]);
//! a daemon this process had to start (or replace) keeps its connection
//! for the command's later events.
//!
//! `sync.auto_start: false` means "this project never starts the daemon":
//! if one is already running (started by another project, a service unit or
//! `spec-kitty sync start`) the event is handed to it, because the spool
//! would reach that same daemon anyway, only later and out of clock order;
//! if none runs, the event is spooled.

use crate::daemon_client::{self, ClientError, Conn};
use spec_kitty_protocol::ipc::{ErrorKind, Request, Response};
use spec_kitty_protocol::{EventEnvelope, Paths};
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Part of the budget the daemon path may use; the rest is for spooling.
pub const DAEMON_SHARE: Duration = Duration::from_millis(1250);

/// How the caller's project wants events handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `sync.auto_start` from `.kittify/config.yaml` (default true): whether
    /// this process may start a daemon.
    pub auto_start: bool,
}

/// Where an event ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The daemon committed it.
    Accepted { lamport_clock: u64, seq: u64 },
    /// Written to the spool; `reason` says why the daemon path was not used,
    /// in words for the user.
    Spooled { path: PathBuf, reason: String },
}

/// The event could not be made durable at all.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("cannot write event {event_id} to the spool at {path}: {source}")]
    Spool {
        event_id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The daemon said the envelope breaks the contract: a bug, not a
    /// transient failure, so it is not spooled either.
    #[error("the sync daemon refused event {event_id} as invalid: {message}")]
    Invalid { event_id: String, message: String },
}

/// The daemon path's state for this process.
struct Session {
    deadline: Instant,
    conn: Option<Conn>,
    /// Why the daemon path is not used any more (set once).
    failed: Option<String>,
    /// The daemon answered but could not store an event (e.g. its disk is
    /// full): the spool fallback asks it to ingest.
    refused: bool,
    /// The one-line reason was printed.
    said: bool,
}

static SESSION: Mutex<Option<Session>> = Mutex::new(None);

/// Makes `env` durable: through the daemon when one can take it, else in
/// the spool. `meanwhile` runs while a newly connected daemon commits it
/// (else not here: the caller runs it after).
pub fn deliver(
    paths: &Paths,
    env: &EventEnvelope,
    policy: Policy,
    meanwhile: &mut dyn FnMut(),
) -> Result<Delivery, DeliverError> {
    let mut guard = SESSION.lock().unwrap_or_else(|p| p.into_inner());
    let s = guard.get_or_insert_with(|| Session {
        deadline: Instant::now() + DAEMON_SHARE,
        conn: None,
        failed: None,
        refused: false,
        said: false,
    });
    if s.failed.is_none() {
        match via_daemon(s, paths, env, policy, meanwhile) {
            Ok(d) => return Ok(d),
            Err(Fail::Invalid(message)) => {
                return Err(DeliverError::Invalid {
                    event_id: env.event_id.clone(),
                    message,
                })
            }
            Err(Fail::Other(reason)) => s.failed = Some(reason),
        }
    }
    let reason = s.failed.clone().unwrap_or_default();
    let path = spool(paths, env)?;
    if !s.said {
        s.said = true;
        eprintln!(
            "spec-kitty: event spooled to {}: {reason}",
            paths.spool_dir().display()
        );
    }
    // A daemon that is reachable but could not take the event directly
    // (e.g. a storage error) is asked to pick the spool up now.
    if s.refused {
        let budget = (daemon_client::HANDOFF_BUDGET - DAEMON_SHARE) / 2;
        let asked = match s.conn.as_mut() {
            Some(conn) => conn.call(Request::IngestSpool, Instant::now() + budget),
            None => daemon_client::request(paths, Request::IngestSpool, budget),
        };
        if asked.is_err() {
            s.conn = None;
        }
    }
    Ok(Delivery::Spooled { path, reason })
}

enum Fail {
    Invalid(String),
    Other(String),
}

fn reason_for(e: &ClientError, policy: Policy) -> String {
    match e {
        ClientError::NotRunning if !policy.auto_start => {
            "sync is opted out here (sync.auto_start: false) and no sync daemon is running".into()
        }
        other => other.to_string(),
    }
}

/// Whether the spool holds an event file (cheap: one directory read, and
/// usually the directory is empty or missing).
fn spool_has_events(paths: &Paths) -> bool {
    fs::read_dir(paths.spool_dir()).is_ok_and(|mut d| {
        d.any(|e| {
            e.ok().is_some_and(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                !n.starts_with('.') && n.ends_with(".json")
            })
        })
    })
}

fn via_daemon(
    s: &mut Session,
    paths: &Paths,
    env: &EventEnvelope,
    policy: Policy,
    meanwhile: &mut dyn FnMut(),
) -> Result<Delivery, Fail> {
    // Opted out and no socket: nothing to reach and nothing to start, so
    // neither connect nor look at the spool (which grows while opted out).
    if s.conn.is_none() && !policy.auto_start && !paths.socket().exists() {
        return Err(Fail::Other(reason_for(&ClientError::NotRunning, policy)));
    }
    let emit = Request::Emit {
        envelope: env.to_json(),
    };
    // Events left in the spool by an earlier fallback go in first, in the
    // same write, so they get the lower Lamport values.
    let reqs = if spool_has_events(paths) {
        vec![Request::IngestSpool, emit]
    } else {
        vec![emit]
    };
    let mut answers = None;
    if s.conn.is_none() {
        // Warm path: Hello and the requests in one write, one round trip.
        match daemon_client::connect_pipelined(paths, &reqs, s.deadline, meanwhile) {
            Ok(Some(a)) => answers = Some(a),
            // No daemon, or an incompatible one: the full path decides.
            Ok(None) => {
                let conn =
                    daemon_client::launch::connect_or_spawn(paths, policy.auto_start, s.deadline)
                        .map_err(|e| Fail::Other(reason_for(&e, policy)))?;
                s.conn = Some(conn);
            }
            Err(e) => return Err(Fail::Other(reason_for(&e, policy))),
        }
    }
    let answers = match answers {
        Some(a) => a,
        None => {
            let conn = s.conn.as_mut().expect("connected above");
            match conn.call_many(&reqs, s.deadline) {
                Ok(a) => a,
                Err(e) => {
                    s.conn = None;
                    return Err(Fail::Other(e.to_string()));
                }
            }
        }
    };
    match answers.into_iter().last() {
        Some(Response::Accepted {
            lamport_clock, seq, ..
        }) => Ok(Delivery::Accepted { lamport_clock, seq }),
        Some(Response::Error {
            kind: ErrorKind::InvalidEnvelope,
            message,
        }) => Err(Fail::Invalid(message)),
        Some(Response::Error { kind, message }) => {
            if kind == ErrorKind::ShuttingDown {
                s.conn = None;
            } else {
                s.refused = true;
            }
            Err(Fail::Other(format!(
                "the sync daemon could not store it: {message}"
            )))
        }
        other => {
            s.conn = None;
            Err(Fail::Other(format!(
                "unexpected answer from the sync daemon: {other:?}"
            )))
        }
    }
}

/// Writes `env` to `spool/<event_id>.json` atomically, mode 0600, with
/// [`spec_kitty_protocol::fsutil::write_atomic`]. A reader never sees a
/// partial file, and a crash leaves at most a dot-prefixed temp file that
/// readers ignore.
pub fn spool(paths: &Paths, env: &EventEnvelope) -> Result<PathBuf, DeliverError> {
    let dir = paths.spool_dir();
    let target = paths.spool_file(&env.event_id);
    let err = |source| DeliverError::Spool {
        event_id: env.event_id.clone(),
        path: target.clone(),
        source,
    };
    // Spooled events name projects and branches: private to the user.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(err)?;
    spec_kitty_protocol::fsutil::write_atomic(&target, env.to_json().as_bytes(), Some(0o600))
        .map_err(err)?;
    Ok(target)
}
