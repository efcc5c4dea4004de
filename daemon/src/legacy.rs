//! Taking in what the Python CLI (spec-kitty-cli 2.x) queues, at start and
//! while the daemon runs.
//!
//! Python keeps events it did not send in SQLite: `queue.db` without a
//! login, `queues/queue-<scope>.db` with one (2.1.3 scopes its queue by
//! server, user and team); the `queue` table holds each envelope, and Python
//! deletes rows once it sent them. Its Lamport clock is `clock.json`
//! `{value, node_id, updated_at}`. We adopt the rows (unknown event types
//! too) and raise our clock above `clock.json`, so Lamport values on this
//! node keep rising. A row numbered below our clock (Python's clock knows
//! nothing of ours) is stamped after it ([`Store::insert_adopted`]).
//!
//! This module is the only one that knows Python's files: it reads a row
//! and decides what it is ([`adopted_row`]: the Lamport value it brings,
//! its project, held, pending or parked); the store inserts typed rows.
//!
//! Both CLIs are used side by side, so a running daemon polls the files
//! ([`Watcher`], every [`POLL_EVERY`]): a stat per file when nothing
//! changed; on a change, one short read-only query for rows above the
//! file's watermark. Never twice: rows are keyed by `event_id` (INSERT OR
//! IGNORE), and the highest Python row id adopted is stored per file in
//! `meta` (ids only grow: AUTOINCREMENT; a file re-created from scratch is
//! noticed by its `sqlite_sequence` falling below the watermark). The
//! Python files are opened read-only and never modified.

use crate::store::{AdoptedRow, AdoptedState, Store, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use spec_kitty_protocol::Paths;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WATERMARK_KEY: &str = "legacy_queue_max_id";

/// How often a running daemon looks for rows the Python CLI added.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// What the migration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LegacyReport {
    pub adopted: u64,
    pub clock_from: Option<u64>,
}

/// One queue file of the Python CLI, and the `meta` key of its watermark.
struct QueueFile {
    path: PathBuf,
    key: String,
}

/// `queue.db`, and the scoped queue of the login in `credentials`, if any.
fn queue_files(paths: &Paths) -> Vec<QueueFile> {
    let mut files = vec![QueueFile {
        path: paths.legacy_queue_db(),
        key: WATERMARK_KEY.to_string(),
    }];
    // A broken credentials file is the CLI's to report; here it only means
    // "no scoped queue".
    if let Ok(Some(c)) = spec_kitty_protocol::credentials::read(paths) {
        if let (Some(server), Some(user)) = (&c.server_url, &c.username) {
            let path = paths.python_scoped_queue_db(server, user, c.team_slug.as_deref());
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            files.push(QueueFile {
                key: format!("{WATERMARK_KEY}:queues/{}", name.unwrap_or_default()),
                path,
            });
        }
    }
    files
}

/// At start: adopts the rows of every Python queue above its watermark,
/// then raises the clock from `clock.json`. Problems with the Python files
/// are logged, never fatal.
pub fn migrate(paths: &Paths, store: &mut Store) -> Result<LegacyReport, StoreError> {
    let mut report = LegacyReport::default();
    for file in queue_files(paths) {
        report.adopted += adopt_file(&file, store)?;
    }
    if let Some(value) = read_clock_json(paths) {
        store.raise_clock(value)?;
        report.clock_from = Some(value);
    }
    Ok(report)
}

/// Watches the Python queues while the daemon runs.
#[derive(Debug, Default)]
pub struct Watcher {
    /// What each file looked like when it was last read.
    seen: HashMap<PathBuf, Fingerprint>,
}

/// Identity, size and modification time of a database and its WAL: any
/// write Python commits changes one of them.
type Fingerprint = [(u64, u64, u64, i64, i64); 2];

fn fingerprint(db: &Path) -> Option<Fingerprint> {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
            .unwrap_or_default()
    };
    let main = std::fs::metadata(db).ok()?;
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    Some([
        (
            main.dev(),
            main.ino(),
            main.len(),
            main.mtime(),
            main.mtime_nsec(),
        ),
        one(Path::new(&wal)),
    ])
}

impl Watcher {
    /// Adopts rows added since the last look; files unchanged since then
    /// cost one `stat` each. Returns how many rows were added.
    pub fn poll(&mut self, paths: &Paths, store: &mut Store) -> Result<u64, StoreError> {
        let mut added = 0;
        for file in queue_files(paths) {
            let Some(now) = fingerprint(&file.path) else {
                self.seen.remove(&file.path);
                continue;
            };
            if self.seen.get(&file.path) == Some(&now) {
                continue;
            }
            // Taken before the read: a write during it shows at the next poll.
            self.seen.insert(file.path.clone(), now);
            added += adopt_file(&file, store)?;
        }
        Ok(added)
    }
}

/// Adopts the rows of one Python queue above its watermark.
fn adopt_file(file: &QueueFile, store: &mut Store) -> Result<u64, StoreError> {
    let db = &file.path;
    if !db.exists() {
        return Ok(0);
    }
    let watermark: i64 = store
        .meta(&file.key)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rows = match read_rows(db, watermark) {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(
                "cannot read the Python queue {}: {e}; skipped",
                db.display()
            );
            return Ok(0);
        }
    };
    if rows.is_empty() {
        return Ok(0);
    }
    let max_id = rows.iter().map(|r| r.0).max().unwrap_or(watermark);
    let rows: Vec<AdoptedRow> = rows
        .into_iter()
        .map(|(_, event_id, event_type, data)| adopted_row(event_id, event_type, data))
        .collect();
    let adopted = store.insert_adopted(&rows, Some((&file.key, max_id.to_string())))?;
    if adopted > 0 {
        tracing::info!(
            "adopted {adopted} unsent event(s) from the Python queue {}",
            db.display()
        );
    }
    Ok(adopted)
}

type Row = (i64, String, String, String);

/// Rows with `id > after_id`, in id order; all rows when the file's
/// AUTOINCREMENT counter is below `after_id` (a new file at the same path).
fn read_rows(db: &Path, after_id: i64) -> rusqlite::Result<Vec<Row>> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // Python waits for its own writers; we only wait briefly for its commits.
    conn.busy_timeout(Duration::from_millis(200))?;
    let has_table: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'queue'",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(Vec::new());
    }
    let has_seq: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
        [],
        |r| r.get(0),
    )?;
    let counter: Option<i64> = if has_seq {
        conn.query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'queue'",
            [],
            |r| r.get(0),
        )
        .optional()?
    } else {
        None
    };
    let after_id = match counter {
        Some(c) if c < after_id => 0,
        _ => after_id,
    };
    let mut stmt =
        conn.prepare("SELECT id, event_id, event_type, data FROM queue WHERE id > ?1 ORDER BY id")?;
    let rows = stmt
        .query_map([after_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect();
    rows
}

/// Largest Lamport value adopted from the Python files (2^53 - 1, the
/// largest integer every JSON reader keeps exact). Anything above is a
/// corrupt file: adopting `i64::MAX` would make the next tick overflow.
pub const MAX_ADOPTED_LAMPORT: u64 = (1 << 53) - 1;

/// What one row of Python's `queue` table is: its `data` parsed, the
/// Lamport value it brings (only when in `0..=`[`MAX_ADOPTED_LAMPORT`]), its
/// project, and its first state: held without a `project_uuid` (never
/// sent), parked when `data` is not a JSON object.
pub fn adopted_row(event_id: String, event_type: String, data: String) -> AdoptedRow {
    let object = serde_json::from_str::<serde_json::Value>(&data)
        .ok()
        .filter(serde_json::Value::is_object);
    let get_str = |k: &str| {
        object
            .as_ref()
            .and_then(|o| o.get(k))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let lamport = object
        .as_ref()
        .and_then(|v| v.get("lamport_clock"))
        .and_then(serde_json::Value::as_i64)
        .filter(|l| (0..=MAX_ADOPTED_LAMPORT as i64).contains(l));
    let project_uuid = get_str("project_uuid");
    let state = match (&object, &project_uuid) {
        (None, _) => AdoptedState::Parked(
            "adopted from the Python queue: data is not a JSON object".to_string(),
        ),
        (Some(_), None) => AdoptedState::Held,
        (Some(_), Some(_)) => AdoptedState::Pending,
    };
    AdoptedRow {
        event_id,
        event_type,
        project_slug: get_str("project_slug"),
        project_uuid,
        lamport,
        object,
        text: data,
        state,
    }
}

/// `value` of `clock.json`, if the file exists and holds a non-negative
/// integer up to [`MAX_ADOPTED_LAMPORT`]; anything else is logged.
pub fn read_clock_json(paths: &Paths) -> Option<u64> {
    let path = paths.clock_json();
    let text = std::fs::read_to_string(&path).ok()?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => {
            let value = v
                .get("value")
                .and_then(serde_json::Value::as_u64)
                .filter(|v| *v <= MAX_ADOPTED_LAMPORT);
            if value.is_none() {
                tracing::warn!(
                    "{} has no \"value\" that is an integer from 0 to {MAX_ADOPTED_LAMPORT}; clock not adopted",
                    path.display()
                );
            }
            value
        }
        Err(e) => {
            tracing::warn!(
                "{} is not valid JSON ({e}); clock not adopted",
                path.display()
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Stamp;

    const P: &str = "3f0b5c1e-9a1d-4c55-9d44-6f1e2a3b4c5d";

    /// Queues one row in 2.1.3's schema; returns its event id.
    fn python_row(db: &Path) -> String {
        let conn = Connection::open(db).unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY AUTOINCREMENT,
                event_id TEXT UNIQUE NOT NULL, event_type TEXT NOT NULL, data TEXT NOT NULL,
                timestamp INTEGER NOT NULL, retry_count INTEGER DEFAULT 0, coalesce_key TEXT);",
        )
        .unwrap();
        let id = ulid::Ulid::new().to_string();
        let data = format!(
            r#"{{"event_id": "{id}", "event_type": "WPStatusChanged", "lamport_clock": 1, "project_uuid": "{P}"}}"#
        );
        conn.execute(
            "INSERT INTO queue (event_id, event_type, data, timestamp) VALUES (?1, 'WPStatusChanged', ?2, 1)",
            [&id, &data],
        )
        .unwrap();
        id
    }

    fn stored(store: &Store) -> u64 {
        store.counts(0).unwrap().queue_depth
    }

    #[test]
    fn the_watcher_takes_in_new_rows_once_and_a_queue_file_made_anew() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let mut store = Store::open(
            &paths.store(),
            Stamp {
                node_id: "abcdefabcdef".into(),
                team_slug: "local".into(),
            },
        )
        .unwrap();
        let db = paths.legacy_queue_db();
        let mut w = Watcher::default();
        assert_eq!(w.poll(&paths, &mut store).unwrap(), 0, "no file yet");
        python_row(&db);
        python_row(&db);
        assert_eq!(w.poll(&paths, &mut store).unwrap(), 2);
        assert_eq!(w.poll(&paths, &mut store).unwrap(), 0, "unchanged");
        python_row(&db);
        assert_eq!(w.poll(&paths, &mut store).unwrap(), 1, "only the new row");
        // A fresh watcher (a restart) reads nothing twice.
        assert_eq!(Watcher::default().poll(&paths, &mut store).unwrap(), 0);
        // Python's file deleted and made again: its ids start at 1, below
        // the watermark of 3, and its row is still taken in.
        std::fs::remove_file(&db).unwrap();
        python_row(&db);
        assert_eq!(w.poll(&paths, &mut store).unwrap(), 1);
        assert_eq!(stored(&store), 4);
    }

    #[test]
    fn a_python_row_is_classified_before_the_store_sees_it() {
        let row = |data: &str| adopted_row("E".into(), "T".into(), data.to_string());
        let ok = row(&format!(
            r#"{{"lamport_clock": 7, "project_uuid": "{P}", "project_slug": "demo"}}"#
        ));
        assert_eq!(ok.state, AdoptedState::Pending);
        assert_eq!(ok.lamport, Some(7));
        assert_eq!(ok.project_slug.as_deref(), Some("demo"));
        let held = row(r#"{"lamport_clock": 7}"#);
        assert_eq!(held.state, AdoptedState::Held);
        // Above 2^53 - 1 is a corrupt file: the store stamps it anew.
        let huge = row(&format!(
            r#"{{"lamport_clock": {}, "project_uuid": "{P}"}}"#,
            MAX_ADOPTED_LAMPORT + 1
        ));
        assert_eq!(huge.lamport, None);
        assert_eq!(row(r#"{"lamport_clock": -1}"#).lamport, None);
        for bad in ["[1, 2]", "not json"] {
            let parked = row(bad);
            assert!(parked.object.is_none(), "{bad}");
            assert!(
                matches!(&parked.state, AdoptedState::Parked(r) if r.contains("not a JSON object")),
                "{bad}: {:?}",
                parked.state
            );
            assert_eq!(parked.text, bad, "kept as found");
        }
    }
}
