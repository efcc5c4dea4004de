//! `spec-kitty implement WP01 [--agent NAME] [--no-worktree]`: start a
//! work package. Like spec-kitty 2.1.3: a git worktree `.worktrees/<feature>-WPnn`
//! on branch `<feature>-WPnn` (from the current HEAD), its context in
//! `.kittify/workspaces/<feature>-WPnn.json`, frontmatter `agent`,
//! `shell_pid`, `base_branch`, `base_commit`, and the lane planned →
//! in_progress through the status model: ONE status event (2.1.3's
//! planned → claimed → in_progress recorded as one forced step whose reason
//! names the skipped lane, which 2.1.3's validator accepts), ONE
//! WPStatusChanged and, with `--agent`, one WPAssigned caused by it.
//! A WP already in progress only gets its worktree ensured (no event).

use super::lane_move::{self, Failure};
use super::{rel, Ctx};
use crate::cli::ImplementArgs;
use crate::emit::events_json;
use crate::error::CliError;
use crate::feature;
use crate::fsutil;
use crate::output::Out;
use crate::status::store::{self, Move};
use crate::wpfile::WpFile;
use spec_kitty_protocol::envelope::{EventEnvelope, Payload, WpAssigned};
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
    let wp = WpFile::read(&path)?;
    let from = store::snapshot(&feat)?
        .work_packages
        .get(&a.wp_id)
        .map_or(Lane::Planned, |s| s.lane);
    if !matches!(from, Lane::Planned | Lane::Claimed | Lane::InProgress) {
        return Err(CliError::refused(format!(
            "{} is in {} ({}); implement starts work packages that are planned. Use `spec-kitty agent tasks move-task {} --to doing` to reopen it.",
            a.wp_id,
            from.as_wire(),
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
    let base_branch = ctx.git.branch.clone().unwrap_or_else(|| "HEAD".into());
    let base_commit = ctx.git.head_sha.clone().unwrap_or_else(|| "unknown".into());
    let created_at = store::now_iso();
    if let Some(w) = &worktree {
        write_workspace_context(
            &ctx,
            &feat.slug,
            &a.wp_id,
            w,
            &branch,
            &base_branch,
            &base_commit,
            &wp.meta.dependencies,
            &created_at,
        )?;
    }
    let result = |events: serde_json::Value| {
        serde_json::json!({
            "result": "success",
            "wp_id": a.wp_id,
            "feature": feat.slug,
            "workspace": worktree.as_ref().map(|w| rel(&ctx, w)),
            "branch": worktree.as_ref().map(|_| branch.clone()),
            "base": base_branch,
            "lane": "in_progress",
            "events": events,
        })
    };
    if from == Lane::InProgress {
        out.line(&format!("{} is already in progress", a.wp_id));
        print_workspace(&ctx, worktree.as_deref(), &branch);
        out.json(&result(serde_json::json!([])));
        return Ok(());
    }
    let shell_pid = std::os::unix::process::parent_id().to_string();
    let agent = a.agent.as_deref().map(str::trim);
    let action = match &worktree {
        Some(w) => format!("Started implementation in {}", rel(&ctx, w)),
        None => "Started implementation".into(),
    };
    let mv = Move {
        wp_id: a.wp_id.clone(),
        to: Some(Lane::InProgress),
        actor: agent.unwrap_or("user").to_string(),
        reason: Some(action.clone()),
        workspace_context: Some(match &worktree {
            Some(w) => format!("worktree:{}", w.display()),
            None => format!("direct_repo:{}", ctx.project.root.display()),
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
        if worktree.is_some() {
            t = lane_move::set_scalar(&w.path, &t, "base_branch", &base_branch)?;
            t = lane_move::set_scalar(&w.path, &t, "base_commit", &base_commit)?;
            t = lane_move::set_scalar(&w.path, &t, "created_at", &created_at)?;
        }
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
                wp_id: a.wp_id.clone(),
                agent_id: agent.to_string(),
                phase: "implementation".into(),
                retry_count: 0,
            }),
            Some(status.event_id.clone()),
        )?])
    };
    let commit = lane_move::auto_commit(&ctx, a.commit.flag());
    let message = |_: Lane| format!("chore: {} claimed for implementation", a.wp_id);
    let applied = match lane_move::apply(
        &ctx,
        &feat,
        &mv,
        &edit,
        &follow_up,
        commit.then_some(&message as &dyn Fn(Lane) -> String),
    ) {
        Ok(x) => x,
        Err(Failure::Unchanged(_)) => {
            return Err(CliError::io(format!(
                "{} changed lane while implement ran; run it again",
                a.wp_id
            )))
        }
        Err(Failure::Error(e)) => return Err(e),
    };
    out.line(&format!(
        "{} {} moved to in_progress",
        out.green("✓"),
        out.bold(&a.wp_id)
    ));
    print_workspace(&ctx, worktree.as_deref(), &branch);
    let mut v = result(events_json(&applied.envs, &applied.deliveries));
    v["event_id"] = serde_json::json!(applied.event.event_id);
    out.json(&v);
    Ok(())
}

fn print_workspace(ctx: &Ctx, worktree: Option<&Path>, branch: &str) {
    if let Some(w) = worktree {
        ctx.out.line(&format!(
            "  workspace: {} (branch {})",
            rel(ctx, w),
            ctx.out.cyan(branch)
        ));
    }
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
) -> Result<(), CliError> {
    let s = |v: &str| serde_json::to_string(v).expect("strings serialise");
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
        ("created_by", s("implement-command")),
        ("vcs_backend", s("git")),
    ];
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("  \"{k}\": {v}"))
        .collect();
    let text = format!("{{\n{}\n}}\n", body.join(",\n"));
    let path = ctx
        .project
        .kittify()
        .join("workspaces")
        .join(format!("{slug}-{wp_id}.json"));
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

/// `git worktree add` for `.worktrees/<branch>` on `<branch>` (created
/// from HEAD, or reused when it exists). An existing worktree is reused.
pub fn ensure_worktree(root: &Path, branch: &str) -> Result<PathBuf, CliError> {
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
