//! `spec-kitty agent tasks move-task WP01 --to LANE [flags]`: 2.1.3's
//! move-task on the status model (see [`crate::status::store`]).
//!
//! 2.1.3's checks, in its order: the agent owns the WP (or `--force`);
//! sending reviewed work back (for_review/approved → planned/in_progress)
//! needs a non-empty `--review-feedback-file` (persisted under the git
//! common dir, its `feedback://` pointer recorded as the event's
//! `review_ref`) — the matrix's review_ref guard; 2.1.3 also asks for it
//! to un-start in_progress work, where the matrix only wants a reason and
//! its own default reason satisfies that, so here it does not;
//! for_review/approved/done need the WP's subtasks
//! in `tasks.md` ticked (or `--force`); done needs the WP branch merged into
//! the current branch (or `--done-override-reason`); approved/done carry
//! review evidence (`--reviewer`, `--approval-ref`, with 2.1.3's defaults).
//! Where 2.1.3 walks a forward jump hop by hop and sends one event per hop
//! (plus a duplicate when it bootstraps), this records one event and sends
//! one `WPStatusChanged`.

use super::lane_move::{self, Failure};
use super::Ctx;
use crate::cli::MoveTaskArgs;
use crate::emit::events_json;
use crate::error::CliError;
use crate::feature;
use crate::gitmeta::GitDirs;
use crate::output::Out;
use crate::status::store::{self, Move};
use crate::status::{DoneEvidence, ReviewApproval};
use crate::wpfile::{self, WpFile};
use spec_kitty_protocol::Lane;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn run(out: &Out, a: MoveTaskArgs) -> Result<(), CliError> {
    feature::check_wp_id(&a.wp_id)?;
    let to = wpfile::parse_lane(&a.to).map_err(CliError::invalid)?;
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let path = feature::find_wp(&feat, &a.wp_id)?;
    let wp = WpFile::read(&path)?;
    let refuse = |message: String| {
        lane_move::log_error(&ctx, &message, Some(&a.wp_id), a.agent.as_deref());
        CliError::refused(message)
    };
    if let (Some(owner), Some(agent)) = (&wp.meta.agent, &a.agent) {
        if owner != agent && !a.force {
            return Err(refuse(format!(
                "Agent mismatch: {} is assigned to '{owner}', not '{agent}'. Use --force to override.",
                a.wp_id
            )));
        }
    }
    let feedback = match &a.review_feedback_file {
        Some(f) => Some(read_feedback(&ctx.cwd, f)?),
        None => None,
    };
    if matches!(to, Lane::ForReview | Lane::Approved | Lane::Done) && !a.force {
        let unticked = store::unticked_subtasks(&feat.dir, &a.wp_id);
        if !unticked.is_empty() {
            let mut m = format!(
                "Cannot move {} to {} - unchecked subtasks (guard: subtasks_complete):\n",
                a.wp_id,
                to.as_wire()
            );
            for t in &unticked {
                m.push_str(&format!("  - [ ] {t}\n"));
            }
            m.push_str(&format!(
                "Mark them done first: spec-kitty agent tasks mark-status {} --status done\nOr use --force to override",
                unticked.join(" ")
            ));
            return Err(refuse(m));
        }
    }
    let note = a.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let mut note_text = note.map(str::to_string);
    if to == Lane::Done {
        if let Err(why) = merged(&ctx.project.root, &feat.slug, &a.wp_id) {
            match a
                .done_override_reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
            {
                None => {
                    return Err(refuse(format!(
                        "Cannot move {id} to done without verified merge ancestry (guard: merge ancestry).\n{why}\nIf review just passed, move it to approved first:\n  spec-kitty agent tasks move-task {id} --to approved --note \"Review passed\"\nTo proceed anyway, give --done-override-reason \"<why this is acceptable>\".",
                        id = a.wp_id
                    )))
                }
                Some(r) => {
                    let o = format!("Done override: {r}");
                    note_text = Some(match note_text {
                        Some(n) => format!("{n} | {o}"),
                        None => o,
                    });
                }
            }
        }
    }
    // The reviewer: the flag, else the one the WP records (an approval's
    // reviewer carries over to done), else git's user (2.1.3's default).
    let recorded_reviewer = wp.scalar("reviewed_by");
    let reviewer = a
        .reviewer
        .clone()
        .filter(|r| !r.trim().is_empty())
        .or(recorded_reviewer)
        .or_else(|| {
            matches!(to, Lane::Approved | Lane::Done)
                .then(|| lane_move::git_user_name(&ctx.project.root))
        });
    let evidence = matches!(to, Lane::Approved | Lane::Done).then(|| DoneEvidence {
        review: ReviewApproval {
            reviewer: reviewer.clone().unwrap_or_default(),
            verdict: "approved".into(),
            reference: a
                .approval_ref
                .clone()
                .filter(|r| !r.trim().is_empty())
                .or_else(|| note.map(str::to_string))
                .unwrap_or_else(|| {
                    format!(
                        "auto-approval:{}:{}",
                        a.wp_id,
                        spec_kitty_protocol::time::now_utc()[..10].replace('-', "")
                    )
                }),
        },
        repos: vec![],
        verification: vec![],
    });
    let pointer = match &feedback {
        Some(src) if matches!(to, Lane::Planned | Lane::InProgress) => Some(persist_feedback(
            &ctx.project.root,
            &feat.slug,
            &a.wp_id,
            src,
        )?),
        _ => None,
    };
    let forced_review_ref = (a.force && matches!(to, Lane::InProgress | Lane::Planned))
        .then(|| "force-override".to_string());
    let reason = a
        .reason
        .clone()
        .filter(|r| !r.trim().is_empty())
        .or_else(|| note_text.clone())
        .or_else(|| a.force.then(|| format!("Force move to {}", to.as_wire())));
    let actor = a.agent.clone().unwrap_or_else(|| "user".into());
    let mv = Move {
        wp_id: a.wp_id.clone(),
        to: Some(to),
        actor: actor.clone(),
        force: a.force,
        reason,
        review_ref: pointer.clone().or(forced_review_ref),
        evidence,
        workspace_context: Some(format!("move-task:{}", ctx.project.root.display())),
        subtasks_complete: (!a.force).then_some(true),
        implementation_evidence_present: (!a.force).then_some(true),
        execution_mode: "worktree".into(),
        walk_forward: true,
        reason_default: true,
        ..Move::default()
    };
    let agent_name = a
        .agent
        .clone()
        .or_else(|| wp.meta.agent.clone())
        .unwrap_or_else(|| "unknown".into());
    let activity_note = note_text
        .clone()
        .unwrap_or_else(|| format!("Moved to {}", to.as_wire()));
    let edit = |w: &WpFile, _from: Lane, text: &str| -> Result<String, CliError> {
        let mut t = text.to_string();
        let mut set = |k: &str, v: &str| -> Result<(), CliError> {
            t = lane_move::set_scalar(&w.path, &t, k, v)?;
            Ok(())
        };
        set("lane", to.as_wire())?;
        if let Some(x) = &a.assignee {
            set("assignee", x)?;
        }
        if let Some(x) = &a.agent {
            set("agent", x)?;
        }
        if let Some(x) = &a.shell_pid {
            set("shell_pid", x)?;
        }
        if let Some(p) = &pointer {
            if to == Lane::Planned {
                set("review_status", "has_feedback")?;
                set(
                    "reviewed_by",
                    &reviewer
                        .clone()
                        .unwrap_or_else(|| lane_move::git_user_name(&ctx.project.root)),
                )?;
                set("review_feedback", p)?;
            }
        }
        if matches!(to, Lane::Approved | Lane::Done) {
            set("reviewed_by", reviewer.as_deref().unwrap_or("unknown"))?;
            set("review_status", "approved")?;
        }
        let shell = a
            .shell_pid
            .clone()
            .or_else(|| w.meta.shell_pid.clone())
            .unwrap_or_default();
        Ok(lane_move::with_activity(
            &t,
            &agent_name,
            &shell,
            to,
            &activity_note,
        ))
    };
    let commit = lane_move::auto_commit(&ctx, a.commit.flag());
    let message = |_: Lane| {
        let mut m = format!(
            "chore: Move {} to {} on spec {}",
            a.wp_id,
            to.as_wire(),
            feat.number()
        );
        if agent_name != "unknown" {
            m.push_str(&format!(" [{agent_name}]"));
        }
        m
    };
    let applied = match lane_move::apply(
        &ctx,
        &feat,
        &mv,
        &edit,
        &|_| Ok(Vec::new()),
        commit.then_some(&message as &dyn Fn(Lane) -> String),
    ) {
        Ok(x) => x,
        Err(Failure::Unchanged(l)) => {
            out.line(&format!(
                "{} is already in {}; nothing to do",
                a.wp_id,
                l.as_wire()
            ));
            out.json(&serde_json::json!({"result": "unchanged", "task_id": a.wp_id, "lane": l.as_wire(), "events": []}));
            return Ok(());
        }
        Err(Failure::Error(e)) => return Err(e),
    };
    out.line(&format!(
        "{} Moved {} from {} to {}{}",
        out.green("✓"),
        out.bold(&a.wp_id),
        applied.from.as_wire(),
        to.as_wire(),
        if a.force { " (forced)" } else { "" }
    ));
    if let Some(crate::gitcommit::Committed::Yes(_)) = &applied.committed {
        out.line(&out.cyan("→ Committed status change"));
    }
    let mut result = serde_json::json!({
        "result": "success",
        "task_id": a.wp_id,
        "old_lane": applied.from.as_wire(),
        "new_lane": to.as_wire(),
        "path": path.display().to_string(),
        "feature": feat.slug,
        "forced": a.force,
        "event_id": applied.event.event_id,
        "events": events_json(&applied.envs, &applied.deliveries),
    });
    if let Some(p) = &pointer {
        result["review_feedback"] = serde_json::json!(p);
    }
    out.json(&result);
    Ok(())
}

/// The feedback file, resolved against the current directory: it must be
/// a non-empty regular file.
fn read_feedback(cwd: &Path, f: &Path) -> Result<PathBuf, CliError> {
    let p = if f.is_absolute() {
        f.to_path_buf()
    } else {
        cwd.join(f)
    };
    let meta = std::fs::metadata(&p).map_err(|_| {
        CliError::invalid(format!("Review feedback file not found: {}", p.display()))
    })?;
    if !meta.is_file() {
        return Err(CliError::invalid(format!(
            "Review feedback path is not a file: {}",
            p.display()
        )));
    }
    let text = std::fs::read_to_string(&p).map_err(|e| CliError::io_at("read", &p, &e))?;
    if text.trim().is_empty() {
        return Err(CliError::invalid(format!(
            "Review feedback file is empty: {}",
            p.display()
        )));
    }
    Ok(p)
}

/// Copies the feedback to `<git common dir>/spec-kitty/feedback/<feature>/<WP>/`
/// as 2.1.3 does and returns its `feedback://` pointer.
fn persist_feedback(root: &Path, slug: &str, wp_id: &str, src: &Path) -> Result<String, CliError> {
    let common = GitDirs::of_worktree(root)
        .map(|d| d.common_dir)
        .unwrap_or_else(|| root.join(".git"));
    let dir = common
        .join("spec-kitty")
        .join("feedback")
        .join(slug)
        .join(wp_id);
    std::fs::create_dir_all(&dir).map_err(|e| CliError::io_at("create", &dir, &e))?;
    let now = spec_kitty_protocol::time::now_utc();
    let stamp = format!(
        "{}{}{}T{}{}{}Z",
        &now[0..4],
        &now[5..7],
        &now[8..10],
        &now[11..13],
        &now[14..16],
        &now[17..19]
    );
    let id = spec_kitty_protocol::identity::new_ulid().to_ascii_lowercase();
    let suffix = src
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_else(|| ".md".into());
    let name = format!("{stamp}-{}{suffix}", &id[id.len() - 8..]);
    let bytes = std::fs::read(src).map_err(|e| CliError::io_at("read", src, &e))?;
    let dest = dir.join(&name);
    crate::fsutil::write_atomic(&dest, &bytes).map_err(|e| CliError::io_at("write", &dest, &e))?;
    Ok(format!("feedback://{slug}/{wp_id}/{name}"))
}

/// 2.1.3's merge-ancestry check: the branch `<feature>-<WP>` exists and
/// its tip is reachable from HEAD.
fn merged(root: &Path, slug: &str, wp_id: &str) -> Result<(), String> {
    let branch = format!("{slug}-{wp_id}");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !git(&["rev-parse", "--verify", "--quiet", &branch]) {
        return Err(format!(
            "Cannot verify merge ancestry: branch '{branch}' not found."
        ));
    }
    if git(&["merge-base", "--is-ancestor", &branch, "HEAD"]) {
        Ok(())
    } else {
        Err(format!(
            "Merge ancestry check failed: {branch} is not merged into the current branch."
        ))
    }
}
