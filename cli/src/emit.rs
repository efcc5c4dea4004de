//! Building events with full identity, and the write-then-deliver step
//! every mutating command ends with.
//!
//! A command first validates everything and builds every envelope it will
//! send (so a payload that breaks a contract rule stops it before any file
//! changes), then writes its file changes ([`Changes`]), then hands each
//! envelope to [`handoff::deliver`]. If an event cannot be made durable at
//! all, the file changes are rolled back: the repository and the event
//! stream never disagree, and nothing is half-written.

use crate::error::CliError;
use crate::fsutil;
use crate::gitmeta::{self, GitMeta};
use crate::handoff::{self, Delivery, Policy};
use crate::identity::Identity;
use spec_kitty_protocol::envelope::{Origin, Payload};
use spec_kitty_protocol::{EventEnvelope, Paths};
use std::path::{Path, PathBuf};

/// The visible warning for events that carry no project identity.
pub const MISSING_UUID_WARNING: &str = "Event missing project_uuid; queued locally only";

/// `[user] team_slug` from `$SPEC_KITTY_SYNC_HOME/credentials`, else
/// `local` (also when the file cannot be read: events stay local).
pub fn team_slug(paths: &Paths) -> String {
    spec_kitty_protocol::credentials::read(paths)
        .ok()
        .flatten()
        .unwrap_or_default()
        .team_slug_or_local()
}

/// Builds the origin of this process's events. `node_id` is this
/// machine's (as the Python CLI's clock stamps it), not the config's
/// `project.node_id`, which records the machine that created the identity
/// and travels with the repository to other machines.
pub fn origin(id: &Identity, paths: &Paths, git: &GitMeta) -> Origin {
    let repo_slug = id
        .repo_slug
        .clone()
        .filter(|s| s.contains('/') && s.split('/').all(|p| !p.trim().is_empty()))
        .or_else(|| git.origin_url.as_deref().and_then(gitmeta::repo_slug));
    Origin {
        node_id: spec_kitty_protocol::node_id(),
        team_slug: team_slug(paths),
        project_uuid: id.uuid.clone(),
        project_slug: id.slug.clone(),
        git_branch: git.branch.clone(),
        head_commit_sha: git.head_sha.clone(),
        repo_slug,
    }
}

/// Builds envelopes and delivers them.
#[derive(Debug)]
pub struct Emitter {
    pub paths: Paths,
    pub origin: Origin,
    pub policy: Policy,
}

impl Emitter {
    /// Builds one envelope; a contract violation is a bug or bad input and
    /// becomes an error naming the field.
    pub fn build(
        &self,
        payload: &Payload,
        causation: Option<String>,
    ) -> Result<EventEnvelope, CliError> {
        EventEnvelope::build(payload, &self.origin, causation).map_err(|e| {
            CliError::invalid(format!(
                "cannot build the {} event: {e}",
                payload.event_type()
            ))
        })
    }

    /// Delivers every envelope in order. Stops at the first failure and
    /// returns it with the deliveries made so far. `meanwhile` runs while
    /// the daemon commits the first event (or once it was spooled): work
    /// worth overlapping with that wait; it may be called more than once.
    pub fn deliver_all(
        &self,
        envs: &[EventEnvelope],
        warn: &mut dyn FnMut(String),
        meanwhile: &mut dyn FnMut(),
    ) -> Result<Vec<Delivery>, CliError> {
        let mut out = Vec::with_capacity(envs.len());
        for env in envs {
            if env.project_uuid.is_none() {
                warn(MISSING_UUID_WARNING.to_string());
            }
            let d = handoff::deliver(&self.paths, env, self.policy, meanwhile)
                .map_err(CliError::io_from)?;
            out.push(d);
        }
        meanwhile();
        if !out.is_empty() {
            login_hint(&self.paths);
        }
        Ok(out)
    }
}

/// File changes applied together and undone together, to files of the
/// repository at `root` (written under [`fsutil`]'s link rule).
#[derive(Debug)]
pub struct Changes {
    root: PathBuf,
    items: Vec<Change>,
}

#[derive(Debug)]
struct Change {
    path: PathBuf,
    /// `None`: the file is new (rollback removes it).
    old: Option<Vec<u8>>,
    new: Vec<u8>,
}

impl Changes {
    /// No changes yet, to files of the repository at `root`.
    pub fn new(root: &Path) -> Changes {
        Changes {
            root: root.to_path_buf(),
            items: Vec::new(),
        }
    }

    /// Replaces `path` (whose current bytes are `old`) with `new`.
    pub fn replace(&mut self, path: &Path, old: &str, new: String) {
        self.items.push(Change {
            path: path.to_path_buf(),
            old: Some(old.as_bytes().to_vec()),
            new: new.into_bytes(),
        });
    }

    /// Creates `path` with `new`.
    pub fn create(&mut self, path: &Path, new: String) {
        self.items.push(Change {
            path: path.to_path_buf(),
            old: None,
            new: new.into_bytes(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Writes every change atomically; on a failure, undoes the ones done.
    /// Each file is fsynced before its rename; each directory holding one
    /// is fsynced once, after the last rename into it (a feature's WP files
    /// share `tasks/`), before the changes count as made.
    pub fn apply(&self) -> Result<(), CliError> {
        self.apply_keeping_old().map(drop)
    }

    /// [`Changes::apply`], returning the replaced files still open: their
    /// blocks are freed when the last descriptor closes, which on a file
    /// system mounted with `discard` (and no journal) trims them there and
    /// then, synchronously (about 70 µs here) — worth doing while the daemon
    /// commits.
    fn apply_keeping_old(&self) -> Result<Vec<std::fs::File>, CliError> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut old = Vec::new();
        for (i, c) in self.items.iter().enumerate() {
            let written = fsutil::resolve_in_repo(&self.root, &c.path)
                .map_err(CliError::from)
                .and_then(|real| {
                    if c.old.is_some() {
                        // A regular file inside the repository (the rule
                        // above just said so): opening it reads nothing.
                        old.extend(spec_kitty_protocol::fsutil::open_nonblocking(&real).ok());
                    }
                    spec_kitty_protocol::fsutil::write_atomic_dir_unsynced(&real, &c.new, None)
                        .map(Path::to_path_buf)
                        .map_err(|e| CliError::io_at("write", &c.path, &e))
                });
            match written {
                Ok(dir) if !dirs.contains(&dir) => dirs.push(dir),
                Ok(_) => {}
                Err(e) => {
                    // (Undoing writes in full, directory fsyncs included.)
                    self.undo(i);
                    return Err(e);
                }
            }
        }
        for d in &dirs {
            if let Err(e) = spec_kitty_protocol::fsutil::sync_dir(d) {
                self.undo(self.items.len());
                return Err(CliError::io_at("fsync the directory", d, &e));
            }
        }
        Ok(old)
    }

    /// Undoes the first `n` changes (best effort; they were just written).
    pub fn undo(&self, n: usize) {
        for c in self.items[..n].iter().rev() {
            match &c.old {
                Some(old) => {
                    let _ = fsutil::write_repo_file(&self.root, &c.path, old);
                }
                None => {
                    let _ = std::fs::remove_file(&c.path);
                }
            }
        }
    }

    /// Applies the changes, then delivers `envs`; if delivery fails, the
    /// changes are undone and the error returned.
    pub fn commit(
        &self,
        emitter: &Emitter,
        envs: &[EventEnvelope],
        warn: &mut dyn FnMut(String),
    ) -> Result<Vec<Delivery>, CliError> {
        let mut old = Some(self.apply_keeping_old()?);
        // The replaced files are let go while the daemon commits.
        let delivered = emitter.deliver_all(envs, warn, &mut || drop(old.take()));
        match delivered {
            Ok(d) => Ok(d),
            Err(e) => {
                self.undo(self.items.len());
                Err(rolled_back(e, "the file changes were"))
            }
        }
    }
}

/// A failed delivery after `what` (e.g. "the status change was") has been
/// undone: the message says so, and the delivery error stays the source.
pub fn rolled_back(e: CliError, what: &str) -> CliError {
    CliError::io(format!(
        "{}; {what} rolled back so files and events stay in step",
        e.message
    ))
    .with_source(e)
}

/// JSON description of delivered events for `--json` output.
pub fn events_json(envs: &[EventEnvelope], deliveries: &[Delivery]) -> serde_json::Value {
    serde_json::Value::Array(
        envs.iter()
            .zip(deliveries)
            .map(|(e, d)| {
                let (how, detail) = match d {
                    Delivery::Accepted { lamport_clock, .. } => {
                        ("accepted", serde_json::json!(lamport_clock))
                    }
                    Delivery::Spooled { reason, .. } => ("spooled", serde_json::json!(reason)),
                };
                serde_json::json!({
                    "event_id": e.event_id,
                    "event_type": e.event_type,
                    "aggregate_id": e.aggregate_id,
                    "delivery": how,
                    "detail": detail,
                })
            })
            .collect(),
    )
}

/// Prints "Events queued locally; run spec-kitty auth login ..." on stderr
/// at most once an hour (stamp file `Paths::login_hint_stamp()`), and only
/// when not logged in. Called after an event was handed off.
fn login_hint(paths: &Paths) {
    const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);
    let logged_in = spec_kitty_protocol::credentials::read(paths)
        .ok()
        .flatten()
        .is_some_and(|c| c.logged_in());
    if logged_in {
        return;
    }
    let stamp = paths.login_hint_stamp();
    let recent = std::fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < HOUR);
    if recent {
        return;
    }
    if let Some(dir) = stamp.parent() {
        // run/ is also the daemon's socket directory: create it 0700.
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    let _ = std::fs::write(&stamp, spec_kitty_protocol::time::now_utc());
    eprintln!("Events queued locally; run spec-kitty auth login to enable real-time sync");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rolled_back_delivery_keeps_the_delivery_error_as_its_cause() {
        let full = || std::io::Error::from_raw_os_error(28);
        let e = rolled_back(CliError::io_from(full()), "the status change was");
        assert_eq!(
            e.message,
            format!(
                "{}; the status change was rolled back so files and events stay in step",
                full()
            )
        );
        let mut causes = std::iter::successors(std::error::Error::source(&e), |c| c.source());
        assert!(causes.any(|c| c
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(28))));
        assert_eq!(e.report(), e.message, "every cause is already said");
    }
}
