//! `spec-kitty implement WP [--base WPnn] [--force] ...`: start a work
//! package as spec-kitty 2.1.3 does — a git worktree `.worktrees/<feature>-WPnn`
//! on branch `<feature>-WPnn`, branched from where its dependencies' work is:
//!
//! - no dependency: the current branch (2.1.3 respects the user's branch);
//!   uncommitted planning files of the feature are committed first
//!   (`chore: Planning artifacts for <feature>`), on the target branch only;
//! - one dependency (or `--base`): that WP's branch; a dependency already
//!   `done` and merged into the target branch gives the target branch;
//! - several: a branch `<feature>-WPnn-merge-base` merging their branches
//!   (or the target branch when all of them are done and merged); all of
//!   them done but unmerged is refused unless `--force` (merge them first).
//!
//! A dependency that is not started (no worktree, not done) is refused with
//! what to run. The worktree is sparse (2.1.3's patterns: `kitty-specs/`
//! stays in the main checkout, where the status files live), its context
//! goes to `.kittify/workspaces/<feature>-WPnn.json`, meta.json gets the VCS
//! lock, the frontmatter `agent`, `shell_pid`, `base_branch`, `base_commit`,
//! `created_at`, and the lane planned → in_progress goes through the status
//! model: ONE status event (recorded as one forced step through claimed,
//! which 2.1.3's validator accepts), ONE WPStatusChanged and, with
//! `--agent`, one WPAssigned caused by it; committed as
//! `chore: WPnn claimed for implementation`. An existing workspace is reused
//! as 2.1.3 reuses it: nothing else changes.
//!
//! [`start`] is the whole of it without printing the result, for commands
//! that start a WP on the way (`agent workflow implement`).

use super::lane_move::{self, Applied, Failure};
use super::merge::{branch_exists, git, is_ancestor, tip};
use super::{rel, Ctx};
use crate::cli::ImplementArgs;
use crate::emit::events_json;
use crate::error::CliError;
use crate::feature::{self, Feature};
use crate::fsutil;
use crate::gitcommit;
use crate::output::Out;
use crate::status::store::{self, Move};
use crate::wpfile::WpFile;
use spec_kitty_protocol::envelope::{EventEnvelope, Payload, WpAssigned};
use spec_kitty_protocol::Lane;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to start and how.
#[derive(Debug, Clone, Default)]
pub struct StartOpts {
    pub wp_id: String,
    /// `--base WPnn`: branch from that WP's work instead of the dependencies.
    pub base: Option<String>,
    /// `--force`: merge several dependencies even when all are done.
    pub force: bool,
    /// The agent taking it (frontmatter `agent`, a WPAssigned event).
    pub agent: Option<String>,
    /// No worktree: the WP is worked on in the main checkout.
    pub no_worktree: bool,
    /// `None`: the project's config (2.1.3's rule).
    pub auto_commit: Option<bool>,
}

/// What [`start`] did.
#[derive(Debug)]
pub struct Started {
    pub wp_id: String,
    pub feature: String,
    /// The worktree (absolute); `None` with `--no-worktree` or outside git.
    pub workspace: Option<PathBuf>,
    /// `<feature>-WPnn`.
    pub branch: String,
    /// What the branch was made from (a branch name) and its commit.
    pub base_branch: String,
    pub base_commit: String,
    /// 2.1.3's JSON `base`: the base WP, else the primary branch.
    pub base: String,
    /// `created`, or `reused` when the workspace existed already.
    pub status: &'static str,
    /// The lane move; `None` when the WP was in progress already.
    pub applied: Option<Applied>,
}

pub fn run(out: &Out, a: ImplementArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let opts = StartOpts {
        wp_id: a.wp_id.clone(),
        base: a.base.clone(),
        force: a.force,
        agent: a.agent.clone(),
        no_worktree: a.no_worktree,
        auto_commit: a.commit.flag(),
    };
    start_and_report(out, &ctx, &feat, &opts)
}

/// [`start`], then what `implement` prints (text or `--json`); also what
/// `agent workflow implement` runs when the workspace is missing.
pub fn start_and_report(
    out: &Out,
    ctx: &Ctx,
    feat: &Feature,
    opts: &StartOpts,
) -> Result<(), CliError> {
    let s = start(ctx, feat, opts)?;
    match &s.applied {
        Some(_) => out.line(&format!(
            "{} {} moved to in_progress",
            out.green("✓"),
            out.bold(&s.wp_id)
        )),
        None if s.status == "created" => out.line(&format!("{} is already in progress", s.wp_id)),
        None => {}
    }
    if let Some(w) = &s.workspace {
        out.line(&format!(
            "  workspace: {} (branch {}, from {} @ {})",
            rel(ctx, w),
            out.cyan(&s.branch),
            s.base_branch,
            s.base_commit.get(..7).unwrap_or(&s.base_commit)
        ));
        out.line(&format!(
            "  Change to the workspace before making any change: cd {}",
            w.display()
        ));
    }
    let workspace = s.workspace.as_ref().map(|w| rel(ctx, w));
    let mut v = serde_json::json!({
        // 2.1.3's keys.
        "workspace": workspace,
        "workspace_path": workspace,
        "branch": s.workspace.as_ref().map(|_| s.branch.clone()),
        "feature": s.feature,
        "wp_id": s.wp_id,
        "base": s.base,
        "status": s.status,
        // Ours.
        "result": "success",
        "base_branch": s.base_branch,
        "base_commit": s.base_commit,
        "lane": "in_progress",
        "events": serde_json::json!([]),
    });
    if let Some(applied) = &s.applied {
        v["events"] = events_json(&applied.envs, &applied.deliveries);
        v["event_id"] = serde_json::json!(applied.event.event_id);
    }
    out.json(&v);
    Ok(())
}

/// Starts `opts.wp_id` of `feat`: the workspace on its dependency-aware
/// base, then the lane move (see the module docs). Prints progress notes
/// (quiet under `--json`), not the result.
pub fn start(ctx: &Ctx, feat: &Feature, opts: &StartOpts) -> Result<Started, CliError> {
    let wp_id = opts.wp_id.as_str();
    feature::check_wp_id(wp_id)?;
    if let Some(b) = &opts.base {
        feature::check_wp_id(b)?;
    }
    let agent = match opts.agent.as_deref().map(str::trim) {
        Some("") => return Err(CliError::invalid("--agent must not be empty")),
        a => a,
    };
    let root = ctx.project.root.as_path();
    if let Some(g) = ctx.project.git_root.as_deref() {
        if g != root {
            return Err(CliError::refused(format!(
                "implement runs in the main checkout ({}), not inside a worktree ({}): cd {} first",
                root.display(),
                g.display(),
                root.display()
            )));
        }
    }
    let path = feature::find_wp(feat, wp_id)?;
    let wp = WpFile::read(&path)?;
    let deps = wp.meta.dependencies.clone();
    let lanes: BTreeMap<String, Lane> = store::snapshot(feat)?
        .work_packages
        .iter()
        .map(|(id, s)| (id.clone(), s.lane))
        .collect();
    let lane_of = |id: &str| lanes.get(id).copied().unwrap_or(Lane::Planned);
    let from = lane_of(wp_id);
    if !matches!(from, Lane::Planned | Lane::Claimed | Lane::InProgress) {
        return Err(CliError::refused(format!(
            "{wp_id} is in {} ({}); implement starts work packages that are planned. Use `spec-kitty agent tasks move-task {wp_id} --to doing` to reopen it.",
            from.as_wire(),
            rel(ctx, &path),
        )));
    }
    let branch = format!("{}-{wp_id}", feat.slug);
    let commit = lane_move::auto_commit(ctx, opts.auto_commit);
    let use_git = !opts.no_worktree && ctx.project.git_root.is_some();
    let mut base_wp = opts.base.clone();
    let mut meta_changed = false;
    let mut base_branch = ctx.git.branch.clone().unwrap_or_else(|| "HEAD".into());
    let mut base_commit = ctx.git.head_sha.clone().unwrap_or_else(|| "unknown".into());
    let mut status = "created";
    let created_at = store::now_iso();
    let worktree = if use_git {
        let plan = choose_base(ctx, feat, wp_id, &deps, opts, &lane_of)?;
        base_wp = plan.base_wp.clone();
        let dir = root.join(".worktrees").join(&branch);
        if is_worktree(&dir) {
            reuse_notes(ctx, &dir, wp_id);
            status = "reused";
            // Its base as recorded when it was made.
            let recorded = std::fs::read_to_string(context_path(ctx, &feat.slug, wp_id))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
            let field = |k: &str| {
                recorded
                    .as_ref()
                    .and_then(|v| v.get(k)?.as_str().map(str::to_string))
            };
            if let (Some(b), Some(c)) = (field("base_branch"), field("base_commit")) {
                base_branch = b;
                base_commit = c;
            }
            // 2.1.3's stale-base note: the base moved on since.
            if branch_exists(root, &base_branch) && !is_ancestor(root, &base_branch, &branch) {
                ctx.out.warn(&format!(
                    "base branch {base_branch} has changed since {wp_id}'s workspace was made; to take it: cd {} && git rebase {base_branch}",
                    dir.display()
                ));
            }
        } else {
            if dir.exists() {
                return Err(CliError::invalid(format!(
                    "{} exists but is not a git worktree; remove it (rm -rf {}) and run implement again",
                    dir.display(),
                    dir.display()
                )));
            }
            if plan.base_wp.is_none() {
                commit_planning(ctx, feat, wp_id, commit)?;
            }
            meta_changed = lock_vcs(feat)?;
            base_branch = resolve_base_branch(ctx, feat, wp_id, &deps, &plan, &lane_of)?;
            create_worktree(root, &dir, &branch, &base_branch)?;
            sparse_checkout(&dir)?;
            base_commit = tip(root, &base_branch).unwrap_or_else(|| "unknown".into());
            ctx.out.line(&format!(
                "→ Sparse-checkout configured (kitty-specs/ excluded, agents read from main); base {base_branch} @ {}",
                base_commit.get(..7).unwrap_or(&base_commit)
            ));
            let created_by = if plan.multi {
                "implement-command-multi-parent-merge"
            } else {
                "implement-command"
            };
            write_workspace_context(
                ctx,
                &feat.slug,
                wp_id,
                &dir,
                &branch,
                &base_branch,
                &base_commit,
                &deps,
                &created_at,
                created_by,
            )?;
        }
        Some(dir)
    } else {
        None
    };
    let base = base_wp.clone().unwrap_or_else(|| primary_branch(ctx, root));
    let mut started = Started {
        wp_id: wp_id.to_string(),
        feature: feat.slug.clone(),
        workspace: worktree.clone(),
        branch: branch.clone(),
        base_branch: base_branch.clone(),
        base_commit: base_commit.clone(),
        base,
        status,
        applied: None,
    };
    if status == "reused" {
        // 2.1.3 stops here: the workspace, its base and the lane stay.
        return Ok(started);
    }
    let new_workspace = worktree.is_some();
    let base_fields = |path: &Path, text: &str| -> Result<String, CliError> {
        let mut t = text.to_string();
        if new_workspace {
            t = lane_move::set_scalar(path, &t, "base_branch", &base_branch)?;
            t = lane_move::set_scalar(path, &t, "base_commit", &base_commit)?;
            t = lane_move::set_scalar(path, &t, "created_at", &created_at)?;
        }
        Ok(t)
    };
    if from == Lane::InProgress {
        // No lane move (2.1.3 moves planned WPs only); the new workspace's
        // base is still recorded, uncommitted, as 2.1.3 leaves it.
        if new_workspace {
            let text = base_fields(&path, &wp.text)?;
            fsutil::write_repo_file(root, &path, text.as_bytes())?;
        }
        return Ok(started);
    }
    let shell_pid = std::os::unix::process::parent_id().to_string();
    let action = match &worktree {
        Some(w) => format!("Started implementation in {}", rel(ctx, w)),
        None => "Started implementation".into(),
    };
    let mv = Move {
        wp_id: wp_id.to_string(),
        to: Some(Lane::InProgress),
        actor: agent.unwrap_or("user").to_string(),
        reason: Some(action.clone()),
        workspace_context: Some(match &worktree {
            Some(w) => format!("worktree:{}", w.display()),
            None => format!("direct_repo:{}", root.display()),
        }),
        execution_mode: if worktree.is_some() {
            "worktree"
        } else {
            "direct_repo"
        }
        .into(),
        walk_forward: true,
        ..Move::default()
    };
    let history_agent = agent
        .map(str::to_string)
        .or_else(|| wp.meta.agent.clone())
        .unwrap_or_else(|| "unknown".into());
    let edit = |w: &WpFile, _from: Lane, text: &str| -> Result<String, CliError> {
        let mut t = text.to_string();
        if let Some(agent) = agent {
            t = lane_move::set_scalar(&w.path, &t, "agent", agent)?;
        }
        t = lane_move::set_scalar(&w.path, &t, "shell_pid", &shell_pid)?;
        t = base_fields(&w.path, &t)?;
        Ok(lane_move::with_activity(
            &t,
            &history_agent,
            &shell_pid,
            Lane::InProgress,
            &action,
        ))
    };
    let follow_up = |status: &EventEnvelope| -> Result<Vec<EventEnvelope>, CliError> {
        let Some(agent) = agent else {
            return Ok(Vec::new());
        };
        Ok(vec![ctx.emitter.build(
            &Payload::WPAssigned(WpAssigned {
                wp_id: wp_id.to_string(),
                agent_id: agent.to_string(),
                phase: "implementation".into(),
                retry_count: 0,
            }),
            Some(status.event_id.clone()),
        )?])
    };
    let mut applied = match lane_move::apply(ctx, feat, &mv, &edit, &follow_up, None) {
        Ok(x) => x,
        Err(Failure::Unchanged(_)) => {
            return Err(CliError::io(format!(
                "{wp_id} changed lane while implement ran; run it again"
            )))
        }
        Err(Failure::Error(e)) => return Err(e),
    };
    if commit {
        // The status files, plus meta.json when the VCS lock was written
        // (2.1.3 commits the WP file with meta.json).
        let mut files = applied.files.clone();
        if meta_changed {
            files.push(feat.meta_path());
        }
        let message = format!("chore: {wp_id} claimed for implementation");
        applied.committed = lane_move::commit(ctx, &files, &message);
    }
    started.applied = Some(applied);
    Ok(started)
}

/// The base decided from the dependencies before anything is written.
#[derive(Debug)]
struct BasePlan {
    /// The WP whose work the branch starts from (`--base` or the only
    /// dependency).
    base_wp: Option<String>,
    /// Several dependencies, no `--base`: a merge of their branches.
    multi: bool,
}

/// 2.1.3's dependency rules; a dependency not far enough along is refused
/// here, before anything is written.
fn choose_base(
    ctx: &Ctx,
    feat: &Feature,
    wp_id: &str,
    deps: &[String],
    opts: &StartOpts,
    lane_of: &dyn Fn(&str) -> Lane,
) -> Result<BasePlan, CliError> {
    let root = ctx.project.root.as_path();
    let dep_branch = |d: &str| format!("{}-{d}", feat.slug);
    if deps.len() > 1 && opts.base.is_none() {
        let all_done = deps.iter().all(|d| lane_of(d) == Lane::Done);
        let list = deps.join(", ");
        if all_done && !opts.force {
            return Err(CliError::refused(format!(
                "{wp_id} depends on {list}, which are all done: merge them first \
                 (`spec-kitty merge --feature {slug}`, then `spec-kitty implement {wp_id}`), \
                 or run `spec-kitty implement {wp_id} --force` to branch from an automatic merge \
                 of their branches (may conflict on shared files)",
                slug = feat.slug
            )));
        }
        let target = target_branch(ctx, feat);
        let needs_merge = !all_done
            || deps.iter().any(|d| {
                branch_exists(root, &dep_branch(d)) && !is_ancestor(root, &dep_branch(d), &target)
            });
        if needs_merge {
            if let Some(d) = deps.iter().find(|d| !branch_exists(root, &dep_branch(d))) {
                return Err(CliError::refused(format!(
                    "{wp_id} depends on {list}; {d} is {} and has no branch {} yet: run `spec-kitty implement {d}` first",
                    lane_of(d).as_wire(),
                    dep_branch(d)
                )));
            }
        }
        return Ok(BasePlan {
            base_wp: None,
            multi: true,
        });
    }
    let base = opts
        .base
        .clone()
        .or_else(|| (deps.len() == 1).then(|| deps[0].clone()));
    let Some(b) = base else {
        return Ok(BasePlan {
            base_wp: None,
            multi: false,
        });
    };
    if opts.base.is_none() {
        ctx.out.line(&format!(
            "→ Auto-detected: {wp_id} depends on {b}; using --base {b}"
        ));
    } else if !deps.is_empty() && !deps.contains(&b) {
        ctx.out.warn(&format!(
            "{wp_id} does not declare a dependency on {b} (declared: {})",
            deps.join(", ")
        ));
    }
    if feature::find_wp(feat, &b).is_err() {
        return Err(CliError::invalid(format!(
            "Base work package {b} does not exist in {} (no {b}-*.md in {})",
            feat.slug,
            rel(ctx, &feat.tasks_dir())
        )));
    }
    let lane = lane_of(&b);
    if lane != Lane::Done {
        let ws = root.join(".worktrees").join(dep_branch(&b));
        if !is_worktree(&ws) {
            return Err(CliError::refused(format!(
                "{wp_id} depends on {b}, which is {} and has no workspace ({}): \
                 run `spec-kitty implement {b}` first",
                lane.as_wire(),
                rel(ctx, &ws)
            )));
        }
    }
    Ok(BasePlan {
        base_wp: Some(b),
        multi: false,
    })
}

/// The branch the new one starts from, as 2.1.3 resolves it.
fn resolve_base_branch(
    ctx: &Ctx,
    feat: &Feature,
    wp_id: &str,
    deps: &[String],
    plan: &BasePlan,
    lane_of: &dyn Fn(&str) -> Lane,
) -> Result<String, CliError> {
    let root = ctx.project.root.as_path();
    let note = |s: String| ctx.out.line(&format!("→ {s}"));
    if let Some(b) = &plan.base_wp {
        let dep_branch = format!("{}-{b}", feat.slug);
        if lane_of(b) == Lane::Done {
            let target = target_branch(ctx, feat);
            if !branch_exists(root, &dep_branch) {
                note(format!("Base {b} is done; branch {dep_branch} not found: assuming it was merged, branching from {target}"));
                return Ok(target);
            }
            if is_ancestor(root, &dep_branch, &target) {
                note(format!(
                    "Base {b} is done and merged into {target}: branching from {target}"
                ));
                return Ok(target);
            }
            note(format!(
                "Base {b} is done but not merged into {target}: branching from {dep_branch}"
            ));
            return Ok(dep_branch);
        }
        // The base workspace's current branch, as 2.1.3 takes it.
        let ws = root.join(".worktrees").join(&dep_branch);
        let current = git(&ws, &["branch", "--show-current"])
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or(dep_branch);
        if tip(root, &current).is_none() {
            return Err(CliError::refused(format!(
                "Base branch {current} of {b} does not exist; run `spec-kitty implement {b}` again"
            )));
        }
        return Ok(current);
    }
    if !plan.multi {
        return ctx.git.branch.clone().ok_or_else(|| {
            CliError::refused(
                "the main checkout is not on a branch (detached HEAD): check out the feature's target branch first",
            )
        });
    }
    let target = target_branch(ctx, feat);
    if deps.iter().all(|d| lane_of(d) == Lane::Done) {
        let unmerged: Vec<&String> = deps
            .iter()
            .filter(|d| {
                let b = format!("{}-{d}", feat.slug);
                branch_exists(root, &b) && !is_ancestor(root, &b, &target)
            })
            .collect();
        if unmerged.is_empty() {
            note(format!(
                "Dependencies ({}) are done and reachable from {target}: branching from {target}",
                deps.join(", ")
            ));
            return Ok(target);
        }
    }
    note(format!(
        "Multi-parent dependency: {wp_id} depends on {}; creating a merge base",
        deps.join(", ")
    ));
    merge_base_branch(root, &feat.slug, wp_id, deps)
}

/// 2.1.3's `create_multi_parent_base`: `<feature>-WPnn-merge-base` from the
/// first dependency branch (sorted), the others merged in with its commit
/// message (fast-forward where git would). Made with `merge-tree` and
/// `commit-tree`, so the user's checkout is never switched (2.1.3 checks
/// the temp branch out in the main checkout and back).
fn merge_base_branch(
    root: &Path,
    slug: &str,
    wp_id: &str,
    deps: &[String],
) -> Result<String, CliError> {
    let mut sorted = deps.to_vec();
    sorted.sort();
    let branches: Vec<String> = sorted.iter().map(|d| format!("{slug}-{d}")).collect();
    let temp = format!("{slug}-{wp_id}-merge-base");
    let mut cur = tip(root, &branches[0]).ok_or_else(|| {
        CliError::refused(format!(
            "Dependency branch {} does not exist (implement {} first)",
            branches[0], sorted[0]
        ))
    })?;
    for (dep, b) in sorted.iter().zip(&branches).skip(1) {
        let other = tip(root, b).ok_or_else(|| {
            CliError::refused(format!(
                "Dependency branch {b} does not exist (implement {dep} first)"
            ))
        })?;
        if is_ancestor(root, &other, &cur) {
            continue;
        }
        if is_ancestor(root, &cur, &other) {
            cur = other;
            continue;
        }
        let o = std::process::Command::new("git")
            .args(["merge-tree", "--write-tree", "--name-only", "--no-messages"])
            .args([&cur, &other])
            .current_dir(root)
            .output()
            .map_err(|e| CliError::io(format!("cannot run git in {}: {e}", root.display())))?;
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let mut lines = text.lines();
        let tree = lines.next().unwrap_or("").trim().to_string();
        if !o.status.success() {
            let conflicts: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
            return Err(CliError::refused(format!(
                "cannot create the merge base of {wp_id}: merging {b} conflicts in {}. \
                 Pick one dependency as the base and merge the others in the worktree: \
                 `spec-kitty implement {wp_id} --base <WPxx>`, then in .worktrees/{slug}-{wp_id}: \
                 `git merge {slug}-<WPyy>` and resolve",
                if conflicts.is_empty() {
                    String::from_utf8_lossy(&o.stderr).trim().to_string()
                } else {
                    conflicts.join(", ")
                }
            )));
        }
        let message = format!("Merge {b} into multi-parent base for {wp_id}");
        cur = git(
            root,
            &[
                "commit-tree",
                &tree,
                "-p",
                &cur,
                "-p",
                &other,
                "-m",
                &message,
            ],
        )?
        .trim()
        .to_string();
    }
    git(root, &["branch", "-f", &temp, &cur])?;
    Ok(temp)
}

/// 2.1.3's planning check before a WP branches from the current branch:
/// uncommitted files of the feature directory are committed on the target
/// branch (refused elsewhere, or when auto-commit is off).
fn commit_planning(ctx: &Ctx, feat: &Feature, wp_id: &str, commit: bool) -> Result<(), CliError> {
    let root = ctx.project.root.as_path();
    let dir = rel(ctx, &feat.dir);
    let status = git(root, &["status", "--porcelain", "--", &dir])?;
    let files: Vec<&str> = status
        .lines()
        .filter(|l| l.len() > 3)
        .map(|l| l[3..].trim())
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    let target = target_branch(ctx, feat);
    let current = ctx.git.branch.clone().unwrap_or_else(|| "HEAD".into());
    let listed = files.join(", ");
    if current != target {
        return Err(CliError::refused(format!(
            "planning artifacts of {} are not committed ({listed}) and must be committed on {target}; \
             the checkout is on {current}: run `git checkout {target}` and implement again",
            feat.slug
        )));
    }
    let subject = format!("chore: Planning artifacts for {}", feat.slug);
    if !commit {
        return Err(CliError::refused(format!(
            "planning artifacts of {} are not committed ({listed}) and auto-commit is off: \
             commit them first (`git add -f {dir} && git commit -m \"{subject}\"`)",
            feat.slug
        )));
    }
    let message =
        format!("{subject}\n\nAuto-committed by spec-kitty before creating workspace for {wp_id}");
    gitcommit::commit_paths(root, std::slice::from_ref(&feat.dir), &message)
        .map_err(|e| CliError::io(format!("cannot commit the planning artifacts: {e}")))?;
    ctx.out
        .line(&format!("✓ Planning artifacts committed to {target}"));
    Ok(())
}

/// meta.json's `vcs: git` and `vcs_locked_at`, written (as 2.1.3's
/// `write_meta`: sorted keys) when absent. Whether it wrote.
fn lock_vcs(feat: &Feature) -> Result<bool, CliError> {
    let (text, mut meta) = feature::read_meta(feat)?;
    if text.trim().is_empty() || meta.contains_key("vcs") {
        return Ok(false);
    }
    meta.insert("vcs".into(), "git".into());
    meta.insert("vcs_locked_at".into(), store::now_iso().into());
    let new = crate::pyjson::dumps(
        &serde_json::Value::Object(meta),
        crate::pyjson::Style::Pretty,
    ) + "\n";
    fsutil::write_repo_file(&feat.root, &feat.meta_path(), new.as_bytes())?;
    Ok(true)
}

/// 2.1.3's `get_feature_target_branch`: meta.json's `target_branch`, else
/// the primary branch.
fn target_branch(ctx: &Ctx, feat: &Feature) -> String {
    feature::read_meta(feat)
        .ok()
        .and_then(|(_, m)| m.get("target_branch")?.as_str().map(str::to_string))
        .unwrap_or_else(|| primary_branch(ctx, &ctx.project.root))
}

/// 2.1.3's `resolve_primary_branch`: origin's HEAD, else the current
/// branch, else main/master/develop, else `main`.
fn primary_branch(ctx: &Ctx, root: &Path) -> String {
    if let Ok(r) = git(root, &["symbolic-ref", "-q", "refs/remotes/origin/HEAD"]) {
        if let Some(b) = r.trim().rsplit('/').next().filter(|b| !b.is_empty()) {
            return b.to_string();
        }
    }
    if let Some(b) = &ctx.git.branch {
        return b.clone();
    }
    ["main", "master", "develop"]
        .into_iter()
        .find(|b| tip(root, b).is_some())
        .unwrap_or("main")
        .to_string()
}

/// A directory git sees as a checkout (2.1.3: `.git` there and
/// `git rev-parse --git-dir` succeeds).
fn is_worktree(dir: &Path) -> bool {
    dir.join(".git").exists() && git(dir, &["rev-parse", "--git-dir"]).is_ok()
}

/// 2.1.3's notes on reusing a workspace; a `kitty-specs` symlink in it is
/// refused by 2.1.3 and warned about here.
fn reuse_notes(ctx: &Ctx, dir: &Path, wp_id: &str) {
    ctx.out.line(&format!(
        "Workspace for {wp_id} already exists; reusing {}",
        dir.display()
    ));
    if dir.join("kitty-specs").is_symlink() {
        ctx.out.warn(&format!(
            "{}/kitty-specs is a symlink: it bypasses the sparse checkout and can corrupt the main checkout's status files; remove it",
            dir.display()
        ));
    }
}

/// `git worktree add -b <branch> <dir> <base>`; an existing `<branch>`
/// (its worktree removed by hand) is checked out again rather than
/// refused.
fn create_worktree(root: &Path, dir: &Path, branch: &str, base: &str) -> Result<(), CliError> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| CliError::io_at("create", parent, &e))?;
    }
    let d = dir.to_string_lossy();
    // No checkout here: the sparse read-tree checks out what is kept, once
    // (2.1.3 checks out everything, then removes kitty-specs/ again).
    let r = if branch_exists(root, branch) {
        git(
            root,
            &["worktree", "add", "-q", "--no-checkout", &d, branch],
        )
    } else {
        git(
            root,
            &[
                "worktree",
                "add",
                "-q",
                "--no-checkout",
                "-b",
                branch,
                &d,
                base,
            ],
        )
    };
    r.map(|_| ()).map_err(|e| {
        CliError::io(format!(
            "{} (use --no-worktree to skip the workspace)",
            e.message
        ))
    })
}

/// 2.1.3's sparse checkout of a worktree: `core.sparseCheckout true`,
/// `core.sparseCheckoutCone false` (set as 2.1.3 sets them, from inside
/// the worktree), the patterns `/*`, `!/kitty-specs/`, `!/kitty-specs/**`
/// in the worktree's `info/sparse-checkout`, `git read-tree -mu HEAD`,
/// `kitty-specs/` in its `info/exclude`, and no `kitty-specs/` left on disk.
fn sparse_checkout(dir: &Path) -> Result<(), CliError> {
    // The worktree's own git dir (2.1.3 reads it from the `.git` file) and
    // its sparse-checkout file, in one git call.
    let paths = git(
        dir,
        &[
            "rev-parse",
            "--git-dir",
            "--git-path",
            "info/sparse-checkout",
        ],
    )?;
    let mut lines = paths.lines().map(|l| dir.join(l.trim()));
    let (Some(git_dir), Some(sparse)) = (lines.next(), lines.next()) else {
        return Err(CliError::io(format!(
            "git rev-parse in {} did not name its git dir",
            dir.display()
        )));
    };
    git(dir, &["config", "core.sparseCheckout", "true"])?;
    git(dir, &["config", "core.sparseCheckoutCone", "false"])?;
    let write = |p: &Path, text: &str| -> Result<(), CliError> {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| CliError::io_at("create", parent, &e))?;
        }
        fsutil::write_atomic(p, text.as_bytes()).map_err(|e| CliError::io_at("write", p, &e))
    };
    write(&sparse, "/*\n!/kitty-specs/\n!/kitty-specs/**\n")?;
    git(dir, &["read-tree", "-mu", "HEAD"])?;
    {
        let exclude = git_dir.join("info").join("exclude");
        let old = std::fs::read_to_string(&exclude).unwrap_or_default();
        if !old.contains("kitty-specs/") {
            let new = format!(
                "{}\n# Excluded via sparse-checkout\nkitty-specs/\n",
                old.trim_end()
            );
            write(&exclude, new.trim_start())?;
        }
    }
    let specs = dir.join("kitty-specs");
    if specs.exists() {
        std::fs::remove_dir_all(&specs).map_err(|e| CliError::io_at("remove", &specs, &e))?;
    }
    Ok(())
}

/// `.kittify/workspaces/<feature>-WPnn.json`, as 2.1.3's `save_context`
/// writes it (`json.dumps(indent=2)` of its fields in their order).
#[allow(clippy::too_many_arguments)]
fn write_workspace_context(
    ctx: &Ctx,
    slug: &str,
    wp_id: &str,
    worktree: &Path,
    branch: &str,
    base_branch: &str,
    base_commit: &str,
    deps: &[String],
    created_at: &str,
    created_by: &str,
) -> Result<(), CliError> {
    // ensure_ascii, as json.dumps' default.
    let s = |v: &str| crate::pyjson::dumps(&serde_json::json!(v), crate::pyjson::Style::Line);
    let deps = if deps.is_empty() {
        "[]".to_string()
    } else {
        let items: Vec<String> = deps.iter().map(|d| format!("    {}", s(d))).collect();
        format!("[\n{}\n  ]", items.join(",\n"))
    };
    let fields = [
        ("wp_id", s(wp_id)),
        ("feature_slug", s(slug)),
        ("worktree_path", s(&rel(ctx, worktree))),
        ("branch_name", s(branch)),
        ("base_branch", s(base_branch)),
        ("base_commit", s(base_commit)),
        ("dependencies", deps),
        ("created_at", s(created_at)),
        ("created_by", s(created_by)),
        ("vcs_backend", s("git")),
    ];
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("  \"{k}\": {v}"))
        .collect();
    let text = format!("{{\n{}\n}}\n", body.join(",\n"));
    let path = context_path(ctx, slug, wp_id);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| CliError::io_at("create", dir, &e))?;
        // Machine-local state, as 2.1.3 keeps it out of git (its init
        // ignores `workspaces/`): a `*` ignore file in the directory hides
        // it whatever the project's own .gitignore says.
        let ignore = dir.join(".gitignore");
        if fsutil::read_repo_file(&ctx.project.root, &ignore)?.is_none() {
            fsutil::write_repo_file(&ctx.project.root, &ignore, b"*\n")?;
        }
    }
    fsutil::write_repo_file(&ctx.project.root, &path, text.as_bytes())
}

fn context_path(ctx: &Ctx, slug: &str, wp_id: &str) -> PathBuf {
    ctx.project
        .kittify()
        .join("workspaces")
        .join(format!("{slug}-{wp_id}.json"))
}

/// The worktree `.worktrees/<branch>` on an existing `<branch>` (a review
/// of a WP whose worktree is gone), sparse as `implement` makes it; an
/// existing worktree is reused. A missing branch is created from HEAD.
pub fn ensure_worktree(root: &Path, branch: &str) -> Result<PathBuf, CliError> {
    let dir = root.join(".worktrees").join(branch);
    if is_worktree(&dir) {
        return Ok(dir);
    }
    create_worktree(root, &dir, branch, "HEAD")?;
    sparse_checkout(&dir)?;
    Ok(dir)
}
