//! `spec-kitty agent tasks move-task WP01 --to LANE [--force --reason R]`:
//! exactly one WPStatusChanged per move.
//!
//! spec-kitty 2.1.3 walks intermediate lanes and re-emits
//! planned→in_progress before in_progress→for_review; one command is one
//! state change here, and a transition outside the lane graph is refused
//! unless forced with a reason (recorded in the event's `force`/`reason`).
//! The file edit is the lane value plus one history entry, under a lock on
//! the WP file so parallel agents serialise.

use super::lane_move::{history_agent, move_lane, LaneMove};
use super::{rel, Ctx};
use crate::cli::MoveTaskArgs;
use crate::emit::{events_json, Changes};
use crate::error::CliError;
use crate::feature;
use crate::fsutil;
use crate::output::Out;
use crate::wpfile::{self, WpFile};
use spec_kitty_protocol::Lane;

/// The lane graph: which single moves are allowed without `--force`.
pub fn allowed(from: Lane, to: Lane) -> bool {
    use Lane::*;
    matches!(
        (from, to),
        (Planned, Claimed | InProgress | Blocked | Canceled)
            | (Claimed, InProgress | Planned | Blocked | Canceled)
            | (
                InProgress,
                ForReview | Approved | Planned | Blocked | Canceled
            )
            | (
                ForReview,
                Approved | Done | InProgress | Planned | Blocked | Canceled
            )
            | (Approved, Done | InProgress | Planned | Blocked | Canceled)
            | (Blocked, InProgress | Planned | Canceled)
    )
}

/// Lanes reachable from `from` in one allowed move, as users write them.
pub fn allowed_targets(from: Lane) -> Vec<&'static str> {
    Lane::ALL
        .into_iter()
        .filter(|to| allowed(from, *to))
        .map(wpfile::lane_for_file)
        .collect()
}

pub fn run(out: &Out, a: MoveTaskArgs) -> Result<(), CliError> {
    feature::check_wp_id(&a.wp_id)?;
    let to = wpfile::parse_lane(&a.to).map_err(CliError::invalid)?;
    if a.force && a.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(CliError::invalid(
            "--force needs a non-empty --reason saying why",
        ));
    }
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let path = feature::find_wp(&feat, &a.wp_id)?;
    let _lock = fsutil::lock_path(&path).map_err(|e| CliError::io_at("lock", &path, &e))?;
    let wp = WpFile::read(&path)?;
    let from = wp.meta.lane;
    if from == to {
        out.line(&format!(
            "{} is already in {}; nothing to do",
            a.wp_id,
            wpfile::lane_for_file(to)
        ));
        out.json(&serde_json::json!({"result": "unchanged", "task_id": a.wp_id, "lane": wpfile::lane_for_file(to), "events": []}));
        return Ok(());
    }
    if !allowed(from, to) && !a.force {
        let targets = allowed_targets(from);
        return Err(CliError::refused(format!(
            "{} cannot move from {} to {} ({}): the lane graph allows {} → {}. Use --force --reason TEXT to override.",
            a.wp_id,
            wpfile::lane_for_file(from),
            wpfile::lane_for_file(to),
            rel(&ctx, &path),
            wpfile::lane_for_file(from),
            if targets.is_empty() { "nothing (terminal lane)".to_string() } else { targets.join(", ") }
        )));
    }
    let actor = a.agent.clone().unwrap_or_else(|| "user".to_string());
    let reason = a.reason.as_ref().map(|r| r.trim().to_string());
    let action = match (&a.note, a.force, &reason) {
        (Some(n), _, _) if !n.trim().is_empty() => n.trim().to_string(),
        (_, true, Some(r)) => format!("Forced move to {}: {r}", wpfile::lane_for_file(to)),
        _ => format!("Moved to {}", wpfile::lane_for_file(to)),
    };
    let (env, new_text) = move_lane(
        &ctx.emitter,
        LaneMove {
            wp: &wp,
            wp_id: &a.wp_id,
            feature_slug: &feat.slug,
            to,
            actor,
            agent: history_agent(a.agent.as_deref(), &wp),
            shell_pid: a.shell_pid.clone().unwrap_or_default(),
            action,
            timestamp: wpfile::file_timestamp(),
            forced: if a.force { reason } else { None },
        },
    )?;
    let mut changes = Changes::new(&ctx.project.root);
    changes.replace(&path, &wp.text, new_text);
    let deliveries = changes.commit(&ctx.emitter, std::slice::from_ref(&env), &mut ctx.warner())?;
    out.line(&format!(
        "{} Moved {} from {} to {}{}",
        out.green("✓"),
        out.bold(&a.wp_id),
        wpfile::lane_for_file(from),
        wpfile::lane_for_file(to),
        if a.force { " (forced)" } else { "" }
    ));
    out.json(&serde_json::json!({
        "result": "success",
        "task_id": a.wp_id,
        "feature": feat.slug,
        "old_lane": wpfile::lane_for_file(from),
        "new_lane": wpfile::lane_for_file(to),
        "forced": a.force,
        "path": path.display().to_string(),
        "events": events_json(&[env], &deliveries),
    }));
    Ok(())
}
