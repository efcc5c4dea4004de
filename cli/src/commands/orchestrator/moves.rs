//! The subcommands that change a work package: `start-implementation`,
//! `start-review`, `transition` (lane moves through the one status write
//! path, one wire event each; like 2.1.3 they are not committed) and
//! `append-history` (a line in the WP file, committed as 2.1.3 commits it,
//! and one `HistoryAdded`).

use super::envelope::{parse_policy, J};
use super::{resolve_feature, resolve_wp, Answer, Fail};
use crate::cli::OrchestratorWp;
use crate::commands::lane_move::{self, Failure};
use crate::commands::Ctx;
use crate::emit::Changes;
use crate::error::Kind;
use crate::feature::Feature;
use crate::fsutil;
use crate::identity::EnsureOpts;
use crate::output::Out;
use crate::project::Project;
use crate::status::{log, store};
use serde_json::Value;
use spec_kitty_protocol::envelope::{HistoryAdded, Payload};
use spec_kitty_protocol::Lane;
use std::path::Path;

/// Lanes whose moves need `--policy` (2.1.3's `_RUN_AFFECTING_LANES`).
const RUN_AFFECTING: [Lane; 3] = [Lane::Claimed, Lane::InProgress, Lane::ForReview];

fn policy_failed(message: String) -> Fail {
    Fail::new("POLICY_VALIDATION_FAILED", &message)
}

/// The context for writing (identity, emitter) in `project`.
pub(super) fn open_ctx(project: &Project) -> Result<Ctx, Fail> {
    let cwd = crate::project::cwd().map_err(|e| Fail::internal(&e))?;
    Ctx::for_project(&Out::new(true), cwd, project.clone(), EnsureOpts::default())
        .map_err(|e| Fail::internal(&e))
}

/// The lane the log gives `wp` (planned when it has none).
fn current_lane(feat: &Feature, wp: &str) -> Result<Lane, Fail> {
    let snap = store::snapshot(feat).map_err(|e| Fail::internal(&e))?;
    Ok(snap.work_packages.get(wp).map_or(Lane::Planned, |s| s.lane))
}

/// A move of `t.wp` to `to` by `t.actor`, as 2.1.3's orchestrator emits it
/// (worktree execution mode, the policy when given).
fn move_of(t: &OrchestratorWp, to: Lane, policy: Option<&Value>) -> store::Move {
    store::Move {
        wp_id: t.wp.clone(),
        to: Some(to),
        actor: t.actor.clone(),
        execution_mode: "worktree".into(),
        policy_metadata: policy.cloned(),
        ..store::Move::default()
    }
}

/// One move through [`lane_move::apply`]; a refusal is 2.1.3's
/// TRANSITION_REJECTED with its message.
fn step(ctx: &Ctx, feat: &Feature, mv: &store::Move) -> Result<(), Fail> {
    let keep = |_: &crate::wpfile::WpFile, _: Lane, t: &str| Ok(t.to_string());
    match lane_move::apply(ctx, feat, mv, &keep, &|_| Ok(Vec::new()), None) {
        Ok(_) => Ok(()),
        // 2.1.3's matrix has no same-lane move.
        Err(Failure::Unchanged(l)) => Err(Fail::new(
            "TRANSITION_REJECTED",
            &format!("Illegal transition: {} -> {}", l.as_wire(), l.as_wire()),
        )),
        Err(Failure::Error(e)) if e.kind == Kind::Refused => Err(Fail::new(
            "TRANSITION_REJECTED",
            refusal_text(&mv.wp_id, &e.message),
        )),
        Err(Failure::Error(e)) => Err(Fail::internal(&e)),
    }
}

/// 2.1.3's own words of a refusal: [`lane_move::apply`] says
/// `<WP>: <message> (<what to do>)`.
fn refusal_text<'a>(wp: &str, message: &'a str) -> &'a str {
    let m = message
        .strip_prefix(wp)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(message);
    match (m.rfind(" ("), m.ends_with(')')) {
        (Some(i), true) => &m[..i],
        _ => m,
    }
}

/// The actor of the WP's last event in log order (2.1.3's
/// `_get_last_actor`).
fn last_actor(feat: &Feature, wp: &str) -> Result<Option<String>, Fail> {
    let events = log::read(&feat.dir).map_err(|e| Fail::new("INTERNAL_ERROR", &e.to_string()))?;
    Ok(events
        .into_iter()
        .rev()
        .find(|l| l.event.wp_id == wp)
        .map(|l| l.event.actor))
}

fn required_policy(command: &str, policy: Option<&str>) -> Result<Value, Fail> {
    match policy.filter(|p| !p.is_empty()) {
        None => Err(Fail::new(
            "POLICY_METADATA_REQUIRED",
            &format!("--policy is required for {command}"),
        )),
        Some(p) => parse_policy(p).map_err(policy_failed),
    }
}

fn path_text(p: &Path) -> String {
    p.display().to_string()
}

pub fn start_implementation(t: &OrchestratorWp, policy: Option<&str>) -> Answer {
    let policy = required_policy("start-implementation", policy)?;
    let (project, feat) = resolve_feature(&t.feature)?;
    let prompt = resolve_wp(&feat, &t.wp)?;
    let from = current_lane(&feat, &t.wp)?;
    let last = last_actor(&feat, &t.wp)?;
    let workspace = project
        .root
        .join(".worktrees")
        .join(format!("{}-{}", t.feature, t.wp));
    // Someone else's claim (2.1.3 compares with the WP's last event).
    let claimed_by_other = || match &last {
        Some(other) if *other != t.actor => Err(Fail {
            code: "WP_ALREADY_CLAIMED",
            data: J::O(vec![
                ("claimed_by", J::s(other)),
                ("requesting_actor", J::s(&t.actor)),
            ]),
        }),
        _ => Ok(()),
    };
    let start = store::Move {
        workspace_context: Some(path_text(&workspace)),
        ..move_of(t, Lane::InProgress, Some(&policy))
    };
    let no_op = match from {
        Lane::Planned => {
            let ctx = open_ctx(&project)?;
            step(&ctx, &feat, &move_of(t, Lane::Claimed, Some(&policy)))?;
            step(&ctx, &feat, &start)?;
            false
        }
        Lane::Claimed => {
            claimed_by_other()?;
            step(&open_ctx(&project)?, &feat, &start)?;
            false
        }
        Lane::InProgress => {
            claimed_by_other()?;
            true
        }
        other => {
            return Err(Fail::new(
                "TRANSITION_REJECTED",
                &format!(
                    "WP {} is in '{}', cannot start implementation",
                    t.wp,
                    other.as_wire()
                ),
            ))
        }
    };
    Ok(J::O(vec![
        ("feature_slug", J::s(&t.feature)),
        ("wp_id", J::s(&t.wp)),
        ("from_lane", J::s(from.as_wire())),
        ("to_lane", J::s(Lane::InProgress.as_wire())),
        ("workspace_path", J::s(&path_text(&workspace))),
        ("prompt_path", J::s(&path_text(&prompt))),
        ("policy_metadata_recorded", true.into()),
        ("no_op", no_op.into()),
    ]))
}

pub fn start_review(t: &OrchestratorWp, policy: Option<&str>, review_ref: Option<&str>) -> Answer {
    if policy.is_none_or(str::is_empty) {
        return Err(Fail::new(
            "POLICY_METADATA_REQUIRED",
            "--policy is required for start-review",
        ));
    }
    let Some(review_ref) = review_ref.filter(|r| !r.is_empty()) else {
        return Err(Fail::new(
            "TRANSITION_REJECTED",
            "--review-ref is required for start-review (for_review→in_progress guard)",
        ));
    };
    let policy = required_policy("start-review", policy)?;
    let (project, feat) = resolve_feature(&t.feature)?;
    let prompt = resolve_wp(&feat, &t.wp)?;
    let from = current_lane(&feat, &t.wp)?;
    let mv = store::Move {
        review_ref: Some(review_ref.to_string()),
        ..move_of(t, Lane::InProgress, Some(&policy))
    };
    step(&open_ctx(&project)?, &feat, &mv)?;
    Ok(J::O(vec![
        ("feature_slug", J::s(&t.feature)),
        ("wp_id", J::s(&t.wp)),
        ("from_lane", J::s(from.as_wire())),
        ("to_lane", J::s(Lane::InProgress.as_wire())),
        ("prompt_path", J::s(&path_text(&prompt))),
        ("policy_metadata_recorded", true.into()),
    ]))
}

pub struct TransitionArgs<'a> {
    pub target: &'a OrchestratorWp,
    pub to: &'a str,
    pub note: Option<&'a str>,
    pub policy: Option<&'a str>,
    pub force: bool,
    pub review_ref: Option<&'a str>,
}

pub fn transition(a: &TransitionArgs<'_>) -> Answer {
    let t = a.target;
    // 2.1.3's `resolve_lane_alias`: trimmed, lower case, doing = in_progress.
    let wanted = a.to.trim().to_lowercase();
    let to = Lane::parse(&wanted).ok();
    let wire: &str = match to {
        Some(l) => l.as_wire(),
        None => &wanted,
    };
    let given = a.policy.filter(|p| !p.is_empty());
    let policy = match (to, given) {
        (Some(l), None) if RUN_AFFECTING.contains(&l) => {
            return Err(Fail::new(
                "POLICY_METADATA_REQUIRED",
                &format!("--policy is required when transitioning to '{wire}'"),
            ))
        }
        (_, Some(p)) => Some(parse_policy(p).map_err(policy_failed)?),
        (_, None) => None,
    };
    let (project, feat) = resolve_feature(&t.feature)?;
    resolve_wp(&feat, &t.wp)?;
    let Some(to) = to else {
        return Err(Fail::new(
            "TRANSITION_REJECTED",
            &format!("Unknown lane: {wanted}"),
        ));
    };
    let from = current_lane(&feat, &t.wp)?;
    let mv = store::Move {
        force: a.force,
        reason: a.note.map(str::to_string),
        review_ref: a.review_ref.map(str::to_string),
        ..move_of(t, to, policy.as_ref())
    };
    step(&open_ctx(&project)?, &feat, &mv)?;
    Ok(J::O(vec![
        ("feature_slug", J::s(&t.feature)),
        ("wp_id", J::s(&t.wp)),
        ("from_lane", J::s(from.as_wire())),
        ("to_lane", J::s(to.as_wire())),
        ("policy_metadata_recorded", policy.is_some().into()),
    ]))
}

pub fn append_history(t: &OrchestratorWp, note: &str) -> Answer {
    let (slug, wp, actor) = (t.feature.as_str(), t.wp.as_str(), t.actor.as_str());
    let (project, feat) = resolve_feature(slug)?;
    let path = resolve_wp(&feat, wp)?;
    let ctx = open_ctx(&project)?;
    let _lock = fsutil::lock_path(&path)
        .map_err(|e| Fail::internal(&crate::error::CliError::io_at("lock", &path, &e)))?;
    let old = fsutil::read_repo_file(&feat.root, &path)
        .map_err(|e| Fail::internal(&e))?
        .unwrap_or_default();
    let old = String::from_utf8(old).map_err(|e| {
        Fail::new(
            "INTERNAL_ERROR",
            &format!(
                "{}: not UTF-8 text (byte {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let entry = format!("- [{}] {actor}: {note}", crate::wpfile::file_timestamp());
    let new = with_history_entry(&old, &entry);
    let env = ctx
        .emitter
        .build(
            &Payload::HistoryAdded(HistoryAdded {
                wp_id: wp.to_string(),
                entry_type: "note".into(),
                entry_content: note.to_string(),
                author: actor.to_string(),
            }),
            None,
        )
        .map_err(|e| Fail::internal(&e))?;
    let mut changes = Changes::new(&feat.root);
    changes.replace(&path, &old, new);
    changes
        .commit(&ctx.emitter, std::slice::from_ref(&env), &mut ctx.warner())
        .map_err(|e| Fail::internal(&e))?;
    // 2.1.3 commits this one whatever the auto-commit setting says.
    lane_move::commit(
        &ctx,
        &[path],
        &format!("hist: append activity log entry for {slug}/{wp}"),
    );
    Ok(J::O(vec![
        ("feature_slug", J::s(slug)),
        ("wp_id", J::s(wp)),
        (
            "history_entry_id",
            J::s(&format!("hist-{}", uuid::Uuid::new_v4().simple())),
        ),
    ]))
}

/// `text` with `entry` appended as 2.1.3's orchestrator appends it
/// (`tasks_support.split_frontmatter` → `append_activity_log` →
/// `build_document`): line endings become `\n`, the entry goes at the end
/// of the first `## Activity Log` section (made at the end when missing).
fn with_history_entry(text: &str, entry: &str) -> String {
    // A byte-order mark stays first (2.1.3 would put an empty frontmatter
    // before it and leave the real one in the body).
    if let Some(rest) = text.strip_prefix('\u{feff}') {
        return format!("\u{feff}{}", with_history_entry(rest, entry));
    }
    let normalized = text.replace("\r\n", "\n");
    let (front, body, padding) = match normalized
        .strip_prefix("---\n")
        .and_then(|_| normalized[4..].find("\n---").map(|i| i + 4))
    {
        Some(close) => {
            let tail = &normalized[close + 4..];
            let body = tail.trim_start_matches('\n');
            (
                Some(&normalized[4..close]),
                body,
                &tail[..tail.len() - body.len()],
            )
        }
        None => (None, normalized.as_str(), ""),
    };
    let body = append_activity_log(body, entry);
    let mut doc = format!("---\n{}\n---", front.unwrap_or("").trim_end_matches('\n'));
    if !padding.is_empty() || !body.is_empty() {
        doc.push_str(if padding.is_empty() { "\n" } else { padding });
    }
    doc.push_str(&body);
    if !doc.ends_with('\n') {
        doc.push('\n');
    }
    doc
}

fn append_activity_log(body: &str, entry: &str) -> String {
    const HEADER: &str = "## Activity Log";
    let Some(start) = body.find(HEADER) else {
        let block = format!("{HEADER}\n\n{entry}\n");
        return if !body.is_empty() && !body.ends_with("\n\n") {
            format!("{}\n\n{block}", body.trim_end())
        } else if body.is_empty() {
            block
        } else {
            format!("{body}\n{block}")
        };
    };
    let after = start + HEADER.len();
    let end = body[after..]
        .find("\n## ")
        .map_or(body.len(), |i| after + i);
    let section = body[start..end].trim_end();
    format!("{}{section}\n{entry}\n{}", &body[..start], &body[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_2_1_3s_words_only() {
        assert_eq!(
            refusal_text(
                "WP01",
                "WP01: Illegal transition: planned -> done (the lane graph does not allow it; --force --reason TEXT overrides)"
            ),
            "Illegal transition: planned -> done"
        );
        assert_eq!(
            refusal_text("WP01", "WP01: Transition to approved/done requires evidence (reviewer identity and approval reference) (give --reviewer)"),
            "Transition to approved/done requires evidence (reviewer identity and approval reference)"
        );
    }

    #[test]
    fn history_entries_go_where_2_1_3_puts_them() {
        let e = "- [T] a: n";
        assert_eq!(
            with_history_entry(
                "---\nx: 1\n---\n# T\n\n## Activity Log\n\n- old\n\n## Next\nz\n",
                e
            ),
            "---\nx: 1\n---\n# T\n\n## Activity Log\n\n- old\n- [T] a: n\n\n## Next\nz\n"
        );
        assert_eq!(
            with_history_entry("---\r\nx: 1\r\n---\r\n\r\n# T\r\n", e),
            "---\nx: 1\n---\n\n# T\n\n## Activity Log\n\n- [T] a: n\n"
        );
        assert_eq!(
            with_history_entry("\u{feff}---\nx: 1\n---\n## Activity Log\n", e),
            "\u{feff}---\nx: 1\n---\n## Activity Log\n- [T] a: n\n"
        );
        assert_eq!(
            with_history_entry("---\nx: 1\n---\n", e),
            "---\nx: 1\n---\n## Activity Log\n\n- [T] a: n\n"
        );
    }
}
