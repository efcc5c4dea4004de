//! Command lines and lane views that tests of every crate share: the same
//! `agent tasks …` invocations run under our CLI and under 2.1.3's, and the
//! same lanes are read back from the events or the WP files either one
//! wrote. Built once here so a test says which move it makes, not how it is
//! spelled.

use spec_kitty_protocol::envelope::EventEnvelope;

/// `init --here --ai claude --force --non-interactive --ignore-agent-tools`:
/// a project set up in the current directory, no prompts, no agent tool
/// check, as both CLIs accept it.
pub const INIT_CLAUDE_HERE: [&str; 7] = [
    "init",
    "--here",
    "--ai",
    "claude",
    "--force",
    "--non-interactive",
    "--ignore-agent-tools",
];

/// `agent tasks move-task WP --to LANE`, then `extra` (flags of the move).
pub fn move_task<'a>(wp: &'a str, to: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["agent", "tasks", "move-task", wp, "--to", to];
    args.extend_from_slice(extra);
    args
}

/// [`move_task`] to `approved` with the review evidence both CLIs require
/// there (`--reviewer`, `--approval-ref`), then `extra`.
pub fn approve<'a>(
    wp: &'a str,
    reviewer: &'a str,
    reference: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = move_task(
        wp,
        "approved",
        &["--reviewer", reviewer, "--approval-ref", reference],
    );
    args.extend_from_slice(extra);
    args
}

/// `agent tasks mark-status TASK… --status STATUS`, then `extra`.
pub fn mark_status<'a>(tasks: &[&'a str], status: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["agent", "tasks", "mark-status"];
    args.extend_from_slice(tasks);
    args.extend_from_slice(&["--status", status]);
    args.extend_from_slice(extra);
    args
}

/// `agent tasks add-history WP --note NOTE`, then `extra`.
pub fn add_history<'a>(wp: &'a str, note: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["agent", "tasks", "add-history", wp, "--note", note];
    args.extend_from_slice(extra);
    args
}

/// `auth login --server BASE -u USER --password-stdin` (the password goes
/// on stdin).
pub fn login<'a>(base: &'a str, user: &'a str) -> Vec<&'a str> {
    vec![
        "auth",
        "login",
        "--server",
        base,
        "-u",
        user,
        "--password-stdin",
    ]
}

/// The lane moves among `events`, in their order: `[wp_id, from_lane,
/// to_lane]` of each `WPStatusChanged` (a missing lane reads as ""); other
/// events are left out.
pub fn lane_moves(events: &[EventEnvelope]) -> Vec<[String; 3]> {
    events
        .iter()
        .filter(|e| e.event_type == "WPStatusChanged")
        .map(|e| {
            ["wp_id", "from_lane", "to_lane"]
                .map(|k| e.payload[k].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// The `lane:` of a WP file's frontmatter as written (2.1.3's `doing`
/// included), without quotes or a trailing `# comment`; `None` when the
/// frontmatter has no lane.
pub fn frontmatter_lane(text: &str) -> Option<String> {
    text.lines()
        .skip(1)
        .take_while(|l| *l != "---")
        .find_map(|l| l.strip_prefix("lane:"))
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches(['"', '\''])
                .to_string()
        })
}
