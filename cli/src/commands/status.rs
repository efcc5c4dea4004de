//! `spec-kitty status [--feature F] [--json]`: the kanban board, lanes read
//! from each WP file's frontmatter. Reads only; emits nothing.
//!
//! One bad WP file (malformed frontmatter, not UTF-8, a directory or FIFO
//! named like one, a link out of the repository) does not hide the board:
//! every other WP is shown, the bad one is listed under UNREADABLE with its
//! file and reason (`unreadable` in `--json`), each reason is repeated on
//! stderr, and the exit code is 4 (documented in `--help`).

use super::Ctx;
use crate::cli::StatusArgs;
use crate::error::{CliError, Kind};
use crate::feature;
use crate::output::Out;
use crate::wpfile;
use spec_kitty_protocol::Lane;

/// Board columns: the four user lanes, then the others when used.
const COLUMNS: [Lane; 8] = [
    Lane::Planned,
    Lane::InProgress,
    Lane::ForReview,
    Lane::Approved,
    Lane::Done,
    Lane::Claimed,
    Lane::Blocked,
    Lane::Canceled,
];

pub fn run(out: &Out, a: StatusArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let (wps, bad) = feature::load_wps_lenient(&feat)?;
    let total = wps.len() + bad.len();
    let done = wps.iter().filter(|w| w.meta.lane == Lane::Done).count();
    let mut columns: Vec<(String, serde_json::Value)> = Vec::new();
    for lane in COLUMNS {
        let items: Vec<serde_json::Value> = wps
            .iter()
            .filter(|w| w.meta.lane == lane)
            .map(|w| serde_json::json!({"wp_id": w.meta.wp_id, "title": w.meta.title, "dependencies": w.meta.dependencies}))
            .collect();
        if Lane::USER.contains(&lane) || !items.is_empty() {
            columns.push((
                wpfile::lane_for_file(lane).to_string(),
                serde_json::Value::Array(items),
            ));
        }
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
    }));
    if !out.json {
        render(out, &feat.slug, done, total, &columns, &bad);
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
    for b in &bad {
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
