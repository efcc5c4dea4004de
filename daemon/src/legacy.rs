//! Migration from the Python CLI (spec-kitty-cli 2.x).
//!
//! It left two things behind in the same home: `queue.db`, whose `queue`
//! table holds events it queued and never sent (it deletes rows once sent),
//! and `clock.json` `{value, node_id, updated_at}`. We adopt the rows with
//! their envelopes untouched (unknown event types too) and raise our clock
//! above both, so Lamport values on this node keep rising.
//!
//! Idempotent: rows are keyed by `event_id` (INSERT OR IGNORE), and a
//! watermark of the highest Python row id adopted is stored in `meta`, so
//! running twice — or on every start, which we do, since the Python CLI may
//! still be used beside us — adds nothing twice. The Python file is opened
//! read-only and never modified.

use crate::store::{Store, StoreError};
use rusqlite::{Connection, OpenFlags};
use spec_kitty_protocol::Paths;

const WATERMARK_KEY: &str = "legacy_queue_max_id";

/// What the migration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LegacyReport {
    pub adopted: u64,
    pub clock_from: Option<u64>,
}

/// Adopts `queue.db` rows above the watermark and raises the clock from
/// `clock.json`. Problems with the Python files are logged, never fatal.
pub fn migrate(paths: &Paths, store: &mut Store) -> Result<LegacyReport, StoreError> {
    let mut report = LegacyReport::default();
    if let Some(value) = read_clock_json(paths) {
        store.raise_clock(value)?;
        report.clock_from = Some(value);
    }
    let db = paths.legacy_queue_db();
    if !db.exists() {
        return Ok(report);
    }
    let watermark: i64 = store
        .meta(WATERMARK_KEY)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rows = match read_rows(&db, watermark) {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(
                "cannot read the Python queue {}: {e}; skipped",
                db.display()
            );
            return Ok(report);
        }
    };
    if rows.is_empty() {
        return Ok(report);
    }
    let max_id = rows.iter().map(|r| r.0).max().unwrap_or(watermark);
    let triples: Vec<(String, String, String)> =
        rows.into_iter().map(|(_, a, b, c)| (a, b, c)).collect();
    report.adopted = store.adopt_legacy(&triples, Some((WATERMARK_KEY, max_id.to_string())))?;
    if report.adopted > 0 {
        tracing::info!(
            "adopted {} unsent event(s) from the Python queue {}",
            report.adopted,
            db.display()
        );
    }
    Ok(report)
}

fn read_rows(
    db: &std::path::Path,
    after_id: i64,
) -> rusqlite::Result<Vec<(i64, String, String, String)>> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let has_table: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'queue'",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(Vec::new());
    }
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
