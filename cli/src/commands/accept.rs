//! `spec-kitty accept [--feature F]`: every WP in for_review or approved → done.
//!
//! Events, in order: one WPStatusChanged per moved WP; one
//! DependencyResolved(completed) per (WP, dependency) pair whose dependency
//! just became done, caused by that dependency's status event; one
//! FeatureCompleted. The acceptance is recorded in `meta.json`
//! (`accepted_at`) so running it again emits nothing.
//!
//! Not ready (a WP still planned, claimed, doing or blocked): the blockers
//! are listed, one ErrorLogged is emitted, the exit code is non-zero, and
//! no file changes. The feature lock and every WP file lock are held
//! throughout, so no lane can change between the check and the writes.

use super::lane_move::{self, Failure};
use super::{rel, Ctx};
use crate::cli::AcceptArgs;
use crate::emit::{events_json, Changes};
use crate::error::CliError;
use crate::feature;
use crate::output::Out;
use crate::status::store::{self, Move};
use crate::status::{DoneEvidence, ReviewApproval};
use crate::wpfile::WpFile;
use spec_kitty_protocol::envelope::{DependencyResolved, ErrorLogged, FeatureCompleted, Payload};
use spec_kitty_protocol::Lane;

pub fn run(out: &Out, a: AcceptArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let _feature_lock = feature::lock_feature(&feat)?;
    let paths = feature::wp_paths(&feat)?;
    let wps: Vec<WpFile> = paths
        .iter()
        .map(|p| WpFile::read(p))
        .collect::<Result<_, _>>()?;
    let (meta_text, meta) = feature::read_meta(&feat)?;
    // The lanes are the model's (the log, and the frontmatter of WPs it
    // does not know yet), read without writing.
    let snap = store::snapshot(&feat)?;
    let lane_of = |w: &WpFile| {
        snap.work_packages
            .get(&w.meta.wp_id)
            .map_or(w.meta.lane, |s| s.lane)
    };

    let blockers: Vec<&WpFile> = wps
        .iter()
        .filter(|w| {
            matches!(
                lane_of(w),
                Lane::Planned | Lane::Claimed | Lane::InProgress | Lane::Blocked
            )
        })
        .collect();
    if wps.is_empty() || !blockers.is_empty() {
        let list: Vec<String> = blockers
            .iter()
            .map(|w| {
                format!(
                    "{} ({}, {})",
                    w.meta.wp_id,
                    lane_of(w).as_user(),
                    rel(&ctx, &w.path)
                )
            })
            .collect();
        let message = if wps.is_empty() {
            format!(
                "feature {} is not ready to accept: it has no work packages in {}",
                feat.slug,
                rel(&ctx, &feat.tasks_dir())
            )
        } else {
            format!(
                "feature {} is not ready to accept: {} work package(s) not in for_review, approved or done:\n  {}",
                feat.slug,
                list.len(),
                list.join("\n  ")
            )
        };
        let env = ctx.emitter.build(
            &Payload::ErrorLogged(ErrorLogged {
                error_type: "validation".into(),
                error_message: message.clone(),
                wp_id: None,
                stack_trace: None,
                agent_id: None,
            }),
            None,
        )?;
        if let Err(e) = ctx
            .emitter
            .deliver_all(std::slice::from_ref(&env), &mut ctx.warner())
        {
            out.warn(&format!("could not record the error event: {}", e.message));
        }
        return Err(CliError::refused(message));
    }

    let to_move: Vec<&WpFile> = wps
        .iter()
        .filter(|w| matches!(lane_of(w), Lane::ForReview | Lane::Approved))
        .collect();
    let already = meta.get("accepted_at").is_some_and(|v| !v.is_null());
    if to_move.is_empty() && already {
        out.line(&format!(
            "Feature {} was already accepted; nothing to do",
            feat.slug
        ));
        out.json(&serde_json::json!({"result": "unchanged", "feature": feat.slug, "events": []}));
        return Ok(());
    }

    let mut envs = Vec::new();
    let mut deliveries = Vec::new();
    let mut changes = Changes::new(&ctx.project.root);
    let mut status_event_of = std::collections::HashMap::new();
    let mut committed_files = Vec::new();
    for w in &to_move {
        // The done guard wants review evidence: the reviewer the WP
        // records, else the user, and this acceptance as the reference.
        let reviewer = w.scalar("reviewed_by").unwrap_or_else(|| "user".into());
        let mv = Move {
            wp_id: w.meta.wp_id.clone(),
            to: Some(Lane::Done),
            actor: "user".into(),
            reason: Some("Accepted via spec-kitty accept".into()),
            evidence: Some(DoneEvidence {
                review: ReviewApproval {
                    reviewer: reviewer.clone(),
                    verdict: "approved".into(),
                    reference: format!("accept:{}", feat.slug),
                },
                repos: vec![],
                verification: vec![],
            }),
            execution_mode: "worktree".into(),
            ..Move::default()
        };
        let edit = |w: &WpFile, _: Lane, text: &str| -> Result<String, CliError> {
            let mut t = lane_move::set_scalar(&w.path, text, "reviewed_by", &reviewer)?;
            t = lane_move::set_scalar(&w.path, &t, "review_status", "approved")?;
            let shell = w.meta.shell_pid.clone().unwrap_or_default();
            Ok(lane_move::with_activity(
                &t,
                "user",
                &shell,
                Lane::Done,
                "Accepted via spec-kitty accept",
            ))
        };
        let applied = match lane_move::apply(&ctx, &feat, &mv, &edit, &|_| Ok(Vec::new()), None) {
            Ok(x) => x,
            Err(Failure::Unchanged(_)) => continue,
            Err(Failure::Error(e)) => return Err(e),
        };
        committed_files.push(w.path.clone());
        status_event_of.insert(w.meta.wp_id.clone(), applied.envs[0].event_id.clone());
        envs.extend(applied.envs);
        deliveries.extend(applied.deliveries);
    }
    let mut follow = Vec::new();
    for w in &wps {
        for dep in &w.meta.dependencies {
            if let Some(cause) = status_event_of.get(dep) {
                follow.push(ctx.emitter.build(
                    &Payload::DependencyResolved(DependencyResolved {
                        wp_id: w.meta.wp_id.clone(),
                        dependency_wp_id: dep.clone(),
                        resolution_type: "completed".into(),
                    }),
                    Some(cause.clone()),
                )?);
            }
        }
    }
    let completed_at = spec_kitty_protocol::time::now_utc();
    follow.push(ctx.emitter.build(
        &Payload::FeatureCompleted(FeatureCompleted {
            feature_slug: feat.slug.clone(),
            total_wps: wps.len() as u64,
            completed_at: Some(completed_at.clone()),
            total_duration: None,
        }),
        None,
    )?);
    let new_meta = feature::meta_with(
        &feat,
        &meta_text,
        "accepted_at",
        serde_json::json!(completed_at),
    )?;
    if meta_text.is_empty() {
        changes.create(&feat.meta_path(), new_meta);
    } else {
        changes.replace(&feat.meta_path(), &meta_text, new_meta);
    }
    deliveries.extend(changes.commit(&ctx.emitter, &follow, &mut ctx.warner())?);
    envs.extend(follow);
    // The acceptance record in meta.json is committed even when `merge`
    // already moved every WP to done (nothing left to move here).
    if lane_move::auto_commit(&ctx, None) {
        let mut files = committed_files;
        for f in [
            "status.events.jsonl",
            "status.json",
            "tasks.md",
            "meta.json",
        ] {
            files.push(feat.dir.join(f));
        }
        lane_move::commit(
            &ctx,
            &files,
            &format!("chore: Accept feature {}", feat.slug),
        );
    }
    let moved: Vec<String> = to_move.iter().map(|w| w.meta.wp_id.clone()).collect();
    out.line(&format!(
        "{} Accepted feature {}: {} work package(s) moved to done{}",
        out.green("✓"),
        out.bold(&feat.slug),
        moved.len(),
        if moved.is_empty() {
            String::new()
        } else {
            format!(" ({})", moved.join(", "))
        }
    ));
    out.json(&serde_json::json!({
        "result": "success",
        "feature": feat.slug,
        "moved_to_done": moved,
        "total_wps": wps.len(),
        "events": events_json(&envs, &deliveries),
    }));
    Ok(())
}
