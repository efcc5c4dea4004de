//! `spec-kitty agent status emit | materialize | migrate`: 2.1.3's direct
//! access to the status model (the write side; validate, doctor and
//! reconcile read).
//!
//! - `emit` records one transition through the same path as move-task
//!   ([`crate::status::store`]): 2.1.3's matrix and guards, no forward
//!   walking (as 2.1.3's emit), one `WPStatusChanged`.
//! - `materialize` rebuilds every view from the log.
//! - `migrate` writes the log 2.1.3's migration writes from the frontmatter
//!   (history chains, forced events with its marker), skipping features
//!   whose log already has events. No wire events: nothing changed lane.
//!
//! As in 2.1.3 these three do not commit.

use super::lane_move::{self, Failure};
use super::Ctx;
use crate::cli::{AgentStatusCommand, FeatureArgs, StatusEmitArgs, StatusMigrateArgs};
use crate::emit::events_json;
use crate::error::CliError;
use crate::feature::{self, Feature};
use crate::fsutil;
use crate::output::Out;
use crate::status::store::{self, Move};
use crate::status::{log, reducer, DoneEvidence};
use crate::wpfile;
use serde_json::json;

pub fn run(out: &Out, c: AgentStatusCommand) -> Result<(), CliError> {
    match c {
        AgentStatusCommand::Emit(a) => emit(out, a),
        AgentStatusCommand::Materialize(a) => materialize(out, a),
        AgentStatusCommand::Migrate(a) => migrate(out, a),
        AgentStatusCommand::Check(c) => super::status_check::run(out, c),
    }
}

fn tri(on: bool, off: bool) -> Option<bool> {
    crate::cli::tri_state(on, off)
}

fn emit(out: &Out, a: StatusEmitArgs) -> Result<(), CliError> {
    feature::check_wp_id(&a.wp_id)?;
    let to = wpfile::parse_lane(&a.to).map_err(CliError::invalid)?;
    if a.actor.trim().is_empty() {
        return Err(CliError::invalid("--actor must not be empty"));
    }
    let evidence = match &a.evidence_json {
        None => None,
        Some(text) => {
            let example =
                r#"{"review": {"reviewer": "alice", "verdict": "approved", "reference": "PR#1"}}"#;
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                CliError::invalid(format!(
                    "Invalid JSON in --evidence-json: {e}\nExpected valid JSON object, e.g.: '{example}'"
                ))
            })?;
            Some(DoneEvidence::from_value(&v).map_err(|e| {
                CliError::invalid(format!(
                    "--evidence-json: {e}; moving to approved/done requires review.reviewer, review.verdict and review.reference, e.g.: '{example}'"
                ))
            })?)
        }
    };
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    feature::find_wp(&feat, &a.wp_id)?;
    let mv = Move {
        wp_id: a.wp_id.clone(),
        to: Some(to),
        actor: a.actor.trim().to_string(),
        force: a.force,
        reason: a.reason.clone(),
        review_ref: a.review_ref.clone(),
        evidence,
        workspace_context: a.workspace_context.clone(),
        subtasks_complete: tri(a.subtasks_complete, a.no_subtasks_complete),
        implementation_evidence_present: tri(
            a.implementation_evidence_present,
            a.no_implementation_evidence_present,
        ),
        execution_mode: a.execution_mode.clone(),
        walk_forward: false,
        reason_default: false,
        ..Move::default()
    };
    let keep = |_: &crate::wpfile::WpFile, _: spec_kitty_protocol::Lane, t: &str| Ok(t.to_string());
    let applied = match lane_move::apply(&ctx, &feat, &mv, &keep, &|_| Ok(Vec::new()), None) {
        Ok(x) => x,
        Err(Failure::Unchanged(l)) => {
            let m = format!(
                "{}: Illegal transition: {} -> {} (it is already there)",
                a.wp_id,
                l.as_wire(),
                l.as_wire()
            );
            lane_move::log_error(&ctx, &m, Some(&a.wp_id), Some(&mv.actor));
            return Err(CliError::refused(m));
        }
        Err(Failure::Error(e)) => return Err(e),
    };
    let e = &applied.event;
    out.line(&format!(
        "{} {}: {} -> {} (event: {}...)",
        out.green("OK"),
        e.wp_id,
        e.from_lane.as_wire(),
        e.to_lane.as_wire(),
        &e.event_id[..12]
    ));
    out.json(&json!({
        "event_id": e.event_id,
        "wp_id": e.wp_id,
        "from_lane": e.from_lane.as_wire(),
        "to_lane": e.to_lane.as_wire(),
        "actor": e.actor,
        "events": events_json(&applied.envs, &applied.deliveries),
    }));
    Ok(())
}

fn materialize(out: &Out, a: FeatureArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    if !store::has_log(&feat) {
        return Err(CliError::invalid(format!(
            "No event log found at {}\nRun 'spec-kitty agent status emit' to create the first event, or 'spec-kitty agent status migrate --feature {}' to initialize it from the frontmatter.",
            log::path(&feat.dir).display(),
            feat.slug
        )));
    }
    let m = store::materialize(&feat)?;
    let s = &m.snapshot;
    out.line(&format!(
        "{} {}: {} events -> {} WPs",
        out.green("Materialized"),
        feat.slug,
        s.event_count,
        s.work_packages.len()
    ));
    let parts: Vec<String> = s
        .summary()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(l, n)| (l.as_wire(), n))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .map(|(l, n)| format!("{l}: {n}"))
        .collect();
    if !parts.is_empty() {
        out.line(&format!("  {}", parts.join(", ")));
    }
    if out.json {
        let text = s.to_json(&store::now_iso());
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            let path = feat.dir.join(reducer::SNAPSHOT_FILE);
            CliError::io(format!(
                "the snapshot for {} is not valid JSON: {e}",
                path.display()
            ))
            .with_source(e)
        })?;
        out.json(&v);
    }
    Ok(())
}

/// One feature's migration outcome, with 2.1.3's JSON keys.
struct Migrated {
    slug: String,
    status: &'static str,
    wps: Vec<serde_json::Value>,
    error: Option<String>,
}

fn migrate(out: &Out, a: StatusMigrateArgs) -> Result<(), CliError> {
    if a.feature.is_none() && !a.all {
        return Err(CliError::invalid("Specify --feature or --all"));
    }
    let cwd = crate::project::cwd()?;
    let project = crate::project::locate(&cwd)?;
    let slugs = match &a.feature {
        Some(f) => {
            let feat = feature::detect(&project, Some(f), None, &cwd)?;
            vec![feat.slug]
        }
        None => feature::list(&project),
    };
    if slugs.is_empty() {
        return Err(CliError::invalid("No features found to migrate"));
    }
    let mut results = Vec::new();
    for slug in slugs {
        let feat = Feature {
            dir: project.specs_dir().join(&slug),
            root: project.root.clone(),
            slug,
        };
        results.push(migrate_one(&feat, &a).unwrap_or_else(|e| Migrated {
            slug: feat.slug.clone(),
            status: "failed",
            wps: Vec::new(),
            error: Some(e.message),
        }));
    }
    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    let aliases = results
        .iter()
        .flat_map(|r| &r.wps)
        .filter(|w| w["alias_resolved"] == json!(true))
        .count();
    let failed = count("failed");
    for r in &results {
        out.line(&format!(
            "{}: {}{}",
            r.slug,
            r.status,
            r.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    }
    out.line(&format!(
        "{} migrated, {} skipped, {} failed{}",
        count("migrated"),
        count("skipped"),
        failed,
        if a.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    ));
    out.json(&json!({
        "features": results.iter().map(|r| json!({
            "feature_slug": r.slug,
            "status": r.status,
            "wp_count": r.wps.len(),
            "wp_details": r.wps,
            "error": r.error,
        })).collect::<Vec<_>>(),
        "summary": {
            "total_migrated": count("migrated"),
            "total_skipped": count("skipped"),
            "total_failed": failed,
            "aliases_resolved": aliases,
        },
    }));
    if failed > 0 && !a.dry_run {
        return Err(CliError::reported(crate::error::Kind::Invalid));
    }
    Ok(())
}

fn migrate_one(feat: &Feature, a: &StatusMigrateArgs) -> Result<Migrated, CliError> {
    let _lock = crate::status::store::take_lock(feat)?;
    let log_path = fsutil::resolve_in_repo(&feat.root, &log::path(&feat.dir))?;
    let skipped = |wps| Migrated {
        slug: feat.slug.clone(),
        status: "skipped",
        wps,
        error: None,
    };
    if !log::read(&feat.dir)?.is_empty() {
        return Ok(skipped(Vec::new()));
    }
    let wps = feature::load_wps(feat)?;
    if wps.is_empty() {
        return Ok(Migrated {
            slug: feat.slug.clone(),
            status: "failed",
            wps: Vec::new(),
            error: Some(format!(
                "No WP*.md files found in {}",
                feat.tasks_dir().display()
            )),
        });
    }
    let now = store::now_iso();
    let mut events = Vec::new();
    let mut details = Vec::new();
    for w in &wps {
        events.extend(store::migration_events(&feat.slug, w, &a.actor, &now));
        details.push(json!({
            "wp_id": w.meta.wp_id,
            "original_lane": w.meta.lane_written,
            "canonical_lane": w.meta.lane.as_wire(),
            "alias_resolved": w.meta.lane_written.to_ascii_lowercase() != w.meta.lane.as_wire(),
        }));
    }
    if events.is_empty() {
        return Ok(skipped(details));
    }
    if !a.dry_run {
        let mut text = String::new();
        for e in &events {
            text.push_str(&e.to_line());
            text.push('\n');
        }
        fsutil::write_atomic(&log_path, text.as_bytes())
            .map_err(|e| CliError::io_at("write", &log_path, &e))?;
        drop(_lock);
        store::materialize(feat)?;
    }
    Ok(Migrated {
        slug: feat.slug.clone(),
        status: "migrated",
        wps: details,
        error: None,
    })
}
