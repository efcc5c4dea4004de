//! `spec-kitty accept`: 2.1.3's acceptance (its `acceptance.py`) with this
//! CLI's feature rule on top.
//!
//! 2.1.3 collects a readiness summary — lanes from the canonical log,
//! frontmatter metadata (unless `--lenient`), unchecked tasks in tasks.md,
//! `[NEEDS CLARIFICATION` markers, required artifacts, `git status`, the
//! mission's path conventions — and, when nothing is outstanding, records
//! the acceptance in meta.json (`accepted_at`, `accepted_by`,
//! `acceptance_mode`, `accepted_from_commit`, `acceptance_history`) and
//! commits it as `Accept <feature>`, then writes the commit's hash back as
//! `accept_commit` (left uncommitted, as 2.1.3 leaves it).
//!
//! On top: work packages in for_review or approved are finished here
//! (2.1.3 wants them done first), one `WPStatusChanged` each through the
//! status write path, with `DependencyResolved` for their dependents and one
//! `FeatureCompleted`; the checks are made on the state after that, and
//! nothing is written unless they all pass. A feature already accepted with
//! every work package done is left alone (no event, no commit).

use super::lane_move::{self, Failure};
use super::Ctx;
use crate::cli::AcceptArgs;
use crate::emit::{events_json, Changes};
use crate::error::{CliError, Kind};
use crate::feature::{self, Feature};
use crate::gitcommit::{self, Committed};
use crate::output::Out;
use crate::pyjson;
use crate::status::store::{self, Move};
use crate::status::{log, reducer, DoneEvidence, ReviewApproval};
use crate::wpfile::WpFile;
use serde_json::{json, Map, Value};
use spec_kitty_protocol::envelope::{DependencyResolved, FeatureCompleted, Payload};
use spec_kitty_protocol::Lane;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// 2.1.3's `LANES`, in its order (the summary's lane table and JSON).
const LANES: [&str; 8] = [
    "planned",
    "claimed",
    "in_progress",
    "for_review",
    "approved",
    "done",
    "blocked",
    "canceled",
];

/// How many acceptance records meta.json keeps (2.1.3's `HISTORY_CAP`).
const HISTORY_CAP: usize = 20;

pub fn run(out: &Out, a: AcceptArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.common.feature.as_deref())?;
    let _feature_lock = feature::lock_feature(&feat)?;
    let mode = choose_mode(
        &a.common.mode.to_lowercase(),
        ctx.project.git_root.as_deref(),
    );
    let wps = feature::load_wps(&feat)?;
    let (meta_text, meta) = feature::read_meta(&feat)?;
    // The lanes as the model has them (the log, and the frontmatter of WPs
    // it does not know yet), and the log alone: 2.1.3 checks the log.
    let snap = store::snapshot(&feat)?;
    let logged = reducer::reduce(
        log::read(&feat.dir)
            .map_err(|e| {
                CliError::invalid(format!(
                    "the status event log of feature '{}' is corrupted: {e}",
                    feat.slug
                ))
            })?
            .iter()
            .map(|l| &l.event),
    );
    let lane_of = |w: &WpFile| {
        snap.work_packages
            .get(&w.meta.wp_id)
            .map_or(w.meta.lane, |s| s.lane)
    };
    let to_finish: Vec<&WpFile> = if mode == "checklist" {
        Vec::new()
    } else {
        wps.iter()
            .filter(|w| matches!(lane_of(w), Lane::ForReview | Lane::Approved))
            .collect()
    };

    let all_logged_done = !wps.is_empty()
        && wps.iter().all(|w| {
            logged
                .work_packages
                .get(&w.meta.wp_id)
                .is_some_and(|s| s.lane == Lane::Done)
        });
    let already = meta.get("accepted_at").is_some_and(|v| !v.is_null());
    if mode != "checklist" && already && all_logged_done {
        let at = meta.get("accepted_at").cloned().unwrap_or(Value::Null);
        out.line(&format!(
            "Feature {} was already accepted ({}); nothing to do",
            feat.slug,
            at.as_str().unwrap_or("?")
        ));
        out.json(&json!({
            "result": "unchanged",
            "feature": feat.slug,
            "accepted_at": at,
            "accepted_by": meta.get("accepted_by"),
            "mode": meta.get("acceptance_mode"),
            "accept_commit": meta.get("accept_commit"),
            "commit_created": false,
            "events": [],
        }));
        return Ok(());
    }

    let finishing: HashSet<&str> = to_finish.iter().map(|w| w.meta.wp_id.as_str()).collect();
    let summary = collect(&ctx, &feat, &wps, &logged, &finishing, !a.common.lenient)?;

    if mode == "checklist" || !summary.ok() {
        let mut j = summary.to_json();
        if summary.ok() {
            out.json(&j);
            print_summary(out, &summary);
            return Ok(());
        }
        let message = not_ready_message(&feat, &summary);
        if !a.allow_fail {
            j["error"] = json!(message);
        }
        out.json(&j);
        print_summary(out, &summary);
        if a.allow_fail {
            return Ok(());
        }
        if mode != "checklist" {
            lane_move::log_error(&ctx, &message, None, None);
        }
        // On stderr only: with --json the summary above already carries it.
        let plain = Out {
            json: false,
            ..*out
        };
        plain.error(&message);
        return Err(CliError::reported(Kind::Refused));
    }

    let actor = a
        .actor
        .clone()
        .or_else(|| std::env::var("USER").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("USERNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "system".into())
        .trim()
        .to_string();
    let accepted_at = spec_kitty_protocol::time::now_utc()[..19].to_string() + "Z";
    let commit_required = !a.common.no_commit;
    let mut envs = Vec::new();
    let mut deliveries = Vec::new();
    let mut moved = Vec::new();
    let mut parent_commit = None;
    let mut accept_commit = None;
    let mut commit_created = false;
    if commit_required {
        let mut files = Vec::new();
        let mut status_event_of = std::collections::HashMap::new();
        for w in &to_finish {
            let Some(applied) = finish(&ctx, &feat, w)? else {
                continue;
            };
            files.push(w.path.clone());
            moved.push(w.meta.wp_id.clone());
            status_event_of.insert(w.meta.wp_id.clone(), applied.envs[0].event_id.clone());
            envs.extend(applied.envs);
            deliveries.extend(applied.deliveries);
        }
        parent_commit = crate::gitmeta::GitMeta::read(&ctx.project.root).head_sha;
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
        follow.push(ctx.emitter.build(
            &Payload::FeatureCompleted(FeatureCompleted {
                feature_slug: feat.slug.clone(),
                total_wps: wps.len() as u64,
                completed_at: Some(spec_kitty_protocol::time::now_utc()),
                total_duration: None,
            }),
            None,
        )?);
        let mut record = meta.clone();
        record_acceptance(&mut record, &actor, &mode, parent_commit.as_deref());
        deliveries.extend(write_record(&ctx, &feat, &meta_text, &record, &follow)?);
        envs.extend(follow);
        if gitcommit::auto_commit_default(&ctx.project.root) {
            files.push(feat.meta_path());
            if !moved.is_empty() {
                for f in ["status.events.jsonl", "status.json", "tasks.md"] {
                    files.push(feat.dir.join(f));
                }
            }
            if let Some(Committed::Yes(sha)) =
                lane_move::commit(&ctx, &files, &format!("Accept {}", feat.slug))
            {
                commit_created = true;
                // As 2.1.3: the hash goes into meta.json after the commit
                // (it cannot be in the commit that it names).
                record.insert("accept_commit".into(), json!(sha));
                if let Some(Value::Array(h)) = record.get_mut("acceptance_history") {
                    if let Some(Value::Object(last)) = h.last_mut() {
                        last.insert("accept_commit".into(), json!(sha));
                    }
                }
                crate::fsutil::write_repo_file(
                    &ctx.project.root,
                    &feat.meta_path(),
                    meta_text_of(&record).as_bytes(),
                )?;
                accept_commit = Some(sha);
            }
        }
    }

    let (instructions, cleanup) = next_steps(&summary, &mode, &meta);
    let mut notes = Vec::new();
    if let Some(c) = &accept_commit {
        notes.push(format!("Acceptance commit: {c}"));
    }
    if let Some(c) = &parent_commit {
        notes.push(format!("Accepted from parent commit: {c}"));
    }
    if !a.test.is_empty() {
        notes.push("Validation commands:".to_string());
        notes.extend(a.test.iter().map(|t| format!("  - {t}")));
    }
    out.json(&json!({
        "result": "success",
        "feature": feat.slug,
        "accepted_at": accepted_at,
        "accepted_by": actor,
        "mode": mode,
        "parent_commit": parent_commit,
        "accept_commit": accept_commit,
        "commit_created": commit_created,
        "instructions": instructions,
        "cleanup_instructions": cleanup,
        "notes": notes,
        "summary": summary.to_json(),
        "moved_to_done": moved,
        "events": events_json(&envs, &deliveries),
    }));
    if !out.json {
        print_summary(out, &summary);
        let mut lines = vec![
            String::new(),
            out.bold("Acceptance metadata"),
            format!("• Feature: {}", feat.slug),
            format!("• Accepted at: {accepted_at}"),
            format!("• Accepted by: {actor}"),
        ];
        if let Some(c) = &accept_commit {
            lines.push(format!("• Acceptance commit: {c}"));
        }
        if let Some(c) = &parent_commit {
            lines.push(format!("• Parent commit: {c}"));
        }
        if !commit_created {
            lines.push("• Commit status: no changes were committed".into());
        }
        if !moved.is_empty() {
            lines.push(format!("• Moved to done: {}", moved.join(", ")));
        }
        for (title, items) in [("Next steps", &instructions), ("Cleanup", &cleanup)] {
            if !items.is_empty() {
                lines.push(String::new());
                lines.push(out.bold(title));
                for (i, s) in items.iter().enumerate() {
                    lines.push(format!("  {}. {s}", i + 1));
                }
            }
        }
        if !notes.is_empty() {
            lines.push(String::new());
            lines.push(out.bold("Notes"));
            lines.extend(notes.iter().map(|n| format!("  - {n}")));
        }
        lines.push(String::new());
        lines.push(format!(
            "{} Accepted feature {}",
            out.green("✓"),
            out.bold(&feat.slug)
        ));
        out.line(&lines.join("\n"));
    }
    Ok(())
}

/// 2.1.3's `choose_mode`: an explicit mode wins; `auto` is `pr` when the
/// repository has a remote, else `local`. The remotes are read from the
/// repository's config file rather than `git remote` (a process fewer;
/// remotes defined only through `include` are not seen).
fn choose_mode(requested: &str, git_root: Option<&Path>) -> String {
    if matches!(requested, "pr" | "local" | "checklist") {
        return requested.to_string();
    }
    let has_remote = git_root
        .and_then(crate::gitmeta::GitDirs::of_worktree)
        .and_then(|d| std::fs::read_to_string(d.common_dir.join("config")).ok())
        .is_some_and(|t| {
            t.lines().any(|l| {
                l.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("[remote \"")
            })
        });
    if has_remote { "pr" } else { "local" }.to_string()
}

/// Moves `w` to done through the status write path, with review evidence
/// (the reviewer the WP records, else the user, and this acceptance as the
/// reference). `None`: it was done already.
fn finish(ctx: &Ctx, feat: &Feature, w: &WpFile) -> Result<Option<lane_move::Applied>, CliError> {
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
    match lane_move::apply(ctx, feat, &mv, &edit, &|_| Ok(Vec::new()), None) {
        Ok(x) => Ok(Some(x)),
        Err(Failure::Unchanged(_)) => Ok(None),
        Err(Failure::Error(e)) => Err(e),
    }
}

/// What `orchestrator-api accept-feature` writes once the caller has seen
/// every WP done: as 2.1.3, the acceptance record alone (mode
/// `orchestrator`, by `actor`), no checklist and no commit. The first
/// acceptance also sends `FeatureCompleted`; a repeat only records.
/// Returns the `accepted_at` written.
pub fn record_orchestrated(ctx: &Ctx, feat: &Feature, actor: &str) -> Result<String, CliError> {
    let _feature_lock = feature::lock_feature(feat)?;
    let (meta_text, meta) = feature::read_meta(feat)?;
    let first = meta.get("accepted_at").is_none_or(|v| v.is_null());
    let mut record = meta.clone();
    record_acceptance(&mut record, actor, "orchestrator", None);
    let mut follow = Vec::new();
    if first {
        follow.push(ctx.emitter.build(
            &Payload::FeatureCompleted(FeatureCompleted {
                feature_slug: feat.slug.clone(),
                total_wps: feature::load_wps_lenient(feat)?.0.len() as u64,
                completed_at: Some(spec_kitty_protocol::time::now_utc()),
                total_duration: None,
            }),
            None,
        )?);
    }
    write_record(ctx, feat, &meta_text, &record, &follow)?;
    Ok(record
        .get("accepted_at")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

/// Writes the acceptance record over meta.json (`meta_text`, empty when it
/// had none), then hands `follow` to the daemon.
fn write_record(
    ctx: &Ctx,
    feat: &Feature,
    meta_text: &str,
    record: &Map<String, Value>,
    follow: &[spec_kitty_protocol::EventEnvelope],
) -> Result<Vec<crate::handoff::Delivery>, CliError> {
    let mut changes = Changes::new(&ctx.project.root);
    let text = meta_text_of(record);
    if meta_text.is_empty() {
        changes.create(&feat.meta_path(), text);
    } else {
        changes.replace(&feat.meta_path(), meta_text, text);
    }
    changes.commit(&ctx.emitter, follow, &mut ctx.warner())
}

/// 2.1.3's `record_acceptance`: the top-level fields (stale commit fields
/// cleared first) and one more entry in the bounded history.
fn record_acceptance(meta: &mut Map<String, Value>, by: &str, mode: &str, from: Option<&str>) {
    let now = store::now_iso();
    let mut entry = Map::new();
    entry.insert("accepted_at".into(), json!(now));
    entry.insert("accepted_by".into(), json!(by));
    entry.insert("acceptance_mode".into(), json!(mode));
    meta.insert("accepted_at".into(), json!(now));
    meta.insert("accepted_by".into(), json!(by));
    meta.insert("acceptance_mode".into(), json!(mode));
    meta.remove("accepted_from_commit");
    meta.remove("accept_commit");
    if let Some(c) = from {
        entry.insert("accepted_from_commit".into(), json!(c));
        meta.insert("accepted_from_commit".into(), json!(c));
    }
    let mut history = match meta.remove("acceptance_history") {
        Some(Value::Array(h)) => h,
        _ => Vec::new(),
    };
    history.push(Value::Object(entry));
    if history.len() > HISTORY_CAP {
        history.drain(..history.len() - HISTORY_CAP);
    }
    meta.insert("acceptance_history".into(), Value::Array(history));
}

/// meta.json as 2.1.3's `write_meta` writes it (sorted keys, 2-space
/// indent, non-ASCII kept, trailing newline), so either CLI rewrites it
/// without churn.
fn meta_text_of(meta: &Map<String, Value>) -> String {
    pyjson::dumps(&Value::Object(meta.clone()), pyjson::Style::Pretty) + "\n"
}

/// One work package as the summary reports it.
struct WpState {
    id: String,
    lane: String,
    title: String,
    path: String,
    latest_lane: Option<String>,
    metadata: [(&'static str, Option<String>); 4],
}

/// 2.1.3's `AcceptanceSummary`.
struct Summary {
    feature: String,
    repo_root: PathBuf,
    feature_dir: PathBuf,
    branch: Option<String>,
    worktree_root: PathBuf,
    primary_repo_root: PathBuf,
    lanes: BTreeMap<&'static str, Vec<String>>,
    work_packages: Vec<WpState>,
    metadata_issues: Vec<String>,
    activity_issues: Vec<String>,
    unchecked_tasks: Vec<String>,
    needs_clarification: Vec<String>,
    missing_artifacts: Vec<String>,
    optional_missing: Vec<String>,
    git_dirty: Vec<String>,
    path_violations: Vec<String>,
    warnings: Vec<String>,
}

impl Summary {
    /// 2.1.3's `all_done` (it asks for a "doing" bucket that never
    /// exists, so in_progress work shows up as an activity issue instead).
    fn all_done(&self) -> bool {
        self.lanes["planned"].is_empty() && self.lanes["for_review"].is_empty()
    }

    fn ok(&self) -> bool {
        self.outstanding().is_empty()
    }

    /// The outstanding issues by 2.1.3's bucket names, in its order.
    fn outstanding(&self) -> Vec<(&'static str, Vec<String>)> {
        let not_done: Vec<String> = self.lanes["planned"]
            .iter()
            .chain(&self.lanes["for_review"])
            .cloned()
            .collect();
        [
            ("not_done", not_done),
            ("metadata", self.metadata_issues.clone()),
            ("activity", self.activity_issues.clone()),
            ("unchecked_tasks", self.unchecked_tasks.clone()),
            ("needs_clarification", self.needs_clarification.clone()),
            ("missing_artifacts", self.missing_artifacts.clone()),
            ("git_dirty", self.git_dirty.clone()),
            ("path_violations", self.path_violations.clone()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }

    /// 2.1.3's `AcceptanceSummary.to_dict()`.
    fn to_json(&self) -> Value {
        let s = |p: &Path| p.display().to_string();
        let lanes: Map<String, Value> = LANES
            .iter()
            .map(|l| (l.to_string(), json!(self.lanes[l])))
            .collect();
        let wps: Vec<Value> = self
            .work_packages
            .iter()
            .map(|w| {
                let metadata: Map<String, Value> = w
                    .metadata
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect();
                json!({
                    "id": w.id,
                    "lane": w.lane,
                    "title": w.title,
                    "path": w.path,
                    "latest_lane": w.latest_lane,
                    "has_lane_entry": w.latest_lane.is_some(),
                    "metadata": metadata,
                })
            })
            .collect();
        json!({
            "feature": self.feature,
            "branch": self.branch,
            "repo_root": s(&self.repo_root),
            "feature_dir": s(&self.feature_dir),
            "tasks_dir": s(&self.feature_dir.join("tasks")),
            "worktree_root": s(&self.worktree_root),
            "primary_repo_root": s(&self.primary_repo_root),
            "lanes": lanes,
            "work_packages": wps,
            "metadata_issues": self.metadata_issues,
            "activity_issues": self.activity_issues,
            "unchecked_tasks": self.unchecked_tasks,
            "needs_clarification": self.needs_clarification,
            "missing_artifacts": self.missing_artifacts,
            "optional_missing": self.optional_missing,
            "git_dirty": self.git_dirty,
            "path_violations": self.path_violations,
            "warnings": self.warnings,
            "all_done": self.all_done(),
            "ok": self.ok(),
        })
    }
}

/// The refusal: every outstanding issue, by bucket.
fn not_ready_message(feat: &Feature, s: &Summary) -> String {
    let mut m = format!(
        "feature {} is not ready to accept; outstanding acceptance issues:",
        feat.slug
    );
    for (key, items) in s.outstanding() {
        m.push_str(&format!("\n  {key}:"));
        for i in items {
            m.push_str(&format!("\n    - {i}"));
        }
    }
    m.push_str(
        "\nResolve them before merging, or rerun with --allow-fail for a checklist-only report.",
    );
    m
}

/// 2.1.3's `collect_feature_summary`, on the state after the work packages
/// in `finishing` are done (the ones this accept finishes).
fn collect(
    ctx: &Ctx,
    feat: &Feature,
    wps: &[WpFile],
    logged: &reducer::Snapshot,
    finishing: &HashSet<&str>,
    strict: bool,
) -> Result<Summary, CliError> {
    let root = &ctx.project.root;
    // Git cleanliness first, before anything is read or written.
    let git_dirty = super::status_reconcile::git_lines(root, &["status", "--porcelain"]);
    let worktree_root = ctx.project.git_root.clone().unwrap_or_else(|| root.clone());
    let primary_repo_root = crate::gitmeta::GitDirs::of_worktree(&worktree_root)
        .and_then(|d| d.main_worktree())
        .unwrap_or_else(|| root.clone());

    let mut lanes: BTreeMap<&'static str, Vec<String>> =
        LANES.iter().map(|l| (*l, Vec::new())).collect();
    let mut work_packages = Vec::new();
    let mut metadata_issues = Vec::new();
    let mut activity_issues = Vec::new();
    let has_state = !finishing.is_empty() || !logged.work_packages.is_empty();
    if !has_state {
        activity_issues.push(format!(
            "No canonical state found for feature '{}'. Cannot validate acceptance without \
             status.events.jsonl. Run status migration to bootstrap the event log.",
            feat.slug
        ));
    }
    for w in wps {
        let id = w.meta.wp_id.clone();
        let canonical = if finishing.contains(id.as_str()) {
            Some(Lane::Done)
        } else {
            logged.work_packages.get(&id).map(|s| s.lane)
        };
        let front_lane = w.meta.lane;
        let bucket = canonical.unwrap_or(front_lane);
        lanes
            .get_mut(bucket.as_wire())
            .expect("every lane has a bucket")
            .push(id.clone());
        let fm = w.frontmatter();
        let metadata = [
            ("lane", py_scalar(fm, "lane")),
            ("agent", py_scalar(fm, "agent")),
            ("assignee", py_scalar(fm, "assignee")),
            ("shell_pid", py_scalar(fm, "shell_pid")),
        ];
        if strict {
            let empty = |i: usize| metadata[i].1.as_deref().is_none_or(|v| v.is_empty());
            if metadata[0].1.as_deref().is_none_or(|v| v.trim().is_empty()) {
                metadata_issues.push(format!("{id}: missing lane in frontmatter"));
            }
            if empty(1) {
                metadata_issues.push(format!("{id}: missing agent in frontmatter"));
            }
            // The lane the file will have: finished ones become done.
            let file_lane = if finishing.contains(id.as_str()) {
                Lane::Done
            } else {
                front_lane
            };
            if matches!(file_lane, Lane::InProgress | Lane::ForReview) && empty(2) {
                metadata_issues.push(format!("{id}: missing assignee in frontmatter"));
            }
            if empty(3) {
                metadata_issues.push(format!("{id}: missing shell_pid in frontmatter"));
            }
        }
        if has_state {
            match canonical {
                None => activity_issues.push(format!(
                    "{id}: no canonical state found in status.events.jsonl"
                )),
                Some(l) if l != Lane::Done => activity_issues.push(format!(
                    "{id}: canonical lane is '{}', expected 'done'",
                    l.as_wire()
                )),
                Some(_) => {}
            }
        }
        work_packages.push(WpState {
            id,
            lane: bucket.as_wire().to_string(),
            title: w.meta.title.trim_matches('"').to_string(),
            path: w
                .path
                .strip_prefix(root)
                .unwrap_or(&w.path)
                .display()
                .to_string(),
            latest_lane: canonical.map(|l| l.as_wire().to_string()),
            metadata,
        });
    }

    let dir = &feat.dir;
    let unchecked_tasks = match read_text(&dir.join("tasks.md"))? {
        Some(t) => t
            .lines()
            .filter(|l| {
                l.trim_start()
                    .strip_prefix('-')
                    .is_some_and(|r| r.trim_start().starts_with("[ ]"))
            })
            .map(|l| l.trim().to_string())
            .collect(),
        None => Vec::new(),
    };
    let mut needs_clarification = Vec::new();
    for f in [
        "spec.md",
        "plan.md",
        "quickstart.md",
        "tasks.md",
        "research.md",
        "data-model.md",
    ] {
        let p = dir.join(f);
        if read_text(&p)?.is_some_and(|t| t.contains("[NEEDS CLARIFICATION")) {
            needs_clarification.push(p.display().to_string());
        }
    }
    let missing = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|n| !dir.join(n).exists())
            .map(|n| n.to_string())
            .collect()
    };
    let missing_artifacts = missing(&["spec.md", "plan.md", "tasks.md"]);
    let optional_missing = missing(&["quickstart.md", "data-model.md", "research.md", "contracts"]);
    let path_violations: Vec<String> = mission_path_errors(root, feat).into_iter().collect();
    let mut warnings = Vec::new();
    if !optional_missing.is_empty() {
        warnings.push(format!(
            "Optional artifacts missing: {}",
            optional_missing.join(", ")
        ));
    }
    if !path_violations.is_empty() {
        warnings.push("Path conventions not satisfied.".into());
    }
    Ok(Summary {
        feature: feat.slug.clone(),
        repo_root: root.clone(),
        feature_dir: dir.clone(),
        branch: ctx.git.branch.clone(),
        worktree_root,
        primary_repo_root,
        lanes,
        work_packages,
        metadata_issues,
        activity_issues,
        unchecked_tasks,
        needs_clarification,
        missing_artifacts,
        optional_missing,
        git_dirty,
        path_violations,
        warnings,
    })
}

/// A frontmatter scalar as 2.1.3's `extract_scalar` reads it: the first
/// `key:` line, quotes removed (`""` is an empty string), an unquoted
/// value cut at `#`, and nothing (`None`) for an empty unquoted value.
fn py_scalar(frontmatter: &str, key: &str) -> Option<String> {
    let line = frontmatter
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?;
    let raw = line.trim_start();
    for q in ['"', '\''] {
        if let Some(rest) = raw.strip_prefix(q) {
            if let Some(end) = rest.find(q) {
                return Some(rest[..end].to_string());
            }
        }
    }
    let v = raw.split('#').next().unwrap_or("").trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// A feature file as text (a BOM dropped), `None` when absent; a file
/// that is not UTF-8 is an error naming it, as in 2.1.3.
fn read_text(path: &Path) -> Result<Option<String>, CliError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::io_at("read", path, &e)),
    };
    match String::from_utf8(bytes) {
        Ok(t) => Ok(Some(t.trim_start_matches('\u{feff}').to_string())),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            Err(CliError::invalid(format!(
                "invalid UTF-8 encoding in {}: byte 0x{:02x} at offset {at}",
                path.display(),
                e.as_bytes()[at]
            )))
        }
    }
}

/// The mission's path conventions (`paths:` in
/// `.kittify/missions/<mission>/mission.yaml`, the feature's mission from
/// meta.json, else software-dev; no mission there, no check), as 2.1.3's
/// `validate_mission_paths(strict=True)` reports them: one text, or none.
fn mission_path_errors(root: &Path, feat: &Feature) -> Option<String> {
    let key = feature::read_meta(feat)
        .ok()
        .and_then(|(_, m)| m.get("mission").and_then(|v| v.as_str().map(String::from)))
        .unwrap_or_else(|| "software-dev".into());
    let missions = root.join(".kittify").join("missions");
    let file = [key.as_str(), "software-dev"]
        .iter()
        .map(|k| missions.join(k))
        .find(|d| d.exists())?
        .join("mission.yaml");
    let doc: Value = crate::yamltext::parse_value(&std::fs::read_to_string(&file).ok()?).ok()?;
    let name = doc.get("name").and_then(|v| v.as_str()).unwrap_or(&key);
    let paths = doc.get("paths")?.as_object()?;
    let missing: Vec<(&String, &str)> = paths
        .iter()
        .filter_map(|(k, v)| Some((k, v.as_str()?)))
        .filter(|(_, p)| !root.join(p).exists())
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut lines = vec!["Path Convention Errors:".to_string()];
    for (k, p) in &missing {
        lines.push(format!("  - {name} expects {k} path: {p} (not found)"));
    }
    let mut suggestions: Vec<String> = missing
        .iter()
        .map(|(_, p)| {
            let path = Path::new(p);
            let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            match (p.ends_with('/'), file_name) {
                (false, Some(n)) if n.contains('.') => match path.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => {
                        format!("mkdir -p {} && touch {p}", parent.display())
                    }
                    _ => format!("touch {p}"),
                },
                _ => format!("mkdir -p {p}"),
            }
        })
        .collect();
    let dirs: Vec<&str> = missing
        .iter()
        .map(|(_, p)| *p)
        .filter(|p| p.ends_with('/'))
        .collect();
    if dirs.len() > 1 {
        suggestions.insert(
            0,
            format!("Create directories in one go: mkdir -p {}", dirs.join(" ")),
        );
    }
    lines.push(String::new());
    lines.push("Required Actions:".into());
    lines.extend(suggestions.iter().map(|s| format!("  - {s}")));
    lines.push(String::new());
    lines.push(
        "These directories are required by the active mission. Create them before continuing."
            .into(),
    );
    Some(lines.join("\n"))
}

/// 2.1.3's next steps and cleanup for `mode`: no merge or branch deletion
/// advice when the branch is the integration branch itself.
fn next_steps(s: &Summary, mode: &str, meta: &Map<String, Value>) -> (Vec<String>, Vec<String>) {
    let branch = s.branch.clone().unwrap_or_else(|| s.feature.clone());
    let target = meta.get("target_branch").and_then(|v| v.as_str());
    let integration = match target {
        Some(t) => branch == t,
        None => matches!(
            branch.as_str(),
            "main" | "master" | "develop" | "development" | "2.x" | "3.x"
        ),
    };
    let mut steps = Vec::new();
    match (mode, integration) {
        ("pr", true) => steps.push(format!(
            "Acceptance recorded on integration branch `{branch}`. Push and open a pull request if needed."
        )),
        ("pr", false) => steps.extend([
            format!("Review the acceptance commit on branch `{branch}`."),
            format!("Push your branch: `git push origin {branch}`"),
            "Open a pull request referencing spec/plan/tasks artifacts.".into(),
            "Include acceptance summary and test evidence in the PR description.".into(),
        ]),
        ("local", true) => steps.push(format!(
            "Acceptance recorded directly on `{branch}`. No merge needed."
        )),
        ("local", false) => steps.extend([
            "Switch to your integration branch (e.g., `git checkout main`).".into(),
            "Synchronize it (e.g., `git pull --ff-only`).".into(),
            format!("Merge the feature: `git merge {branch}`"),
        ]),
        _ => steps.push("All checks passed. Proceed with your manual acceptance workflow.".into()),
    }
    let mut cleanup = Vec::new();
    if s.worktree_root != s.primary_repo_root {
        cleanup.push(format!(
            "After merging, remove the worktree: `git worktree remove {}`",
            s.worktree_root.display()
        ));
    }
    if !integration {
        cleanup.push(format!(
            "Delete the feature branch when done: `git branch -d {branch}`"
        ));
    }
    (steps, cleanup)
}

/// The checklist as text: lanes with their work packages, then the
/// outstanding issues (or that there are none) and the optional artifacts
/// missing.
fn print_summary(out: &Out, s: &Summary) {
    if out.json {
        return;
    }
    let mut lines = vec![
        out.bold(&format!("Feature {}: work packages by lane", s.feature)),
        format!("  {:<12} {:>5}  Work Packages", "Lane", "Count"),
    ];
    for l in LANES {
        let items = &s.lanes[l];
        let shown = if items.is_empty() {
            "-".to_string()
        } else {
            items.join(", ")
        };
        lines.push(format!("  {l:<12} {:>5}  {shown}", items.len()));
    }
    let outstanding = s.outstanding();
    lines.push(String::new());
    if outstanding.is_empty() {
        lines.push("No outstanding acceptance issues detected.".into());
    } else {
        lines.push(out.bold("Outstanding items"));
        for (key, items) in outstanding {
            lines.push(format!("- {key}"));
            lines.extend(items.iter().map(|i| format!("    • {i}")));
        }
    }
    if !s.optional_missing.is_empty() {
        lines.push(String::new());
        lines.push(format!(
            "Optional artifacts missing: {}",
            s.optional_missing.join(", ")
        ));
    }
    out.line(&lines.join("\n"));
}
