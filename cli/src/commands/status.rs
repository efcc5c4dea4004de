//! `spec-kitty status [--feature F] [--json]`: the kanban board of all
//! eight lanes, from the canonical status log where it has events and the
//! frontmatter elsewhere ([`crate::status::current`]). Reads only: emits
//! nothing and writes nothing (not even the identity back-fill).
//!
//! One bad WP file (malformed frontmatter, not UTF-8, a directory or FIFO
//! named like one, a link out of the repository) does not hide the board:
//! every other WP is shown, the bad one is listed under UNREADABLE with its
//! file and reason (`unreadable` in `--json`), each reason is repeated on
//! stderr, and the exit code is 4 (documented in `--help`).

use super::status_read::open_feature;
use crate::cli::StatusArgs;
use crate::error::{CliError, Kind};
use crate::feature;
use crate::output::Out;
use crate::status::current;
use crate::wpfile;
use spec_kitty_protocol::Lane;

pub fn run(out: &Out, a: StatusArgs) -> Result<(), CliError> {
    let feat = open_feature(a.feature.as_deref())?;
    let state = current::read(&feat)?;
    let bad = &state.unreadable;
    // A WP whose file is broken but whose lane the log knows is on the
    // board (from the log) and listed as unreadable: count it once.
    let total = state.wps.len()
        + bad
            .iter()
            .filter(|b| !state.wps.contains_key(&b.wp_id))
            .count();
    let done = state.in_lane(Lane::Done).count();
    let mut columns: Vec<(String, serde_json::Value)> = Vec::new();
    // All eight columns in the order work moves (`Lane::ALL`): `approved`
    // its own column between review and done.
    for lane in Lane::ALL {
        let items: Vec<serde_json::Value> = state
            .in_lane(lane)
            .map(|w| serde_json::json!({"wp_id": w.wp_id, "title": w.title(), "dependencies": w.dependencies()}))
            .collect();
        columns.push((
            wpfile::lane_for_file(lane).to_string(),
            serde_json::Value::Array(items),
        ));
    }
    let lanes: serde_json::Map<String, serde_json::Value> = columns.iter().cloned().collect();
    let unreadable: Vec<serde_json::Value> = bad
        .iter()
        .map(|b| serde_json::json!({"wp_id": b.wp_id, "path": b.path.display().to_string(), "reason": b.error.message}))
        .collect();
    out.json(&serde_json::json!({
        "feature": feat.slug,
        "total": total,
        "done": done,
        "progress_percent": if total == 0 { 0.0 } else { (done as f64) * 100.0 / (total as f64) },
        "lanes": lanes,
        "unreadable": unreadable,
        "source": if state.has_log() { "status.events.jsonl" } else { "frontmatter" },
    }));
    if !out.json {
        render(out, &feat.slug, done, total, &columns, bad);
    }
    if bad.is_empty() {
        return Ok(());
    }
    // Each reason on stderr too, as errors are (no JSON error object: the
    // board above is the command's one JSON result).
    let stderr_only = Out {
        json: false,
        ..*out
    };
    for b in bad {
        stderr_only.error(&b.error.message);
    }
    // Already reported in full: only the exit code (4, whatever made the
    // file unreadable) is left.
    Err(CliError::reported(Kind::Invalid))
}

fn render(
    out: &Out,
    slug: &str,
    done: usize,
    total: usize,
    columns: &[(String, serde_json::Value)],
    bad: &[feature::BadWp],
) {
    out.line(&format!("{}  {done}/{total} done", out.bold(slug)));
    for (name, items) in columns {
        let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
        out.line("");
        out.line(&format!(
            "{} ({})",
            out.cyan(&name.to_uppercase()),
            items.len()
        ));
        if items.is_empty() {
            out.line(&format!("  {}", out.dim("-")));
        }
        for it in items {
            out.line(&format!(
                "  {}  {}",
                out.bold(it["wp_id"].as_str().unwrap_or("")),
                it["title"].as_str().unwrap_or("")
            ));
        }
    }
    if !bad.is_empty() {
        out.line("");
        out.line(&format!("{} ({})", out.cyan("UNREADABLE"), bad.len()));
        for b in bad {
            let name = b.path.file_name().unwrap_or_default().to_string_lossy();
            out.line(&format!(
                "  {}  {name}: {}",
                out.bold(&b.wp_id),
                b.error.message
            ));
        }
    }
}
