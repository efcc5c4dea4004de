//! Views derived from the snapshot that are plain text: the generated
//! "Canonical Status" block at the end of `tasks.md`.
//!
//! 2.1.3 (`status/legacy_bridge.py`) replaces the text between
//! `<!-- status-model:start -->` and `<!-- status-model:end -->` (or
//! appends the block after one blank line), normalising the whitespace
//! around it. We produce the same bytes, so rewriting the block after the
//! other CLI did is a no-op in git. Everything outside the block,
//! subtask checkboxes included, is left as it was.

use super::reducer::Snapshot;

pub const BLOCK_START: &str = "<!-- status-model:start -->";
pub const BLOCK_END: &str = "<!-- status-model:end -->";

/// The generated block, without a trailing newline.
pub fn status_block(snapshot: &Snapshot) -> String {
    let mut lines = vec![
        BLOCK_START.to_string(),
        "## Canonical Status (Generated)".to_string(),
    ];
    for (wp_id, state) in &snapshot.work_packages {
        lines.push(format!("- {wp_id}: {}", state.lane.as_wire()));
    }
    lines.push(BLOCK_END.to_string());
    lines.join("\n")
}

/// `content` of `tasks.md` with the block replaced or appended.
pub fn with_status_block(content: &str, snapshot: &Snapshot) -> String {
    let block = status_block(snapshot);
    let start = content.find(BLOCK_START);
    let end = content[start.unwrap_or(0)..]
        .find(BLOCK_END)
        .map(|i| i + start.unwrap_or(0));
    if let (Some(start), Some(end)) = (start, end) {
        let before = py_rstrip(&content[..start]);
        let after = content[end + BLOCK_END.len()..].trim_start_matches('\n');
        let mut rebuilt = before.to_string();
        if !rebuilt.is_empty() {
            rebuilt.push_str("\n\n");
        }
        rebuilt.push_str(&block);
        if !after.is_empty() {
            rebuilt.push_str("\n\n");
            rebuilt.push_str(after);
        }
        if !rebuilt.ends_with('\n') {
            rebuilt.push('\n');
        }
        return rebuilt;
    }
    if py_rstrip(content).is_empty() {
        return block + "\n";
    }
    format!("{}\n\n{block}\n", py_rstrip(content))
}

/// Python's `str.rstrip()`: Unicode white space plus the four ASCII
/// separators (U+001C..U+001F) that Python also counts as space.
fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::reducer::{Snapshot, WpState};
    use spec_kitty_protocol::Lane;

    fn snap(lanes: &[(&str, Lane)]) -> Snapshot {
        Snapshot {
            feature_slug: "001-demo".into(),
            event_count: lanes.len(),
            last_event_id: None,
            work_packages: lanes
                .iter()
                .map(|(id, lane)| {
                    (
                        id.to_string(),
                        WpState {
                            lane: *lane,
                            actor: "a".into(),
                            last_transition_at: "t".into(),
                            last_event_id: "e".into(),
                            force_count: 0,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn the_block_is_appended_once_then_replaced_in_place() {
        let tasks = "# Tasks\n\n## WP01\n- [ ] T001 do it\n\n\n";
        let once = with_status_block(
            tasks,
            &snap(&[("WP02", Lane::Planned), ("WP01", Lane::InProgress)]),
        );
        assert_eq!(
            once,
            "# Tasks\n\n## WP01\n- [ ] T001 do it\n\n<!-- status-model:start -->\n## Canonical Status (Generated)\n- WP01: in_progress\n- WP02: planned\n<!-- status-model:end -->\n"
        );
        let with_tail = once.replace(
            "<!-- status-model:end -->\n",
            "<!-- status-model:end -->\n\n\nNotes after.\n",
        );
        let twice = with_status_block(&with_tail, &snap(&[("WP01", Lane::Done)]));
        assert_eq!(
            twice,
            "# Tasks\n\n## WP01\n- [ ] T001 do it\n\n<!-- status-model:start -->\n## Canonical Status (Generated)\n- WP01: done\n<!-- status-model:end -->\n\nNotes after.\n"
        );
        assert_eq!(
            with_status_block(&twice, &snap(&[("WP01", Lane::Done)])),
            twice,
            "stable"
        );
        assert_eq!(
            with_status_block(" \n", &snap(&[])),
            format!("{}\n", status_block(&snap(&[])))
        );
    }
}
