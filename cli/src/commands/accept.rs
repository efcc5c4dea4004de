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

use super::lane_move::{move_lane, LaneMove};
use super::{rel, Ctx};
use crate::cli::AcceptArgs;
use crate::emit::{events_json, Changes};
use crate::error::CliError;
use crate::feature;
use crate::fsutil;
use crate::output::Out;
use crate::wpfile::{self, WpFile};
use spec_kitty_protocol::envelope::{DependencyResolved, ErrorLogged, FeatureCompleted, Payload};
use spec_kitty_protocol::Lane;

pub fn run(out: &Out, a: AcceptArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let _feature_lock = feature::lock_feature(&feat)?;
    let paths = feature::wp_paths(&feat)?;
    let mut _locks = Vec::with_capacity(paths.len());
    for p in &paths {
        _locks.push(fsutil::lock_path(p).map_err(|e| CliError::io_at("lock", p, &e))?);
    }
    let wps: Vec<WpFile> = paths
        .iter()
        .map(|p| WpFile::read(p))
        .collect::<Result<_, _>>()?;
    let (meta_text, meta) = feature::read_meta(&feat)?;

    let blockers: Vec<&WpFile> = wps
        .iter()
        .filter(|w| {
            matches!(
                w.meta.lane,
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
                    wpfile::lane_for_file(w.meta.lane),
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
        .filter(|w| matches!(w.meta.lane, Lane::ForReview | Lane::Approved))
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
    let mut changes = Changes::new(&ctx.project.root);
    let mut status_event_of = std::collections::HashMap::new();
    let ts = wpfile::file_timestamp();
    for w in &to_move {
        let (env, new_text) = move_lane(
            &ctx.emitter,
            LaneMove {
                wp: w,
                wp_id: &w.meta.wp_id,
                feature_slug: &feat.slug,
                to: Lane::Done,
                actor: "user".into(),
                agent: "user".into(),
                shell_pid: String::new(),
                action: "Accepted via spec-kitty accept".into(),
                timestamp: ts.clone(),
                forced: None,
            },
        )?;
        status_event_of.insert(w.meta.wp_id.clone(), env.event_id.clone());
        envs.push(env);
        changes.replace(&w.path, &w.text, new_text);
    }
    for w in &wps {
        for dep in &w.meta.dependencies {
            if let Some(cause) = status_event_of.get(dep) {
                envs.push(ctx.emitter.build(
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
    envs.push(ctx.emitter.build(
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
    let deliveries = changes.commit(&ctx.emitter, &envs, &mut ctx.warner())?;
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
