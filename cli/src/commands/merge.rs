//! `spec-kitty merge` / `spec-kitty agent feature merge`: land a feature's
//! work-package branches (`<feature>-WPnn`, made by `implement`) on the
//! target branch, as 2.1.3's workspace-per-WP merge does, and make it
//! survive a crash at any step.
//!
//! The order is dependency order (frontmatter `dependencies:`, WP number
//! breaking ties); a branch that is an ancestor of another one, or already
//! in the target, is not merged on its own (2.1.3's "effective tips"). The
//! steps, each one persisted before the next starts:
//!
//! 1. plan: `.kittify/merge-state.json` (2.1.3's file and keys) plus
//!    `.kittify/merge-undo.json` (ours: the target's commit before the
//!    merge, the branch the checkout was on, every WP branch tip and
//!    worktree) so `--abort` can put everything back;
//! 2. per WP: `git merge --no-ff` (or `--squash` + commit) with 2.1.3's
//!    commit message; a conflict runs `git merge --abort` and stops naming
//!    the WP and the files; then every WP whose branch the target now
//!    contains moves to `done` through the status write path (one event,
//!    with the review evidence), committed; the state file records it;
//! 3. only when every status change is committed: worktrees removed, then
//!    branches deleted; then both state files go.
//!
//! Every step checks what is already true (branch contained in the target,
//! a commit with the WP's merge subject since the start, the WP already
//! done in the log, worktree or branch already gone), so a re-run after a
//! `kill -9` anywhere finishes the job and records no transition twice.
//! Nothing is ever pushed.
//!
//! `SPEC_KITTY_TEST_CRASH_AT=<point>` is a test hook, inert unless set: the
//! process aborts itself at that point (`after-wp-merge`,
//! `after-status-write`, `between-merges`, `during-worktree-removal`,
//! `during-branch-deletion`), as a `kill -9` would stop it.

use super::lane_move::{self, Failure};
use super::Ctx;
use crate::cli::MergeArgs;
use crate::error::CliError;
use crate::feature::{self, Feature};
use crate::fsutil;
use crate::output::Out;
use crate::status::store::Move;
use crate::status::{log, DoneEvidence, ReviewApproval};
use crate::wpfile::WpFile;
use serde_json::{json, Value};
use spec_kitty_protocol::Lane;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// 2.1.3's merge state file, relative to the main checkout.
pub const STATE_FILE: &str = ".kittify/merge-state.json";
/// Ours, beside it: what `--abort` restores.
pub const UNDO_FILE: &str = ".kittify/merge-undo.json";
/// The test hook's environment variable (see the module docs).
pub const CRASH_ENV: &str = "SPEC_KITTY_TEST_CRASH_AT";

/// Aborts the process at `point` when the test hook names it.
fn crash_point(point: &str) {
    if std::env::var(CRASH_ENV).is_ok_and(|v| v == point) {
        std::process::abort();
    }
}

/// 2.1.3's `MergeState`, field for field (its loader rejects other keys).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct MergeState {
    feature_slug: String,
    target_branch: String,
    wp_order: Vec<String>,
    completed_wps: Vec<String>,
    current_wp: Option<String>,
    has_pending_conflicts: bool,
    strategy: String,
    started_at: String,
    updated_at: String,
}

/// What the checkout looked like before the merge.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Undo {
    feature_slug: String,
    /// The target branch's commit before the first merge.
    start_head: String,
    /// The branch the main checkout was on (`None`: detached).
    original_branch: Option<String>,
    /// WP branch → its tip.
    branches: BTreeMap<String, String>,
    /// Worktree paths that existed, relative to the main checkout.
    worktrees: Vec<String>,
}

/// One work package to land.
#[derive(Debug, Clone)]
struct WpBranch {
    wp_id: String,
    branch: String,
    worktree: PathBuf,
}

pub fn run(out: &Out, a: MergeArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let root = ctx.project.root.clone();
    if ctx.project.git_root.is_none() {
        return Err(CliError::invalid(format!(
            "{} is not a git repository; merge lands work-package branches with git",
            root.display()
        )));
    }
    if a.abort {
        return abort(&ctx, &root);
    }
    if a.push {
        out.warn("merge never pushes; run `git push` yourself when you are ready");
    }
    if !matches!(a.strategy.as_str(), "merge" | "squash" | "rebase") {
        return Err(CliError::invalid(format!(
            "--strategy {}: not one of merge, squash, rebase",
            a.strategy
        )));
    }
    let state = load_json::<MergeState>(&root, STATE_FILE)?;
    if a.resume && state.is_none() {
        return Err(CliError::invalid(
            "No merge state to resume; run `spec-kitty merge --feature <slug>` to start a new merge",
        ));
    }
    if let (Some(s), Some(f)) = (&state, &a.feature) {
        let wanted = ctx.feature(Some(f))?.slug;
        if wanted != s.feature_slug {
            return Err(CliError::refused(format!(
                "a merge of {} is in progress ({STATE_FILE}); finish it with `spec-kitty merge --resume` or drop it with `spec-kitty merge --abort`",
                s.feature_slug
            )));
        }
    }
    let feat = match &state {
        Some(s) => ctx.feature(Some(&s.feature_slug))?,
        None => ctx.feature(a.feature.as_deref())?,
    };
    let strategy = state
        .as_ref()
        .map_or(a.strategy.clone(), |s| s.strategy.clone());
    if strategy == "rebase" {
        return Err(CliError::invalid(
            "Rebase strategy not supported for workspace-per-WP; use --strategy merge or --strategy squash",
        ));
    }
    let target = match &state {
        Some(s) => s.target_branch.clone(),
        None => resolve_target(&root, &feat, a.target.as_deref())?,
    };
    if let Some(s) = &state {
        if let Some(wp) = undo_killed_git_merge(&root, s)? {
            out.warn(&format!(
                "a git merge of {wp} was interrupted; it was rolled back and runs again"
            ));
        }
    }
    if git(&root, &["rev-parse", "-q", "--verify", "MERGE_HEAD"]).is_ok() {
        return Err(CliError::refused(format!(
            "a git merge is in progress in {}; finish it (git merge --continue) or drop it (git merge --abort) first",
            root.display()
        )));
    }
    // A crash after a status write leaves the feature's status files
    // uncommitted: commit them first, so nothing is lost and the tree is
    // clean for the merges.
    if state.is_some() {
        commit_status(
            &ctx,
            &feat,
            &format!("chore: status of {} after merge", feat.slug),
        );
    }

    let found = find_wp_branches(&root, &feat.slug)?;
    let wps = match &state {
        Some(s) => s
            .wp_order
            .iter()
            .map(|id| {
                found
                    .iter()
                    .find(|w| &w.wp_id == id)
                    .cloned()
                    .unwrap_or_else(|| wp_branch(&root, &feat.slug, id))
            })
            .collect(),
        None => order(&feat, found)?,
    };
    if wps.is_empty() {
        return Err(CliError::invalid(format!(
            "No WP worktrees or branches found for feature {}; it may already be merged or not yet implemented",
            feat.slug
        )));
    }
    let completed: BTreeSet<String> = state
        .as_ref()
        .map(|s| s.completed_wps.iter().cloned().collect())
        .unwrap_or_default();
    let pending: Vec<&WpBranch> = wps
        .iter()
        .filter(|w| !completed.contains(&w.wp_id))
        .collect();

    // Checks that change nothing: lanes, clean worktrees, clean checkout.
    let lanes = crate::status::store::snapshot(&feat)?;
    let wp_files = feature::load_wps(&feat)?;
    let mut errors = Vec::new();
    for w in &pending {
        let lane = lanes
            .work_packages
            .get(&w.wp_id)
            .map_or(Lane::Planned, |s| s.lane);
        if !matches!(lane, Lane::Approved | Lane::Done | Lane::ForReview) {
            errors.push(format!(
                "  - {}: in lane {}; merge lands reviewed work (for_review or approved)",
                w.wp_id,
                lane.as_wire()
            ));
        } else if lane == Lane::ForReview && recorded_review(&feat, &wp_files, &w.wp_id).is_none() {
            errors.push(format!(
                "  - {}: in for_review with no approval on record (review_status: approved and reviewed_by); approve it first (agent tasks move-task {} --to approved --reviewer NAME)",
                w.wp_id, w.wp_id
            ));
        }
        if !branch_exists(&root, &w.branch) {
            errors.push(format!(
                "  - {}: branch {} does not exist",
                w.wp_id, w.branch
            ));
        } else if w.worktree.exists() {
            if let Ok(s) = git(&w.worktree, &["status", "--porcelain"]) {
                if !s.trim().is_empty() {
                    errors.push(format!(
                        "  - {}: worktree {} has uncommitted changes; commit them on {} first",
                        w.wp_id,
                        super::rel(&ctx, &w.worktree),
                        w.branch
                    ));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(CliError::refused(format!(
            "Cannot merge {}: WP workspaces not ready\n{}",
            feat.slug,
            errors.join("\n")
        )));
    }
    let plan = effective(&root, &target, &pending);

    if a.dry_run {
        return dry_run(&ctx, &feat, &target, &strategy, &a, &wps, &plan);
    }
    if !a.json {
        out.line(&format!(
            "Merging {} into {} ({} work packages, strategy {strategy})",
            feat.slug,
            out.cyan(&target),
            wps.len()
        ));
    }

    let dirty = git(&root, &["status", "--porcelain", "--untracked-files=no"])?;
    if !dirty.trim().is_empty() {
        return Err(CliError::refused(format!(
            "Working directory {} has uncommitted changes:\n{}\nCommit or stash them before merging.",
            root.display(),
            dirty.trim_end()
        )));
    }

    let mut state = match state {
        Some(s) => s,
        None => {
            let original_branch = git(&root, &["symbolic-ref", "-q", "--short", "HEAD"])
                .ok()
                .map(|s| s.trim().to_string());
            let start_head = git(&root, &["rev-parse", &format!("refs/heads/{target}")])?
                .trim()
                .to_string();
            let undo = Undo {
                feature_slug: feat.slug.clone(),
                start_head,
                original_branch,
                branches: wps
                    .iter()
                    .filter_map(|w| tip(&root, &w.branch).map(|t| (w.branch.clone(), t)))
                    .collect(),
                worktrees: wps
                    .iter()
                    .filter(|w| w.worktree.exists())
                    .map(|w| super::rel(&ctx, &w.worktree))
                    .collect(),
            };
            save_json(&root, UNDO_FILE, &undo)?;
            let now = crate::status::store::now_iso();
            let s = MergeState {
                feature_slug: feat.slug.clone(),
                target_branch: target.clone(),
                wp_order: wps.iter().map(|w| w.wp_id.clone()).collect(),
                completed_wps: Vec::new(),
                current_wp: None,
                has_pending_conflicts: false,
                strategy: strategy.clone(),
                started_at: now.clone(),
                updated_at: now,
            };
            save_json(&root, STATE_FILE, &s)?;
            s
        }
    };
    let undo = load_json::<Undo>(&root, UNDO_FILE)?;
    let start_head = undo.as_ref().map(|u| u.start_head.clone());

    let current = git(&root, &["symbolic-ref", "-q", "--short", "HEAD"]).unwrap_or_default();
    if current.trim() != target {
        git(&root, &["checkout", "-q", &target]).map_err(|e| {
            CliError::io(format!(
                "cannot switch {} to {target}: {}",
                root.display(),
                e
            ))
        })?;
    }

    let mut merged = Vec::new();
    let mut done = Vec::new();
    let mut events = Vec::new();
    for w in &wps {
        if state.completed_wps.contains(&w.wp_id) {
            continue;
        }
        state.current_wp = Some(w.wp_id.clone());
        save_state(&root, &mut state)?;
        let subject = format!("Merge {} from {}", w.wp_id, feat.slug);
        let landed = is_ancestor(&root, &w.branch, "HEAD")
            || start_head
                .as_deref()
                .is_some_and(|s| has_subject_since(&root, s, &subject));
        if !landed && plan.contains(&w.wp_id) {
            out.line(&format!("Merging {} ({})...", w.wp_id, w.branch));
            merge_one(out, &root, &feat, w, &strategy, &subject, &mut state)?;
            merged.push(w.wp_id.clone());
            crash_point("after-wp-merge");
        }
        // Every WP the target now holds moves to done, in order.
        // The WP merge subjects on the target since the start, read once.
        let landed_subjects: BTreeSet<String> = start_head
            .as_deref()
            .and_then(|s| git(&root, &["log", "--format=%s", &format!("{s}..HEAD")]).ok())
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default();
        for d in &wps {
            if state.completed_wps.contains(&d.wp_id) {
                continue;
            }
            // In the target: an ancestor of HEAD, or (squash) of a
            // branch whose squash commit is there.
            let contained = is_ancestor(&root, &d.branch, "HEAD")
                || wps.iter().any(|e| {
                    landed_subjects.contains(&format!("Merge {} from {}", e.wp_id, feat.slug))
                        && is_ancestor(&root, &d.branch, &e.branch)
                });
            if !contained {
                continue;
            }
            let landing = Landing {
                target: &target,
                branch: &d.branch,
                start: start_head.as_deref(),
            };
            if let Some(ev) = mark_done(&ctx, &feat, &wp_files, &d.wp_id, &landing)? {
                events.push(ev);
            }
            crash_point("after-status-write");
            commit_status(
                &ctx,
                &feat,
                &format!("chore: Mark {} done after merge into {target}", d.wp_id),
            );
            done.push(d.wp_id.clone());
            state.completed_wps.push(d.wp_id.clone());
            state.current_wp = None;
            state.has_pending_conflicts = false;
            save_state(&root, &mut state)?;
            out.line(&format!("{} {} merged and done", out.green("✓"), d.wp_id));
            crash_point("between-merges");
        }
    }
    let leftover: Vec<&String> = state
        .wp_order
        .iter()
        .filter(|id| !state.completed_wps.contains(id))
        .collect();
    if !leftover.is_empty() {
        return Err(CliError::io(format!(
            "{} not contained in {target} after the merges; the merge state is kept, run `spec-kitty merge --resume`",
            leftover
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }

    // Status is committed: only now may workspaces go.
    commit_status(
        &ctx,
        &feat,
        &format!("chore: status of {} after merge", feat.slug),
    );
    let mut removed = Vec::new();
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    if !a.keep_worktree {
        for w in &wps {
            if w.worktree.exists() {
                match remove_worktree(&root, &w.worktree) {
                    Ok(()) => {
                        out.line(&format!("{} Removed worktree: {}", out.green("✓"), w.wp_id));
                        removed.push(super::rel(&ctx, &w.worktree));
                        crash_point("during-worktree-removal");
                    }
                    Err(e) => failures.push(format!("{}: {e}", w.wp_id)),
                }
            }
        }
        let _ = git(&root, &["worktree", "prune"]);
    }
    if !a.keep_branch {
        for w in &wps {
            if !branch_exists(&root, &w.branch) {
                continue;
            }
            if w.worktree.exists() && a.keep_worktree {
                continue; // git refuses to delete a checked-out branch
            }
            let r = git(&root, &["branch", "-q", "-d", &w.branch])
                .or_else(|_| git(&root, &["branch", "-q", "-D", &w.branch]));
            match r {
                Ok(_) => {
                    out.line(&format!("{} Deleted branch: {}", out.green("✓"), w.branch));
                    deleted.push(w.branch.clone());
                    crash_point("during-branch-deletion");
                }
                Err(e) => failures.push(format!("{}: git branch -D {}: {e}", w.wp_id, w.branch)),
            }
        }
    }
    remove_file(&root, STATE_FILE)?;
    remove_file(&root, UNDO_FILE)?;
    for f in &failures {
        out.warn(&format!("could not clean up {f}"));
    }
    out.line(&out.green(&format!(
        "✓ Feature {} ({} work packages) merged into {target}",
        feat.slug,
        wps.len()
    )));
    out.json(&json!({
        "result": "merged",
        "feature_slug": feat.slug,
        "target_branch": target,
        "strategy": strategy,
        "merged": merged,
        "done": done,
        "removed_worktrees": removed,
        "deleted_branches": deleted,
        "cleanup_failures": failures,
        "events": events,
        "pushed": false,
    }));
    Ok(())
}

/// Runs the git merge of one WP; a conflict is aborted and reported.
fn merge_one(
    out: &Out,
    root: &Path,
    feat: &Feature,
    w: &WpBranch,
    strategy: &str,
    subject: &str,
    state: &mut MergeState,
) -> Result<(), CliError> {
    let r = if strategy == "squash" {
        git(root, &["merge", "--squash", &w.branch]).and_then(|_| {
            git(
                root,
                &[
                    "commit",
                    "-q",
                    "--no-verify",
                    "--allow-empty",
                    "-m",
                    subject,
                ],
            )
        })
    } else {
        git(
            root,
            &[
                "merge",
                "-q",
                "--no-ff",
                "--no-edit",
                &w.branch,
                "-m",
                subject,
            ],
        )
    };
    let Err(e) = r else {
        return Ok(());
    };
    let files: Vec<String> = git(root, &["diff", "--name-only", "--diff-filter=U"])
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    // Nothing half-merged: the index and tree go back to the target's
    // commit (`--merge` also clears a squash, which has no MERGE_HEAD).
    if git(root, &["merge", "--abort"]).is_err() {
        let _ = git(root, &["reset", "-q", "--merge"]);
    }
    state.has_pending_conflicts = false;
    save_state(root, state)?;
    if files.is_empty() {
        return Err(CliError::io(format!(
            "merging {} ({}) failed: {e}; nothing was merged for it, fix the cause and run `spec-kitty merge --resume`",
            w.wp_id, w.branch
        )));
    }
    let message = format!(
        "Merge of {} ({}) into {} stopped: conflicts in {}. Nothing of {} was merged (git merge --abort). Resolve them on branch {} (e.g. in {}: git merge {}, fix, commit), then run `spec-kitty merge --resume` ({} is the next WP to merge for {}).",
        w.wp_id,
        w.branch,
        state.target_branch,
        files.join(", "),
        w.wp_id,
        w.branch,
        w.worktree.display(),
        state.target_branch,
        w.wp_id,
        feat.slug
    );
    // With --json, the WP and files as fields too; the message on stderr.
    if out.json {
        out.json(&json!({
            "result": "conflict",
            "feature_slug": feat.slug,
            "wp_id": w.wp_id,
            "branch": w.branch,
            "conflicted_files": files,
            "error": message,
        }));
        eprintln!("Error: {message}");
        return Err(CliError::reported(crate::error::Kind::Refused));
    }
    Err(CliError::refused(message))
}

/// A `git merge` of one of our WPs killed half-way leaves MERGE_HEAD at
/// that WP's branch tip (a squash: SQUASH_MSG naming it, the changes
/// staged): roll it back so the WP is merged again from a clean tree.
/// Anything else in progress is the user's and is left alone.
fn undo_killed_git_merge(root: &Path, s: &MergeState) -> Result<Option<String>, CliError> {
    let pending = s
        .wp_order
        .iter()
        .filter(|id| !s.completed_wps.contains(id))
        .filter_map(|id| {
            let branch = format!("{}-{id}", s.feature_slug);
            tip(root, &branch).map(|t| (id.clone(), t))
        });
    let merge_head = tip(root, "MERGE_HEAD");
    let squash_msg = git(root, &["rev-parse", "--git-path", "SQUASH_MSG"])
        .ok()
        .map(|p| root.join(p.trim()))
        .filter(|p| p.exists());
    let squash_text = squash_msg
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    for (id, t) in pending {
        if merge_head.as_deref() == Some(t.as_str()) {
            git(root, &["merge", "--abort"])?;
            return Ok(Some(id));
        }
        if !squash_text.is_empty() && squash_text.contains(&t) {
            git(root, &["reset", "-q", "--merge"])?;
            if let Some(p) = &squash_msg {
                let _ = std::fs::remove_file(p);
            }
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Where a WP landed, for its done evidence.
struct Landing<'a> {
    target: &'a str,
    branch: &'a str,
    /// The target's commit before the merge (`None`: unknown).
    start: Option<&'a str>,
}

/// Moves one merged WP to done (one event) without committing; `None`
/// when it already is done.
fn mark_done(
    ctx: &Ctx,
    feat: &Feature,
    wp_files: &[WpFile],
    wp_id: &str,
    landing: &Landing<'_>,
) -> Result<Option<Value>, CliError> {
    let target = landing.target;
    let evidence = evidence(ctx, feat, wp_files, wp_id, landing);
    let note = format!("Merged {wp_id} into {target}");
    let mv = Move {
        evidence: Some(evidence),
        walk_forward: true,
        ..merge_move(ctx, wp_id, Lane::Done, &note)
    };
    Ok(apply_move(ctx, feat, &mv, &note)?.map(|applied| {
        json!({
            "wp_id": wp_id,
            "from_lane": applied.from.as_wire(),
            "to_lane": "done",
            "event_id": applied.event.event_id,
        })
    }))
}

/// A move made by `merge` (actor `merge`, its workspace context).
fn merge_move(ctx: &Ctx, wp_id: &str, to: Lane, reason: &str) -> Move {
    Move {
        wp_id: wp_id.to_string(),
        to: Some(to),
        actor: "merge".into(),
        reason: Some(reason.to_string()),
        workspace_context: Some(format!("merge:{}", ctx.project.root.display())),
        execution_mode: "worktree".into(),
        ..Move::default()
    }
}

/// Records `mv` through the status path (one event, not committed), with
/// an activity line saying `note`; `None` when the WP already is there.
fn apply_move(
    ctx: &Ctx,
    feat: &Feature,
    mv: &Move,
    note: &str,
) -> Result<Option<lane_move::Applied>, CliError> {
    let to = mv.to.unwrap_or(Lane::Planned);
    let edit = |w: &WpFile, _: Lane, text: &str| -> Result<String, CliError> {
        let shell = w.meta.shell_pid.clone().unwrap_or_default();
        Ok(lane_move::with_activity(text, "merge", &shell, to, note))
    };
    match lane_move::apply(ctx, feat, mv, &edit, &|_| Ok(Vec::new()), None) {
        Ok(applied) => Ok(Some(applied)),
        Err(Failure::Unchanged(_)) => Ok(None),
        Err(Failure::Error(e)) => Err(e),
    }
}

/// The approval on record: the evidence of the event that made the WP
/// approved (its last event), else the frontmatter's `review_status:
/// approved` with `reviewed_by` (2.1.3's `extract_done_evidence`).
fn recorded_review(feat: &Feature, wp_files: &[WpFile], wp_id: &str) -> Option<ReviewApproval> {
    let logged = log::read(&feat.dir).ok().and_then(|events| {
        let last = events.into_iter().rev().find(|l| l.event.wp_id == wp_id)?;
        (last.event.to_lane == Lane::Approved)
            .then_some(last.event.evidence)
            .flatten()
    });
    if let Some(e) = logged {
        return Some(e.review);
    }
    let wp = wp_files.iter().find(|w| w.meta.wp_id == wp_id)?;
    let reviewer = wp.scalar("reviewed_by").filter(|r| !r.trim().is_empty())?;
    (wp.scalar("review_status").as_deref() == Some("approved")).then(|| ReviewApproval {
        reviewer,
        verdict: "approved".into(),
        reference: format!("frontmatter-migration:{wp_id}"),
    })
}

/// The done guard's evidence: the review the log recorded for the WP's
/// approval, else the frontmatter's `reviewed_by`, else 2.1.3's
/// `lane-approved:WPnn` with the WP's agent; plus the target commit and
/// the files the WP's branch changed.
fn evidence(
    ctx: &Ctx,
    feat: &Feature,
    wp_files: &[WpFile],
    wp_id: &str,
    landing: &Landing<'_>,
) -> DoneEvidence {
    let review = recorded_review(feat, wp_files, wp_id).unwrap_or_else(|| {
        // In `approved` with no evidence anywhere: 2.1.3's own fallback.
        let wp = wp_files.iter().find(|w| w.meta.wp_id == wp_id);
        ReviewApproval {
            reviewer: wp
                .and_then(|w| w.scalar("agent"))
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "unknown".into()),
            verdict: "approved".into(),
            reference: format!("lane-approved:{wp_id}"),
        }
    });
    let root = &ctx.project.root;
    DoneEvidence {
        review,
        repos: tip(root, "HEAD")
            .map(|commit| crate::status::RepoEvidence {
                repo: root
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                branch: landing.target.to_string(),
                commit,
                files_touched: landing
                    .start
                    .and_then(|s| {
                        git(
                            root,
                            &["diff", "--name-only", &format!("{s}...{}", landing.branch)],
                        )
                        .ok()
                    })
                    .map(|t| t.lines().map(str::to_string).collect())
                    .unwrap_or_default(),
            })
            .into_iter()
            .collect(),
        verification: Vec::new(),
    }
}

/// The feature's status files that exist: log, snapshot, tasks.md, WPs.
fn status_files(feat: &Feature) -> Vec<PathBuf> {
    let mut files = vec![
        log::path(&feat.dir),
        feat.dir.join(crate::status::reducer::SNAPSHOT_FILE),
        feat.dir.join("tasks.md"),
    ];
    files.extend(feature::wp_paths(feat).unwrap_or_default());
    files.retain(|p| p.exists());
    files
}

/// Moves every WP this merge moved to done back to approved (forced, one
/// event each); returns their ids.
fn revert_done_moves(ctx: &Ctx, feat: &Feature, s: &MergeState) -> Result<Vec<String>, CliError> {
    let events = log::read(&feat.dir)?;
    let mut reverted = Vec::new();
    for id in &s.wp_order {
        let last = events.iter().rev().find(|l| &l.event.wp_id == id);
        if !last.is_some_and(|l| l.event.to_lane == Lane::Done && l.event.actor == "merge") {
            continue;
        }
        let reason = format!("merge of {} aborted", feat.slug);
        let mv = Move {
            force: true,
            ..merge_move(ctx, id, Lane::Approved, &reason)
        };
        apply_move(ctx, feat, &mv, "Merge aborted")?;
        reverted.push(id.clone());
    }
    Ok(reverted)
}

/// Commits the feature's status files (log, snapshot, tasks.md, WP files)
/// if they changed; a failure warns.
fn commit_status(ctx: &Ctx, feat: &Feature, message: &str) {
    let files = status_files(feat);
    let mut args: Vec<String> = vec!["status".into(), "--porcelain".into(), "--".into()];
    args.extend(files.iter().map(|p| p.to_string_lossy().into_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let changed = git(&ctx.project.root, &args).is_ok_and(|s| !s.trim().is_empty());
    if changed {
        lane_move::commit(ctx, &files, message);
    }
}

fn dry_run(
    ctx: &Ctx,
    feat: &Feature,
    target: &str,
    strategy: &str,
    a: &MergeArgs,
    wps: &[WpBranch],
    plan: &[String],
) -> Result<(), CliError> {
    let effective: Vec<&WpBranch> = wps.iter().filter(|w| plan.contains(&w.wp_id)).collect();
    let mut steps = vec![format!("git checkout {target}")];
    for w in &effective {
        let subject = format!("Merge {} from {}", w.wp_id, feat.slug);
        if strategy == "squash" {
            steps.push(format!("git merge --squash {}", w.branch));
            steps.push(format!("git commit -m '{subject}'"));
        } else {
            steps.push(format!("git merge --no-ff {} -m '{subject}'", w.branch));
        }
    }
    if !a.keep_worktree {
        for w in wps {
            if w.worktree.exists() {
                steps.push(format!("git worktree remove {}", w.worktree.display()));
            } else {
                steps.push(format!(
                    "# skip worktree removal for {} (path not present)",
                    w.wp_id
                ));
            }
        }
    }
    if !a.keep_branch {
        for w in wps {
            steps.push(format!("git branch -d {}", w.branch));
        }
    }
    let root = &ctx.project.root;
    let in_target: Vec<Value> = wps
        .iter()
        .filter(|w| is_ancestor(root, &w.branch, target))
        .map(|w| json!({"wp_id": w.wp_id, "branch": w.branch}))
        .collect();
    let mut ancestor_of = serde_json::Map::new();
    for w in wps
        .iter()
        .filter(|w| !plan.contains(&w.wp_id) && !is_ancestor(root, &w.branch, target))
    {
        let sup: Vec<Value> = effective
            .iter()
            .filter(|o| is_ancestor(root, &w.branch, &o.branch))
            .map(|o| Value::from(o.branch.clone()))
            .collect();
        ancestor_of.insert(w.branch.clone(), Value::Array(sup));
    }
    let mut reasons = Vec::new();
    if !in_target.is_empty() {
        reasons.push(format!(
            "Skipped {} branch(es) already integrated into {target}.",
            in_target.len()
        ));
    }
    if !ancestor_of.is_empty() {
        reasons.push(format!(
            "Skipped {} branch(es) that are ancestors of another candidate tip.",
            ancestor_of.len()
        ));
    }
    if effective.is_empty() {
        reasons.push("No effective branches remain; feature appears already integrated.".into());
    } else if effective.len() == 1 && wps.len() > 1 {
        reasons.push("Single effective tip contains all remaining work-package commits.".into());
    }
    let out = &ctx.out;
    out.line("Dry run - would execute:");
    for (i, s) in steps.iter().enumerate() {
        out.line(&format!("  {}. {s}", i + 1));
    }
    for r in &reasons {
        out.line(&format!("  - {r}"));
    }
    out.json(&json!({
        "spec_kitty_version": env!("CARGO_PKG_VERSION"),
        "feature_slug": feat.slug,
        "target_branch": target,
        "all_wp_branches": wps.iter().map(|w| w.branch.clone()).collect::<Vec<_>>(),
        "effective_wp_branches": effective.iter().map(|w| w.branch.clone()).collect::<Vec<_>>(),
        "skipped_already_in_target": in_target,
        "skipped_ancestor_of": ancestor_of,
        "planned_steps": steps,
        "reason_summary": reasons,
    }));
    Ok(())
}

/// `--abort`: drop an in-progress git merge, revert the merge's done moves
/// through the status path, put the target branch back on its commit from
/// before the merge (plus one commit of the status files, whose log keeps
/// the history), recreate deleted branches and removed worktrees, switch
/// back to the branch the checkout was on, and clear the state.
fn abort(ctx: &Ctx, root: &Path) -> Result<(), CliError> {
    let out = &ctx.out;
    let had_git_merge = git(root, &["rev-parse", "-q", "--verify", "MERGE_HEAD"]).is_ok();
    if had_git_merge {
        let _ = git(root, &["merge", "--abort"]);
        out.line(&format!("{} Git merge aborted", out.green("✓")));
    }
    // A broken state file is dropped too (it cannot be resumed).
    let state = load_json::<MergeState>(root, STATE_FILE).ok().flatten();
    let undo = load_json::<Undo>(root, UNDO_FILE).ok().flatten();
    if state.is_none() && undo.is_none() && !root.join(STATE_FILE).exists() {
        out.line("No merge state to abort");
        out.json(&json!({"result": "unchanged", "git_merge_aborted": had_git_merge}));
        return Ok(());
    }
    let mut restored = Vec::new();
    if let (Some(u), Some(s)) = (&undo, &state) {
        let feat = ctx.feature(Some(&u.feature_slug))?;
        // The status log is append-only and its events are on the wire:
        // the merge's done moves are reverted through the status path
        // (one forced done → approved each), and the status files keep
        // that history across the reset below.
        let reverted = revert_done_moves(ctx, &feat, s)?;
        let files = status_files(&feat);
        let saved: Vec<(PathBuf, Vec<u8>)> = files
            .iter()
            .filter_map(|p| std::fs::read(p).ok().map(|b| (p.clone(), b)))
            .collect();
        let mut args: Vec<String> = vec!["checkout".into(), "HEAD".into(), "--".into()];
        args.extend(
            files
                .iter()
                .filter(|p| {
                    git(root, &["ls-files", "--error-unmatch", &p.to_string_lossy()]).is_ok()
                })
                .map(|p| p.to_string_lossy().into_owned()),
        );
        if args.len() > 3 {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = git(root, &args);
        }
        let current = git(root, &["symbolic-ref", "-q", "--short", "HEAD"]).unwrap_or_default();
        if current.trim() != s.target_branch {
            git(root, &["checkout", "-q", &s.target_branch])?;
        }
        git(root, &["reset", "-q", "--keep", &u.start_head]).map_err(|e| {
            CliError::refused(format!(
                "cannot put {} back on {}: {e}; commit or stash your changes and run `spec-kitty merge --abort` again",
                s.target_branch, u.start_head
            ))
        })?;
        if !reverted.is_empty() {
            for (p, bytes) in &saved {
                fsutil::write_repo_file(root, p, bytes)?;
            }
            commit_status(
                ctx,
                &feat,
                &format!("chore: status of {} after merge abort", feat.slug),
            );
        }
        for (branch, tip) in &u.branches {
            if !branch_exists(root, branch) {
                git(root, &["branch", branch, tip])?;
                restored.push(branch.clone());
            }
        }
        for wt in &u.worktrees {
            let path = root.join(wt);
            if !path.join(".git").exists() {
                let branch = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let _ = git(root, &["worktree", "prune"]);
                if path.exists() {
                    std::fs::remove_dir_all(&path)
                        .map_err(|e| CliError::io_at("remove", &path, &e))?;
                }
                git(
                    root,
                    &["worktree", "add", "-q", &path.to_string_lossy(), &branch],
                )?;
                restored.push(wt.clone());
            }
        }
        if let Some(b) = &u.original_branch {
            if b != &s.target_branch {
                git(root, &["checkout", "-q", b])?;
            }
        }
    }
    remove_file(root, STATE_FILE)?;
    remove_file(root, UNDO_FILE)?;
    let slug = state.as_ref().map(|s| s.feature_slug.clone());
    if let Some(s) = &state {
        out.line(&format!(
            "{} Merge state cleared for {}",
            out.green("✓"),
            s.feature_slug
        ));
        out.line(&format!(
            "  Progress was: {}/{} WPs complete",
            s.completed_wps.len(),
            s.wp_order.len()
        ));
    }
    out.json(&json!({
        "result": "aborted",
        "feature_slug": slug,
        "git_merge_aborted": had_git_merge,
        "restored": restored,
    }));
    Ok(())
}

/// The target: `--target`, else meta.json's `target_branch`, else `main`
/// or `master`, else the current branch; it must exist locally.
fn resolve_target(root: &Path, feat: &Feature, flag: Option<&str>) -> Result<String, CliError> {
    let from_meta = || {
        std::fs::read_to_string(feat.meta_path())
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v.get("target_branch")?.as_str().map(str::to_string))
            .filter(|s| !s.trim().is_empty())
    };
    let (target, source) = match flag {
        Some(t) => (t.to_string(), String::new()),
        None => match from_meta() {
            Some(t) => (t, " (from meta.json)".to_string()),
            None => {
                let t = ["main", "master"]
                    .into_iter()
                    .find(|b| branch_exists(root, b))
                    .map(str::to_string)
                    .or_else(|| {
                        git(root, &["symbolic-ref", "-q", "--short", "HEAD"])
                            .ok()
                            .map(|s| s.trim().to_string())
                    })
                    .unwrap_or_else(|| "main".into());
                (t, " (resolved as primary branch)".to_string())
            }
        },
    };
    if !branch_exists(root, &target) {
        return Err(CliError::invalid(format!(
            "Target branch '{target}'{source} does not exist locally. Check {}.",
            feat.meta_path()
                .strip_prefix(root)
                .unwrap_or(&feat.meta_path())
                .display()
        )));
    }
    Ok(target)
}

/// Every `<slug>-WPnn` worktree under `.worktrees/` and local branch.
fn find_wp_branches(root: &Path, slug: &str) -> Result<Vec<WpBranch>, CliError> {
    let mut ids = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(root.join(".worktrees")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = wp_suffix(&name, slug) {
                ids.insert(id);
            }
        }
    }
    let refs = git(
        root,
        &[
            "for-each-ref",
            "--format=%(refname:short)",
            &format!("refs/heads/{slug}-WP*"),
        ],
    )?;
    for line in refs.lines() {
        if let Some(id) = wp_suffix(line.trim(), slug) {
            ids.insert(id);
        }
    }
    Ok(ids
        .into_iter()
        .map(|id| wp_branch(root, slug, &id))
        .collect())
}

fn wp_suffix(name: &str, slug: &str) -> Option<String> {
    let id = name.strip_prefix(slug)?.strip_prefix('-')?;
    (id.len() == 4 && id.starts_with("WP") && id[2..].bytes().all(|b| b.is_ascii_digit()))
        .then(|| id.to_string())
}

fn wp_branch(root: &Path, slug: &str, wp_id: &str) -> WpBranch {
    let branch = format!("{slug}-{wp_id}");
    WpBranch {
        wp_id: wp_id.to_string(),
        worktree: root.join(".worktrees").join(&branch),
        branch,
    }
}

/// Dependency order (2.1.3's `get_merge_order`): dependencies first, WP
/// number breaking ties; a cycle is an error naming it.
fn order(feat: &Feature, wps: Vec<WpBranch>) -> Result<Vec<WpBranch>, CliError> {
    let files = feature::load_wps(feat)?;
    let deps: BTreeMap<String, Vec<String>> = files
        .iter()
        .map(|w| (w.meta.wp_id.clone(), w.meta.dependencies.clone()))
        .collect();
    let ids: Vec<String> = wps.iter().map(|w| w.wp_id.clone()).collect();
    let sorted = topo(&ids, &deps)?;
    let mut by_id: BTreeMap<String, WpBranch> =
        wps.into_iter().map(|w| (w.wp_id.clone(), w)).collect();
    Ok(sorted
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect())
}

/// Kahn's algorithm over `ids` (dependencies outside `ids` are ignored:
/// they are merged already or have no branch), smallest id first.
fn topo(ids: &[String], deps: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, CliError> {
    let set: BTreeSet<&String> = ids.iter().collect();
    let mut left: BTreeSet<&String> = set.clone();
    let mut out = Vec::new();
    while !left.is_empty() {
        let next = left.iter().copied().find(|id| {
            deps.get(*id)
                .into_iter()
                .flatten()
                .all(|d| !set.contains(d) || out.contains(d))
        });
        match next {
            Some(id) => {
                out.push(id.clone());
                left.remove(id);
            }
            None => {
                let cycle: Vec<&str> = left.iter().map(|s| s.as_str()).collect();
                return Err(CliError::invalid(format!(
                    "Circular dependency detected among {}; fix the `dependencies:` in their WP frontmatter",
                    cycle.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

/// The WPs whose branch gets merged on its own: not in the target yet and
/// not an ancestor of another candidate's branch (2.1.3's effective tips).
fn effective(root: &Path, target: &str, wps: &[&WpBranch]) -> Vec<String> {
    let candidates: Vec<&&WpBranch> = wps
        .iter()
        .filter(|w| branch_exists(root, &w.branch) && !is_ancestor(root, &w.branch, target))
        .collect();
    candidates
        .iter()
        .filter(|w| {
            !candidates
                .iter()
                .any(|o| o.branch != w.branch && is_ancestor(root, &w.branch, &o.branch))
        })
        .map(|w| w.wp_id.clone())
        .collect()
}

fn remove_worktree(root: &Path, path: &Path) -> Result<(), String> {
    let p = path.to_string_lossy();
    if git(root, &["worktree", "remove", "--force", &p]).is_ok() {
        return Ok(());
    }
    // Half-removed by a crash: finish by hand, then let git forget it.
    std::fs::remove_dir_all(path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    let _ = git(root, &["worktree", "prune"]);
    Ok(())
}

pub(crate) fn git(dir: &Path, args: &[&str]) -> Result<String, CliError> {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| CliError::io(format!("cannot run git in {}: {e}", dir.display())))?;
    if !o.status.success() {
        return Err(CliError::io(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

pub(crate) fn branch_exists(root: &Path, branch: &str) -> bool {
    git(
        root,
        &[
            "show-ref",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    )
    .is_ok()
}

pub(crate) fn tip(root: &Path, rev: &str) -> Option<String> {
    git(
        root,
        &["rev-parse", "-q", "--verify", &format!("{rev}^{{commit}}")],
    )
    .ok()
    .map(|s| s.trim().to_string())
}

pub(crate) fn is_ancestor(root: &Path, a: &str, b: &str) -> bool {
    git(root, &["merge-base", "--is-ancestor", a, b]).is_ok()
}

/// Whether a commit since `start` on HEAD has exactly `subject` (how a
/// squash merge is recognised after a crash).
fn has_subject_since(root: &Path, start: &str, subject: &str) -> bool {
    git(root, &["log", "--format=%s", &format!("{start}..HEAD")])
        .is_ok_and(|s| s.lines().any(|l| l == subject))
}

fn load_json<T: serde::de::DeserializeOwned>(
    root: &Path,
    rel: &str,
) -> Result<Option<T>, CliError> {
    let path = root.join(rel);
    let Some(bytes) = fsutil::read_repo_file(root, &path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        CliError::invalid(format!(
            "{}: not a merge state file ({e}); run `spec-kitty merge --abort` to drop it",
            path.display()
        ))
    })
}

fn save_json<T: serde::Serialize>(root: &Path, rel: &str, v: &T) -> Result<(), CliError> {
    let path = root.join(rel);
    let mut text = serde_json::to_string_pretty(v).expect("state serialises");
    text.push('\n');
    fsutil::write_repo_file(root, &path, text.as_bytes())
}

fn save_state(root: &Path, s: &mut MergeState) -> Result<(), CliError> {
    s.updated_at = crate::status::store::now_iso();
    save_json(root, STATE_FILE, s)
}

fn remove_file(root: &Path, rel: &str) -> Result<(), CliError> {
    let path = root.join(rel);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::io_at("remove", &path, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_cycles_are_named() {
        let ids: Vec<String> = ["WP01", "WP02", "WP03"].map(String::from).to_vec();
        let mut deps = BTreeMap::new();
        deps.insert("WP01".to_string(), vec!["WP03".to_string()]);
        assert_eq!(topo(&ids, &deps).unwrap(), vec!["WP02", "WP03", "WP01"]);
        deps.insert("WP03".to_string(), vec!["WP01".to_string()]);
        let e = topo(&ids, &deps).unwrap_err();
        assert!(e.message.contains("WP01, WP03"), "{}", e.message);
    }

    #[test]
    fn only_wp_suffixes_of_the_feature_count() {
        assert_eq!(
            wp_suffix("001-demo-WP02", "001-demo").as_deref(),
            Some("WP02")
        );
        assert_eq!(wp_suffix("001-demo-x-WP02", "001-demo"), None);
        assert_eq!(wp_suffix("001-demo-WP2", "001-demo"), None);
    }
}
