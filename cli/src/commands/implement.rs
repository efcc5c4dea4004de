//! `spec-kitty implement WP01 [--agent NAME] [--no-worktree]`: start a
//! work package. Like spec-kitty 2.x: a git worktree `.worktrees/<feature>-WPnn`
//! on branch `<feature>-WPnn` (from the current HEAD), lane planned → doing
//! with a history entry, then exactly ONE WPStatusChanged (planned →
//! in_progress on the wire) and, with `--agent`, one WPAssigned caused by it.
//! A WP already in doing only gets its worktree ensured (no event).

use super::lane_move::{history_agent, move_lane, LaneMove};
use super::{rel, Ctx};
use crate::cli::ImplementArgs;
use crate::emit::{events_json, Changes};
use crate::error::CliError;
use crate::feature;
use crate::fsutil;
use crate::output::Out;
use crate::wpfile::{self, WpFile};
use spec_kitty_protocol::envelope::{Payload, WpAssigned};
use spec_kitty_protocol::Lane;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn run(out: &Out, a: ImplementArgs) -> Result<(), CliError> {
    feature::check_wp_id(&a.wp_id)?;
    if let Some(agent) = &a.agent {
        if agent.trim().is_empty() {
            return Err(CliError::invalid("--agent must not be empty"));
        }
    }
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let path = feature::find_wp(&feat, &a.wp_id)?;
    let _lock = fsutil::lock_path(&path).map_err(|e| CliError::io_at("lock", &path, &e))?;
    let wp = WpFile::read(&path)?;
    let from = wp.meta.lane;
    if !matches!(from, Lane::Planned | Lane::InProgress) {
        return Err(CliError::refused(format!(
            "{} is in {} ({}); implement starts work packages that are planned. Use `spec-kitty agent tasks move-task {} --to doing` to reopen it.",
            a.wp_id,
            wpfile::lane_for_file(from),
            rel(&ctx, &path),
            a.wp_id
        )));
    }
    let branch = format!("{}-{}", feat.slug, a.wp_id);
    let worktree = if a.no_worktree || ctx.project.git_root.is_none() {
        None
    } else {
        Some(ensure_worktree(&ctx.project.root, &branch)?)
    };
    let mut envs = Vec::new();
    let mut changes = Changes::new(&ctx.project.root);
    if from == Lane::Planned {
        let actor = a.agent.clone().unwrap_or_else(|| "user".to_string());
        let (status, new_text) = move_lane(
            &ctx.emitter,
            LaneMove {
                wp: &wp,
                wp_id: &a.wp_id,
                feature_slug: &feat.slug,
                to: Lane::InProgress,
                actor,
                agent: history_agent(a.agent.as_deref(), &wp),
                shell_pid: std::os::unix::process::parent_id().to_string(),
                action: match &worktree {
                    Some(w) => format!("Started implementation in {}", rel(&ctx, w)),
                    None => "Started implementation".into(),
                },
                timestamp: wpfile::file_timestamp(),
                forced: None,
            },
        )?;
        if let Some(agent) = &a.agent {
            let assigned = ctx.emitter.build(
                &Payload::WPAssigned(WpAssigned {
                    wp_id: a.wp_id.clone(),
                    agent_id: agent.trim().to_string(),
                    phase: "implementation".into(),
                    retry_count: 0,
                }),
                Some(status.event_id.clone()),
            )?;
            envs.push(status);
            envs.push(assigned);
        } else {
            envs.push(status);
        }
        changes.replace(&path, &wp.text, new_text);
    }
    let deliveries = changes.commit(&ctx.emitter, &envs, &mut ctx.warner())?;
    if from == Lane::Planned {
        out.line(&format!(
            "{} {} moved to doing",
            out.green("✓"),
            out.bold(&a.wp_id)
        ));
    } else {
        out.line(&format!("{} is already in doing", a.wp_id));
    }
    if let Some(w) = &worktree {
        out.line(&format!(
            "  workspace: {} (branch {})",
            rel(&ctx, w),
            out.cyan(&branch)
        ));
    }
    out.json(&serde_json::json!({
        "result": "success",
        "wp_id": a.wp_id,
        "feature": feat.slug,
        "workspace": worktree.as_ref().map(|w| rel(&ctx, w)),
        "branch": worktree.as_ref().map(|_| branch.clone()),
        "lane": "doing",
        "events": events_json(&envs, &deliveries),
    }));
    Ok(())
}

/// `git worktree add` for `.worktrees/<branch>` on `<branch>` (created
/// from HEAD, or reused when it exists). An existing worktree is reused.
fn ensure_worktree(root: &Path, branch: &str) -> Result<PathBuf, CliError> {
    let dir = root.join(".worktrees").join(branch);
    if dir.join(".git").exists() {
        return Ok(dir);
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .map_err(|e| CliError::io(format!("cannot run git in {}: {e}", root.display())))
    };
    let exists = git(&[
        "show-ref",
        "--verify",
        "--quiet",
        &format!("refs/heads/{branch}"),
    ])?
    .status
    .success();
    let dir_s = dir.to_string_lossy().into_owned();
    let o = if exists {
        git(&["worktree", "add", "-q", &dir_s, branch])?
    } else {
        git(&["worktree", "add", "-q", "-b", branch, &dir_s])?
    };
    if !o.status.success() {
        return Err(CliError::io(format!(
            "git worktree add {} failed: {} (use --no-worktree to skip the workspace)",
            dir.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(dir)
}
