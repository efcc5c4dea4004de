//! The current state of a feature's work packages, for every command that
//! needs it (boards, `agent tasks status`, validation, the write path's
//! "from" lane): one function, [`read`], so no two commands disagree.
//!
//! The log is the truth. A work package with at least one event in
//! `status.events.jsonl` is in the lane the reducer gives it; one with no
//! event (no log yet: a project made by this CLI before the status model,
//! the 2026-02 corpus, or a WP added after the log was started) is in its
//! frontmatter lane, read as 2.1.3's `agent status migrate` reads it
//! (missing or empty = `planned`, `doing` = `in_progress`). Nothing here
//! writes: a stale view is reported by `agent status validate`, never
//! "fixed" by a read (the upstream data-loss bug was a read that
//! re-materialised stale state over a committed `done`).

use super::log::{self, LogError, Logged};
use super::reducer::{self, Snapshot, WpState};
use crate::error::CliError;
use crate::feature::{self, BadWp, Feature};
use crate::wpfile::WpFile;
use spec_kitty_protocol::Lane;
use std::collections::BTreeMap;

/// Where a work package's lane came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneSource {
    /// The reduced status log.
    Log,
    /// The WP file's `lane:` (no event for this WP yet).
    Frontmatter,
}

impl LaneSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LaneSource::Log => "log",
            LaneSource::Frontmatter => "frontmatter",
        }
    }
}

/// One work package as it stands now.
#[derive(Debug, Clone)]
pub struct CurrentWp {
    pub wp_id: String,
    pub lane: Lane,
    pub source: LaneSource,
    /// Its WP file, when there is a readable one (a log may name a WP whose
    /// file is gone or broken).
    pub file: Option<WpFile>,
    /// Its reduced state, when the log has events for it.
    pub state: Option<WpState>,
}

impl CurrentWp {
    pub fn title(&self) -> &str {
        self.file.as_ref().map_or("", |f| f.meta.title.as_str())
    }
    pub fn dependencies(&self) -> &[String] {
        self.file
            .as_ref()
            .map_or(&[][..], |f| f.meta.dependencies.as_slice())
    }
}

/// A feature's current state.
#[derive(Debug)]
pub struct FeatureState {
    /// The log's events in file order (empty when there is no log).
    pub events: Vec<Logged>,
    /// The log reduced (empty when there is no log).
    pub snapshot: Snapshot,
    /// Every work package known to the WP files or the log, by id.
    pub wps: BTreeMap<String, CurrentWp>,
    /// WP files that could not be read (broken frontmatter, unknown lane,
    /// not UTF-8, refused by the link rule), each with its error. A WP
    /// listed here that the log knows is still in `wps`, from the log.
    pub unreadable: Vec<BadWp>,
}

impl FeatureState {
    /// Is there a status log with at least one event?
    pub fn has_log(&self) -> bool {
        !self.events.is_empty()
    }

    /// The work packages in `lane`, by id.
    pub fn in_lane(&self, lane: Lane) -> impl Iterator<Item = &CurrentWp> {
        self.wps.values().filter(move |w| w.lane == lane)
    }
}

/// Why a feature's state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The log has a line that is not a valid event (file and line named).
    #[error(transparent)]
    Log(#[from] LogError),
    /// The feature directory is missing or `tasks/` cannot be listed.
    #[error(transparent)]
    Feature(#[from] CliError),
}

impl From<ReadError> for CliError {
    fn from(e: ReadError) -> CliError {
        match e {
            ReadError::Log(l) => CliError::invalid(format!(
                "{l} (the status log is refused as a whole so no lane is guessed; `spec-kitty agent status doctor` explains the repair)"
            ))
            .with_source(l),
            ReadError::Feature(c) => c,
        }
    }
}

/// Reads the current state of `feature` without writing anything.
pub fn read(feature: &Feature) -> Result<FeatureState, ReadError> {
    if !feature.dir.is_dir() {
        return Err(CliError::invalid(format!(
            "feature directory not found: {}",
            feature.dir.display()
        ))
        .into());
    }
    let events = read_log_settled(&feature.dir)?;
    let snapshot = reducer::reduce(events.iter().map(|l| &l.event));
    let (files, unreadable) = feature::load_wps_lenient(feature)?;
    Ok(combine(events, snapshot, files, unreadable))
}

/// The log, read without the lock (a read never writes, not even a lock
/// file). A writer of either CLI appends a line with one `write`, which a
/// reader may catch half done: a bad last line with no newline after it
/// is read again a few times before it counts as torn. Any other bad line
/// is an error at once.
fn read_log_settled(feature_dir: &std::path::Path) -> Result<Vec<Logged>, LogError> {
    settle(
        || log::read(feature_dir),
        |e| is_unfinished_last_line(feature_dir, e),
        || std::thread::sleep(std::time::Duration::from_millis(25)),
    )
}

/// Reads until the result is not an unfinished last line, at most five
/// times, waiting between tries.
fn settle<T>(
    mut read: impl FnMut() -> Result<T, LogError>,
    unfinished: impl Fn(&LogError) -> bool,
    mut wait: impl FnMut(),
) -> Result<T, LogError> {
    let mut tries = 0;
    loop {
        match read() {
            Err(e) if tries < 4 && unfinished(&e) => {
                tries += 1;
                wait();
            }
            other => return other,
        }
    }
}

fn is_unfinished_last_line(feature_dir: &std::path::Path, e: &LogError) -> bool {
    let Ok(bytes) = std::fs::read(log::path(feature_dir)) else {
        return false;
    };
    let last = bytes.split(|b| *b == b'\n').count();
    !bytes.ends_with(b"\n") && e.line == Some(last)
}

/// Puts the log's and the files' views together (see the module doc).
fn combine(
    events: Vec<Logged>,
    snapshot: Snapshot,
    files: Vec<WpFile>,
    unreadable: Vec<BadWp>,
) -> FeatureState {
    let mut wps: BTreeMap<String, CurrentWp> = BTreeMap::new();
    for f in files {
        let id = f.meta.wp_id.clone();
        let state = snapshot.work_packages.get(&id).cloned();
        let (lane, source) = match &state {
            Some(s) => (s.lane, LaneSource::Log),
            None => (f.meta.lane, LaneSource::Frontmatter),
        };
        // Two files claiming one id: the first (by file name) wins, as
        // 2.1.3's glob-and-take-first does.
        wps.entry(id.clone()).or_insert(CurrentWp {
            wp_id: id,
            lane,
            source,
            file: Some(f),
            state,
        });
    }
    for (id, s) in &snapshot.work_packages {
        wps.entry(id.clone()).or_insert_with(|| CurrentWp {
            wp_id: id.clone(),
            lane: s.lane,
            source: LaneSource::Log,
            file: None,
            state: Some(s.clone()),
        });
    }
    FeatureState {
        events,
        snapshot,
        wps,
        unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::event::StatusEvent;
    use std::fs;

    fn feature(dir: &std::path::Path) -> Feature {
        let fdir = dir.join("kitty-specs").join("001-demo");
        fs::create_dir_all(fdir.join("tasks")).unwrap();
        Feature {
            slug: "001-demo".into(),
            dir: fdir,
            root: dir.to_path_buf(),
        }
    }

    fn wp(f: &Feature, id: &str, lane: &str) {
        fs::write(
            f.tasks_dir().join(format!("{id}-x.md")),
            format!("---\nwork_package_id: {id}\ntitle: T {id}\nlane: {lane}\n---\nbody\n"),
        )
        .unwrap();
    }

    #[test]
    fn the_log_wins_where_it_has_events_and_frontmatter_fills_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let f = feature(tmp.path());
        wp(&f, "WP01", "planned");
        wp(&f, "WP02", "doing");
        wp(&f, "WP03", "");
        let e = StatusEvent::sample(
            "01A",
            "WP01",
            Lane::ForReview,
            Lane::Approved,
            "2026-01-01T00:00:00+00:00",
        );
        log::append(&f.dir, &[e]).unwrap();
        let before = fs::read(log::path(&f.dir)).unwrap();
        let s = read(&f).unwrap();
        assert_eq!(s.wps["WP01"].lane, Lane::Approved);
        assert_eq!(s.wps["WP01"].source, LaneSource::Log);
        assert_eq!(s.wps["WP02"].lane, Lane::InProgress);
        assert_eq!(s.wps["WP02"].source, LaneSource::Frontmatter);
        assert_eq!(s.wps["WP03"].lane, Lane::Planned);
        assert_eq!(fs::read(log::path(&f.dir)).unwrap(), before);
        assert!(!f.dir.join("status.json").exists(), "a read writes no view");
    }

    #[test]
    fn a_line_caught_half_appended_is_read_again_once_the_writer_finishes() {
        let tmp = tempfile::tempdir().unwrap();
        let f = feature(tmp.path());
        let line = StatusEvent::sample(
            "01A",
            "WP01",
            Lane::Planned,
            Lane::Claimed,
            "2026-01-01T00:00:00+00:00",
        )
        .to_line();
        let (head, tail) = line.split_at(30);
        let path = log::path(&f.dir);
        fs::write(&path, head).unwrap();
        let err = log::read(&f.dir).unwrap_err();
        assert!(is_unfinished_last_line(&f.dir, &err), "{err}");
        // The "writer" finishes the line during the second wait.
        let mut waits = 0;
        let got = settle(
            || log::read(&f.dir),
            |e| is_unfinished_last_line(&f.dir, e),
            || {
                waits += 1;
                if waits == 2 {
                    fs::write(&path, format!("{head}{tail}\n")).unwrap();
                }
            },
        )
        .unwrap();
        assert_eq!((got.len(), waits), (1, 2));
        // Torn for good: an error after four waits; a bad line that ends
        // with its newline is an error at once.
        fs::write(&path, head).unwrap();
        let mut waits = 0;
        let r = settle(
            || log::read(&f.dir),
            |e| is_unfinished_last_line(&f.dir, e),
            || waits += 1,
        );
        assert_eq!((r.unwrap_err().line, waits), (Some(1), 4));
        fs::write(&path, format!("{head}\n")).unwrap();
        let err = log::read(&f.dir).unwrap_err();
        assert!(!is_unfinished_last_line(&f.dir, &err));
    }

    #[test]
    fn a_broken_wp_file_is_listed_and_a_torn_log_is_an_error_naming_the_line() {
        let tmp = tempfile::tempdir().unwrap();
        let f = feature(tmp.path());
        wp(&f, "WP01", "planned");
        wp(&f, "WP02", "sideways");
        let s = read(&f).unwrap();
        assert_eq!(s.wps.len(), 1);
        assert_eq!(s.unreadable.len(), 1);
        assert!(s.unreadable[0].error.message.contains("sideways"));
        fs::write(log::path(&f.dir), "{\"event_id\": \"01A\"\n").unwrap();
        let err = CliError::from(read(&f).unwrap_err());
        assert!(
            err.message.contains("status.events.jsonl:1:"),
            "{}",
            err.message
        );
        let missing = Feature {
            slug: "002-gone".into(),
            dir: tmp.path().join("kitty-specs/002-gone"),
            root: tmp.path().to_path_buf(),
        };
        let err = CliError::from(read(&missing).unwrap_err());
        assert!(err.message.contains("002-gone"), "{}", err.message);
    }
}
