//! Handing one event from this short-lived process to durable storage.
//!
//! Commands call [`deliver`] once per state change and never care how the
//! event travels. Today the only path is the spool: one fsynced file per
//! event under `$SPEC_KITTY_HOME/spool/`, which the daemon ingests at start
//! and on request. The daemon path (connect → Hello → Emit → Accepted, spawn
//! if absent, all within a budget) slots in front of the spool here, without
//! touching any command.

use spec_kitty_protocol::{EventEnvelope, Paths};
use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;

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
#[error("cannot write event {event_id} to the spool at {path}: {source}")]
pub struct DeliverError {
    pub event_id: String,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Makes `env` durable: through the daemon when one can take it, else in
/// the spool.
pub fn deliver(
    paths: &Paths,
    env: &EventEnvelope,
    policy: Policy,
) -> Result<Delivery, DeliverError> {
    let reason = if policy.auto_start {
        "the sync daemon is not available yet"
    } else {
        "sync is opted out (sync.auto_start: false)"
    };
    let path = spool(paths, env)?;
    Ok(Delivery::Spooled {
        path,
        reason: reason.to_string(),
    })
}

/// Writes `env` to `spool/<event_id>.json` atomically: a dot-prefixed temp
/// file in the same directory, fsync, rename, fsync of the directory. A
/// reader never sees a partial file, and a crash leaves at most a temp file
/// that readers ignore.
pub fn spool(paths: &Paths, env: &EventEnvelope) -> Result<PathBuf, DeliverError> {
    let dir = paths.spool_dir();
    let target = paths.spool_file(&env.event_id);
    let err = |source| DeliverError {
        event_id: env.event_id.clone(),
        path: target.clone(),
        source,
    };
    fs::create_dir_all(&dir).map_err(err)?;
    let tmp = dir.join(format!(".{}.json.tmp", env.event_id));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(env.to_json().as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &target)?;
        File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        err(e)
    })?;
    Ok(target)
}
