//! `spec-kitty status [--feature F] [--json]`: the kanban board, lanes read
//! from each WP file's frontmatter. Reads only; emits nothing.

use super::Ctx;
use crate::cli::StatusArgs;
use crate::error::CliError;
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
    let wps = feature::load_wps(&feat)?;
    let total = wps.len();
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
    out.json(&serde_json::json!({
        "feature": feat.slug,
        "total": total,
        "done": done,
        "progress_percent": if total == 0 { 0.0 } else { (done as f64) * 100.0 / (total as f64) },
        "lanes": lanes,
    }));
    if out.json {
        return Ok(());
    }
    out.line(&format!("{}  {done}/{total} done", out.bold(&feat.slug)));
    for (name, items) in &columns {
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
    Ok(())
}
