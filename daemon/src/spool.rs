//! Ingesting the spool: events the CLI could not hand over in time.
//!
//! One file per event, `spool/<event_id>.json`, written by the CLI under a
//! dot-prefixed temp name and renamed, so names starting with `.` are
//! skipped (a write in progress). Files are committed in `event_id` (= file
//! name, ULIDs sort by time) order, in groups of [`CHUNK`] per transaction,
//! and deleted only after their commit: a crash in between re-ingests them,
//! and the `event_id` deduplicates. A file that does not parse or breaks a
//! rule is moved to `spool/rejected/` with a `.reason` file beside it —
//! never deleted.

use crate::store::Origin;
use crate::writer::{Writer, WriterGone};
use spec_kitty_protocol::envelope::EventEnvelope;
use spec_kitty_protocol::Paths;
use std::path::{Path, PathBuf};

/// Spool files committed per transaction.
pub const CHUNK: usize = 1000;

/// What one ingest pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SpoolReport {
    pub ingested: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Files left for later (I/O errors, or the store refused the commit).
    pub failed: u64,
}

impl SpoolReport {
    pub fn summary(&self) -> String {
        format!(
            "spool: {} ingested, {} already stored, {} rejected (moved to spool/rejected/), {} left for later",
            self.ingested, self.duplicates, self.rejected, self.failed
        )
    }
}

/// Spool files waiting, sorted by name (= event_id order).
pub fn list(paths: &Paths) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(paths.spool_dir()) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && name.ends_with(".json")
        })
        .collect();
    files.sort();
    files
}

/// How many spool files are waiting (for status).
pub fn backlog(paths: &Paths) -> u64 {
    list(paths).len() as u64
}

/// Ingests every spool file through the writer. Blocking: call it from a
/// plain thread or `spawn_blocking`.
pub fn ingest(paths: &Paths, writer: &Writer) -> Result<SpoolReport, WriterGone> {
    let mut report = SpoolReport::default();
    let files = list(paths);
    for chunk in files.chunks(CHUNK) {
        let mut good: Vec<(PathBuf, EventEnvelope)> = Vec::new();
        for file in chunk {
            match parse(file) {
                Ok(env) => good.push((file.clone(), env)),
                Err(Problem::Io(e)) => {
                    tracing::warn!(
                        "cannot read spool file {}: {e}; left for later",
                        file.display()
                    );
                    report.failed += 1;
                }
                Err(Problem::Invalid(reason)) => {
                    reject(paths, file, &reason);
                    report.rejected += 1;
                }
            }
        }
        if good.is_empty() {
            continue;
        }
        let envs: Vec<(EventEnvelope, Origin)> = good
            .iter()
            .map(|(_, e)| (e.clone(), Origin::Spool))
            .collect();
        match writer.run_blocking(move |s| s.commit_emits(envs))? {
            Ok(accepted) => {
                for ((file, _), acc) in good.iter().zip(accepted) {
                    if acc.duplicate {
                        report.duplicates += 1;
                    } else {
                        report.ingested += 1;
                    }
                    if let Err(e) = std::fs::remove_file(file) {
                        tracing::warn!("ingested {} but cannot remove it: {e}", file.display());
                    }
                }
            }
            Err(e) => {
                tracing::error!(
                    "cannot commit {} spooled event(s): {e}; left in the spool",
                    good.len()
                );
                report.failed += good.len() as u64;
            }
        }
    }
    if report != SpoolReport::default() {
        tracing::info!("{}", report.summary());
    }
    Ok(report)
}

enum Problem {
    Io(std::io::Error),
    Invalid(String),
}

fn parse(file: &Path) -> Result<EventEnvelope, Problem> {
    let text = std::fs::read(file).map_err(Problem::Io)?;
    let text = String::from_utf8(text).map_err(|_| Problem::Invalid("not UTF-8 text".into()))?;
    let env = EventEnvelope::from_json(&text).map_err(|e| Problem::Invalid(e.to_string()))?;
    env.validate_unstamped()
        .map_err(|e| Problem::Invalid(e.to_string()))?;
    Ok(env)
}

fn reject(paths: &Paths, file: &Path, reason: &str) {
    let dir = paths.spool_rejected_dir();
    let name = file.file_name().unwrap_or_default();
    let dest = dir.join(name);
    let moved = std::fs::create_dir_all(&dir).and_then(|_| std::fs::rename(file, &dest));
    match moved {
        Ok(()) => {
            tracing::warn!(
                "spool file {} rejected ({reason}); moved to {}",
                file.display(),
                dest.display()
            );
            let mut reason_file = dest.clone().into_os_string();
            reason_file.push(".reason");
            let _ = spec_kitty_protocol::fsutil::write_atomic(
                Path::new(&reason_file),
                format!("{reason}\n").as_bytes(),
                Some(0o600),
            );
        }
        Err(e) => tracing::error!(
            "spool file {} rejected ({reason}) but cannot be moved to {}: {e}",
            file.display(),
            dir.display()
        ),
    }
}
