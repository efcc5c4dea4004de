//! `spec-kitty agent tasks mark-status T001 [T002 ...] --status done|pending`:
//! 2.1.3's subtask ticking in `tasks.md`.
//!
//! Under the feature's status lock (tasks.md is a status view too), the
//! first checkbox line naming each id gets `- [x]` or `- [ ]`; ids not found
//! are reported, and none found is an error that changes nothing. One
//! commit (2.1.3's message) and one `HistoryAdded` per work package whose
//! section holds a ticked subtask, naming that work package (2.1.3 derives
//! `WP00`-style ids from the subtask number).

use super::lane_move;
use super::Ctx;
use crate::cli::MarkStatusArgs;
use crate::emit::events_json;
use crate::error::CliError;
use crate::fsutil;
use crate::output::Out;
use spec_kitty_protocol::envelope::{is_wp_id, HistoryAdded, Payload};
use std::collections::BTreeMap;

pub fn run(out: &Out, a: MarkStatusArgs) -> Result<(), CliError> {
    if a.status != "done" && a.status != "pending" {
        return Err(CliError::invalid(format!(
            "Invalid status '{}'. Must be 'done' or 'pending'.",
            a.status
        )));
    }
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let tasks_md = feat.dir.join("tasks.md");
    let guard = crate::status::store::take_lock(&feat)?;
    let text = match fsutil::read_repo_file(&feat.root, &tasks_md)? {
        Some(b) => String::from_utf8(b)
            .map_err(|_| CliError::invalid(format!("{} is not UTF-8 text", tasks_md.display())))?,
        None => {
            return Err(CliError::invalid(format!(
                "tasks.md not found: {}",
                tasks_md.display()
            )))
        }
    };
    let mark = if a.status == "done" { 'x' } else { ' ' };
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut updated = Vec::new();
    let mut not_found = Vec::new();
    let mut by_wp: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in &a.task_ids {
        let hit = lines
            .iter()
            .position(|l| checkbox(l).is_some_and(|(_, rest)| starts_with_word(rest, id)));
        match hit {
            Some(i) => {
                let (start, _) = checkbox(&lines[i]).expect("matched above");
                let line = &lines[i];
                let close = start + line[start..].find(']').expect("a checkbox") + 1;
                lines[i] = format!("{}- [{mark}]{}", &line[..start], &line[close..]);
                updated.push(id.clone());
                if let Some(wp) = section_wp(&lines[..i]) {
                    by_wp.entry(wp).or_default().push(id.clone());
                }
            }
            None => not_found.push(id.clone()),
        }
    }
    if updated.is_empty() {
        return Err(CliError::invalid(format!(
            "No task IDs found in {}: {}",
            tasks_md.display(),
            not_found.join(", ")
        )));
    }
    let envs = by_wp
        .iter()
        .map(|(wp, ids)| {
            ctx.emitter.build(
                &Payload::HistoryAdded(HistoryAdded {
                    wp_id: wp.clone(),
                    entry_type: "note".into(),
                    entry_content: format!("Subtask(s) {} marked as {}", ids.join(", "), a.status),
                    author: "user".into(),
                }),
                None,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut changes = crate::emit::Changes::new(&feat.root);
    changes.replace(&tasks_md, &text, lines.join("\n"));
    let deliveries = changes.commit(&ctx.emitter, &envs, &mut ctx.warner())?;
    drop(guard);
    if lane_move::auto_commit(&ctx, a.commit.flag()) {
        let message = if updated.len() == 1 {
            format!(
                "chore: Mark {} as {} on spec {}",
                updated[0],
                a.status,
                feat.number()
            )
        } else {
            format!(
                "chore: Mark {} subtasks as {} on spec {}",
                updated.len(),
                a.status,
                feat.number()
            )
        };
        lane_move::commit(&ctx, std::slice::from_ref(&tasks_md), &message);
    }
    if !not_found.is_empty() {
        out.warn(&format!("Not found: {}", not_found.join(", ")));
    }
    if updated.len() == 1 {
        out.line(&format!(
            "{} Marked {} as {}",
            out.green("✓"),
            updated[0],
            a.status
        ));
    } else {
        out.line(&format!(
            "{} Marked {} subtasks as {}: {}",
            out.green("✓"),
            updated.len(),
            a.status,
            updated.join(", ")
        ));
    }
    out.json(&serde_json::json!({
        "result": "success",
        "updated": updated,
        "not_found": not_found,
        "status": a.status,
        "count": updated.len(),
        "events": events_json(&envs, &deliveries),
    }));
    Ok(())
}

/// A checkbox line (`-` then `[ ]` or `[x]`, spaces allowed between, as
/// 2.1.3's pattern): the byte offset of its `-` and the text after `]`.
fn checkbox(line: &str) -> Option<(usize, &str)> {
    let mut search = 0;
    while let Some(off) = line[search..].find('-') {
        let start = search + off;
        let rest = line[start + 1..].trim_start();
        if let Some(r) = rest.strip_prefix('[') {
            let r = r.trim_start_matches(' ');
            let r = r.strip_prefix('x').unwrap_or(r);
            let r = r.trim_start_matches(' ');
            if let Some(after) = r.strip_prefix(']') {
                return Some((start, after));
            }
        }
        search = start + 1;
    }
    None
}

/// `text` (after blanks) starts with `word` followed by a non-word char.
fn starts_with_word(text: &str, word: &str) -> bool {
    text.trim_start()
        .strip_prefix(word)
        .is_some_and(|r| !r.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
}

/// The WP of the nearest `## ...WPnn...` heading above.
fn section_wp(above: &[String]) -> Option<String> {
    above
        .iter()
        .rev()
        .filter(|l| l.starts_with("##"))
        .find_map(|l| {
            l.match_indices("WP")
                .map(|(i, _)| l.get(i..i + 4).unwrap_or(""))
                .find(|id| is_wp_id(id))
                .map(str::to_string)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkboxes_and_sections() {
        assert_eq!(checkbox("- [ ] T001 x").map(|c| c.1), Some(" T001 x"));
        assert_eq!(checkbox("  -  [x] T002").map(|c| c.0), Some(2));
        assert!(checkbox("- T003").is_none());
        assert!(starts_with_word(" T001 do", "T001"));
        assert!(!starts_with_word(" T0010", "T001"));
        let above: Vec<String> = ["# Tasks", "## Work Package WP02: B", "- [ ] T004"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(section_wp(&above).as_deref(), Some("WP02"));
    }
}
