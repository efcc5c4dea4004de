//! `spec-kitty agent workflow implement|review [WP]`: what an agent runs
//! from the /spec-kitty.implement and /spec-kitty.review prompts, as 2.1.3
//! does it (`cli/commands/agent/workflow.py`).
//!
//! It picks the work package (the first planned one for implement, the
//! first in for_review for review, in file-name order), claims it with the
//! lane moves 2.1.3 makes — each one status event and one
//! `WPStatusChanged` through [`lane_move::apply`], with 2.1.3's commit
//! subjects — and hands the agent its prompt: printed as a short summary,
//! and in full in `$TMPDIR/spec-kitty-<implement|review>-<WP>.md`
//! (2.1.3's `_write_prompt_to_file`). A missing worktree is made by
//! `implement` itself, so the workspace rules live in one place.

use super::lane_move::{self, Failure};
use super::{implement, status_read, Ctx};
use crate::cli::{AgentWorkflowCommand, WorkflowImplementArgs, WorkflowReviewArgs};
use crate::error::CliError;
use crate::feature::{self, Feature};
use crate::fsutil;
use crate::gitmeta::GitDirs;
use crate::output::Out;
use crate::status::store::{self, Move};
use crate::wpfile::{self, WpFile};
use spec_kitty_protocol::envelope::{EventEnvelope, Payload, WpAssigned};
use spec_kitty_protocol::Lane;
use std::path::{Path, PathBuf};

pub fn run(out: &Out, c: AgentWorkflowCommand) -> Result<(), CliError> {
    match c {
        AgentWorkflowCommand::Implement(a) => implement_wp(out, a),
        AgentWorkflowCommand::Review(a) => review_wp(out, a),
    }
}

/// `wp01`, `WP01`, `WP01-some-title` and `01` all name WP01 (2.1.3's
/// `_normalize_wp_id`).
pub fn normalize_wp_id(arg: &str) -> Result<String, CliError> {
    let upper = arg.trim().to_ascii_uppercase();
    let head = upper.split('-').next().unwrap_or_default();
    let id = if head.starts_with("WP") {
        head.to_string()
    } else {
        format!("WP{head}")
    };
    feature::check_wp_id(&id)?;
    Ok(id)
}

/// Each WP of the feature in file-name order with its current lane: the
/// status log's, else the frontmatter's (what the log will bootstrap).
fn lanes(feat: &Feature) -> Result<Vec<(WpFile, Lane)>, CliError> {
    let snap = store::snapshot(feat)?;
    Ok(feature::load_wps(feat)?
        .into_iter()
        .map(|w| {
            let lane = snap
                .work_packages
                .get(&w.meta.wp_id)
                .map_or(w.meta.lane, |s| s.lane);
            (w, lane)
        })
        .collect())
}

/// The WP named on the command line, else the first one in `wanted`.
fn select(
    feat: &Feature,
    arg: Option<&str>,
    wanted: Lane,
    none: &str,
) -> Result<(WpFile, Lane), CliError> {
    let all = lanes(feat)?;
    let found = match arg {
        Some(a) => {
            let id = normalize_wp_id(a)?;
            let path = feature::find_wp(feat, &id)?;
            all.into_iter().find(|(w, _)| w.path == path)
        }
        None => all.into_iter().find(|(_, l)| *l == wanted),
    };
    found.ok_or_else(|| CliError::refused(format!("{}: {none}", feat.slug)))
}

fn agent_arg(agent: Option<&str>) -> Option<String> {
    agent
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
}

fn agent_required(action: &str, wp_id: &str, slug: &str) -> CliError {
    CliError::invalid(format!(
        "--agent is required to start {action} of {wp_id} (it records who works on it): spec-kitty agent workflow {action} {wp_id} --agent <your-name> --feature {slug}"
    ))
}

/// `.worktrees/<feature>-<WP>` of the main checkout.
fn workspace_of(ctx: &Ctx, feat: &Feature, wp_id: &str) -> PathBuf {
    ctx.project
        .root
        .join(".worktrees")
        .join(format!("{}-{wp_id}", feat.slug))
}

fn implement_wp(out: &Out, a: WorkflowImplementArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let (wp, lane) = select(
        &feat,
        a.wp_id.as_deref(),
        Lane::Planned,
        "no planned work package to implement; name one (spec-kitty agent workflow implement WP01 --agent <your-name>)",
    )?;
    let wp_id = wp.meta.wp_id.clone();
    let lane_before = lane;
    let agent = agent_arg(a.agent.as_deref());
    let has_agent = wp
        .meta
        .agent
        .as_deref()
        .is_some_and(|s| !s.trim().is_empty());
    let branch = ctx.git.branch.clone().unwrap_or_else(|| "HEAD".into());
    out.line(&format!(
        "Branch: {branch} (status changes are committed here)"
    ));
    if (lane != Lane::InProgress || !has_agent) && agent.is_none() {
        return Err(agent_required("implement", &wp_id, &feat.slug));
    }
    let workspace = workspace_of(&ctx, &feat, &wp_id);
    let commit = lane_move::auto_commit(&ctx, None);
    let subject = |agent: &str| format!("chore: Start {wp_id} implementation [{agent}]");
    let mut created = false;
    if !workspace.exists() && ctx.project.git_root.is_some() {
        out.line(&format!("Creating workspace for {wp_id}..."));
        let opts = implement::StartOpts {
            wp_id: wp_id.clone(),
            base: a.base.clone(),
            agent: agent.clone(),
            ..Default::default()
        };
        implement::start_and_report(out, &ctx, &feat, &opts)?;
        created = true;
    }
    // After `implement` the WP is in progress with its agent; 2.1.3 then
    // records the assignment as a commit of its own, and so do we, so both
    // CLIs leave the same history.
    let (wp, lane) = select(&feat, Some(&wp_id), Lane::Planned, "")?;
    if let (Some(agent), true) = (&agent, lane != Lane::InProgress) {
        claim(
            &ctx,
            &feat,
            &wp_id,
            agent,
            &workspace,
            "implementation",
            commit.then(|| subject(agent)),
        )?;
        out.line(&format!(
            "{} Claimed {} (agent: {agent})",
            out.green("✓"),
            out.bold(&wp_id)
        ));
    } else if let (Some(agent), true) = (
        &agent,
        (created && lane_before != Lane::InProgress) || !has_agent,
    ) {
        assign(&ctx, &wp, agent, commit.then(|| subject(agent)))?;
        out.line(&format!(
            "{} Claimed {} (agent: {agent})",
            out.green("✓"),
            out.bold(&wp_id)
        ));
    } else {
        out.warn(&format!(
            "{wp_id} is already in lane {}; nothing moved",
            lane.as_wire()
        ));
    }
    let wp = WpFile::read(&wp.path)?;
    let prompt = implement_prompt(&ctx, &feat, &wp, &workspace, &branch);
    let file = write_prompt("implement", &wp_id, &prompt)?;
    out.line("");
    out.line(&format!("📍 Workspace: cd {}", workspace.display()));
    if let Some(f) = feedback(&ctx, &wp) {
        out.line(&format!(
            "⚠️  Review feedback to address first: {}",
            f.pointer
        ));
    }
    if let Some(d) = research_deliverables(&feat) {
        out.line(&format!(
            "🔬 Research deliverables: {d} (not kitty-specs/, which holds the planning files)"
        ));
    }
    next_steps(
        out,
        &file,
        "When the work is done and committed in the workspace:",
        &implement_done(&wp_id, &feat.slug, agent.as_deref()),
    );
    Ok(())
}

/// The end of the summary both commands print: read the prompt file, then
/// the commands that finish the step.
fn next_steps(out: &Out, prompt_file: &Path, heading: &str, commands: &[String]) {
    out.line("");
    out.line("▶▶▶ NEXT STEP: read the whole prompt now:");
    out.line(&format!("    cat {}", prompt_file.display()));
    out.line("");
    out.line(heading);
    for l in commands {
        out.line(&format!("  {l}"));
    }
}

/// The lane move to in_progress of a claim, with the agent recorded: one
/// status event, one `WPStatusChanged` (plus `WPAssigned` when starting
/// implementation, as `implement --agent` sends), one commit.
fn claim(
    ctx: &Ctx,
    feat: &Feature,
    wp_id: &str,
    agent: &str,
    workspace: &Path,
    phase: &str,
    subject: Option<String>,
) -> Result<(), CliError> {
    let review = phase == "review";
    let note = if review {
        "Started review via workflow command"
    } else {
        "Started implementation via workflow command"
    };
    let shell_pid = std::os::unix::process::parent_id().to_string();
    let mv = Move {
        wp_id: wp_id.to_string(),
        to: Some(Lane::InProgress),
        actor: agent.to_string(),
        // 2.1.3 always lets a reviewer claim a WP waiting for review.
        force: review,
        reason: Some(note.to_string()),
        review_ref: review.then(|| "workflow-review-claim".to_string()),
        workspace_context: Some(format!("worktree:{}", workspace.display())),
        execution_mode: "worktree".into(),
        walk_forward: !review,
        ..Move::default()
    };
    let edit = |w: &WpFile, _from: Lane, text: &str| -> Result<String, CliError> {
        let t = lane_move::set_scalar(&w.path, text, "agent", agent)?;
        let t = lane_move::set_scalar(&w.path, &t, "shell_pid", &shell_pid)?;
        Ok(lane_move::with_activity(
            &t,
            agent,
            &shell_pid,
            Lane::InProgress,
            note,
        ))
    };
    let follow_up = |status: &EventEnvelope| -> Result<Vec<EventEnvelope>, CliError> {
        if review {
            return Ok(Vec::new());
        }
        Ok(vec![ctx.emitter.build(
            &Payload::WPAssigned(WpAssigned {
                wp_id: wp_id.to_string(),
                agent_id: agent.to_string(),
                phase: phase.to_string(),
                retry_count: 0,
            }),
            Some(status.event_id.clone()),
        )?])
    };
    let message = |_: Lane| subject.clone().unwrap_or_default();
    match lane_move::apply(
        ctx,
        feat,
        &mv,
        &edit,
        &follow_up,
        subject
            .is_some()
            .then_some(&message as &dyn Fn(Lane) -> String),
    ) {
        Ok(_) => Ok(()),
        Err(Failure::Unchanged(_)) => Err(CliError::io(format!(
            "{wp_id} changed lane while the command ran; run it again"
        ))),
        Err(Failure::Error(e)) => Err(e),
    }
}

/// Records the agent on a WP already in progress (no lane change, so no
/// status event): `agent`, `shell_pid` and an activity line, committed.
fn assign(ctx: &Ctx, wp: &WpFile, agent: &str, subject: Option<String>) -> Result<(), CliError> {
    let path = &wp.path;
    let _lock = fsutil::lock_path(path).map_err(|e| CliError::io_at("lock", path, &e))?;
    let cur = WpFile::read(path)?;
    let shell_pid = std::os::unix::process::parent_id().to_string();
    let t = lane_move::set_scalar(path, &cur.text, "agent", agent)?;
    let t = lane_move::set_scalar(path, &t, "shell_pid", &shell_pid)?;
    let line = wpfile::activity_line(
        &wpfile::file_timestamp(),
        agent,
        &shell_pid,
        &cur.meta.lane_written,
        "Assigned agent via workflow command",
    );
    let t = wpfile::append_activity(&t, &line);
    WpFile::parse(path, t.clone())?;
    fsutil::write_repo_file(&ctx.project.root, path, t.as_bytes())?;
    if let Some(s) = subject {
        lane_move::commit(ctx, std::slice::from_ref(path), &s);
    }
    Ok(())
}

fn review_wp(out: &Out, a: WorkflowReviewArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let (wp, lane) = select(
        &feat,
        a.wp_id.as_deref(),
        Lane::ForReview,
        "no work package is waiting for review (for_review); name one (spec-kitty agent workflow review WP01 --agent <your-name>)",
    )?;
    let wp_id = wp.meta.wp_id.clone();
    if !matches!(lane, Lane::ForReview | Lane::InProgress) {
        return Err(CliError::refused(format!(
            "{wp_id} is in lane {}, not for_review: only a work package waiting for review can be reviewed. Move it first: spec-kitty agent tasks move-task {wp_id} --to for_review --feature {}",
            lane.as_wire(),
            feat.slug
        )));
    }
    let agent = agent_arg(a.agent.as_deref());
    let branch = ctx.git.branch.clone().unwrap_or_else(|| "HEAD".into());
    out.line(&format!(
        "Branch: {branch} (status changes are committed here)"
    ));
    let workspace = workspace_of(&ctx, &feat, &wp_id);
    if lane == Lane::ForReview {
        let Some(agent) = &agent else {
            return Err(agent_required("review", &wp_id, &feat.slug));
        };
        let commit = lane_move::auto_commit(&ctx, None);
        claim(
            &ctx,
            &feat,
            &wp_id,
            agent,
            &workspace,
            "review",
            commit.then(|| format!("chore: Start {wp_id} review [{agent}]")),
        )?;
        out.line(&format!(
            "{} Claimed {} for review (agent: {agent})",
            out.green("✓"),
            out.bold(&wp_id)
        ));
    } else {
        out.warn(&format!(
            "{wp_id} is already in lane in_progress; nothing moved"
        ));
    }
    if !workspace.exists() && ctx.project.git_root.is_some() {
        let b = format!("{}-{wp_id}", feat.slug);
        match implement::ensure_worktree(&ctx.project.root, &b) {
            Ok(_) => out.line(&format!("✓ Created workspace: {}", workspace.display())),
            Err(e) => out.warn(&format!("no workspace for {wp_id}: {}", e.message)),
        }
    }
    let wp = WpFile::read(&wp.path)?;
    let git = review_context(&ctx.project.root, &feat.slug, &wp, &workspace);
    let dependents = open_dependents(&feat, &wp_id)?;
    let prompt = review_prompt(&ctx, &wp, &workspace, &branch, git.as_ref(), &dependents);
    let file = write_prompt("review", &wp_id, &prompt)?;
    out.line("");
    if !dependents.is_empty() {
        out.line(&dependents_alert(&wp_id, &dependents));
        out.line("");
    }
    out.line(&format!("📍 Workspace: cd {}", workspace.display()));
    if let Some(g) = &git {
        out.line(&format!(
            "🔀 Branch: {} (based on {}, {} commits)",
            g.branch, g.base, g.ahead
        ));
        out.line(&format!(
            "   Review diff: git log {}..HEAD --oneline",
            g.base
        ));
    }
    next_steps(
        out,
        &file,
        "When the review is done, run one of:",
        &review_done(&wp_id, &feat.slug, agent.as_deref()),
    );
    Ok(())
}

/// Writes the full prompt to `$TMPDIR/spec-kitty-<kind>-<WP>.md`, where
/// 2.1.3 puts it. Atomically (a temp file renamed over it), so a link
/// planted at that shared path is replaced, never followed.
fn write_prompt(kind: &str, wp_id: &str, text: &str) -> Result<PathBuf, CliError> {
    let path = std::env::temp_dir().join(format!("spec-kitty-{kind}-{wp_id}.md"));
    fsutil::write_atomic(&path, text.as_bytes())
        .map_err(|e| CliError::io_at("write", &path, &e))?;
    Ok(path)
}

/// Review feedback recorded on a WP (`review_status: has_feedback`,
/// `review_feedback: feedback://…` as move-task writes them).
struct Feedback {
    pointer: String,
    file: Option<PathBuf>,
}

fn feedback(ctx: &Ctx, wp: &WpFile) -> Option<Feedback> {
    if wp.scalar("review_status").as_deref() != Some("has_feedback") {
        return None;
    }
    let pointer = wp
        .scalar("review_feedback")
        .or_else(|| wp.scalar("review_feedback_file"))
        .unwrap_or_default();
    let file = match pointer.strip_prefix("feedback://") {
        Some(rest) => {
            let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
            let common = GitDirs::of_worktree(&ctx.project.root)?.common_dir;
            (parts.len() == 3 && !parts.contains(&".."))
                .then(|| common.join("spec-kitty/feedback").join(parts.join("/")))
        }
        None if pointer.is_empty() => None,
        None => Some(ctx.project.root.join(&pointer)),
    };
    Some(Feedback {
        pointer,
        file: file.filter(|f| f.is_file()),
    })
}

/// Where a research feature's findings go (`deliverables_path` of
/// meta.json, else 2.1.3's `docs/research/<slug>/`); `None` for other
/// missions.
fn research_deliverables(feat: &Feature) -> Option<String> {
    let (_, meta) = feature::read_meta(feat).ok()?;
    let s = |k: &str| {
        meta.get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if s("mission") != Some("research") {
        return None;
    }
    Some(
        s("deliverables_path")
            .map(str::to_string)
            .unwrap_or_else(|| format!("docs/research/{}/", s("slug").unwrap_or(&feat.slug))),
    )
}

const RULE: &str =
    "================================================================================";

fn implement_done(wp_id: &str, slug: &str, agent: Option<&str>) -> Vec<String> {
    let who = agent.map(|a| format!(" --agent {a}")).unwrap_or_default();
    vec![
        format!("1. git status && git add <your-files> && git commit -m \"feat({wp_id}): <description>\""),
        format!("2. spec-kitty agent tasks mark-status T001 T002 ... --status done --feature {slug}"),
        format!("3. spec-kitty agent tasks move-task {wp_id} --to for_review{who} --feature {slug} --note \"Ready for review: <summary>\""),
        format!("Blocked: spec-kitty agent tasks add-history {wp_id}{who} --feature {slug} --note \"Blocked: <reason>\""),
    ]
}

fn review_feedback_path(wp_id: &str) -> PathBuf {
    std::env::temp_dir().join(format!("spec-kitty-review-feedback-{wp_id}.md"))
}

fn review_done(wp_id: &str, slug: &str, agent: Option<&str>) -> Vec<String> {
    let reviewer = agent
        .map(|a| format!(" --reviewer {a}"))
        .unwrap_or_default();
    let who = agent.map(|a| format!(" --agent {a}")).unwrap_or_default();
    vec![
        format!("✅ spec-kitty agent tasks move-task {wp_id} --to approved{reviewer} --feature {slug} --note \"Review passed: <summary>\""),
        format!(
            "❌ spec-kitty agent tasks move-task {wp_id} --to planned --review-feedback-file {}{who} --feature {slug}",
            review_feedback_path(wp_id).display()
        ),
    ]
}

/// The rules of a shared board, in the prompt of every claim.
fn isolation(wp_id: &str, verb: &str) -> Vec<String> {
    vec![
        format!("RULES: you are {verb} {wp_id} and only {wp_id}."),
        format!("  - Change the status of {wp_id} only, and tick only its subtasks."),
        "  - Other agents work on other work packages at the same time: their commits and".into(),
        "    status changes are theirs; do not react to them or investigate them.".into(),
    ]
}

fn body_block(wp: &WpFile) -> Vec<String> {
    vec![
        "--- WORK PACKAGE PROMPT BEGINS ---".into(),
        String::new(),
        wp.text.clone(),
        "--- WORK PACKAGE PROMPT ENDS ---".into(),
        String::new(),
    ]
}

fn tracking(ctx: &Ctx, workspace: &Path, branch: &str, what: &str) -> Vec<String> {
    vec![
        "📍 WORKING DIRECTORY:".into(),
        format!("   cd {}", workspace.display()),
        format!("   # {what}"),
        format!("   # Back to the main checkout afterwards: cd {}", ctx.project.root.display()),
        String::new(),
        "📋 STATUS TRACKING:".into(),
        format!("   The status lives in kitty-specs/ of the main checkout, on {branch}: change it with"),
        "   the spec-kitty commands only, never by editing or committing it in the worktree.".into(),
        format!("   They commit to {branch}, where every agent sees them; other agents' commits are theirs."),
        String::new(),
    ]
}

fn implement_prompt(
    ctx: &Ctx,
    feat: &Feature,
    wp: &WpFile,
    workspace: &Path,
    branch: &str,
) -> String {
    let wp_id = &wp.meta.wp_id;
    let agent = wp.meta.agent.as_deref().filter(|a| !a.is_empty());
    let done = implement_done(wp_id, &feat.slug, agent);
    let mut l = vec![
        RULE.to_string(),
        format!("IMPLEMENT: {wp_id}"),
        RULE.to_string(),
        String::new(),
        format!("Source: {}", wp.path.display()),
        String::new(),
        format!("Workspace: {}", workspace.display()),
        String::new(),
    ];
    l.extend(isolation(wp_id, "implementing"));
    l.push(String::new());
    if let Some(f) = feedback(ctx, wp) {
        l.push("⚠️  REVIEW FEEDBACK: a reviewer sent this work package back.".into());
        l.push(format!("   Reference: {}", f.pointer));
        match f.file {
            Some(p) => l.push(format!("   Read it first: cat \"{}\"", p.display())),
            None => l.push(
                "   The feedback file cannot be found; ask the reviewer to send it again with move-task --review-feedback-file."
                    .into(),
            ),
        }
        l.push(String::new());
    }
    if let Some(d) = research_deliverables(feat) {
        l.push("🔬 RESEARCH MISSION: two kinds of files.".into());
        l.push(format!(
            "   Your findings (reports, data): {d} in the workspace, committed on its branch;"
        ));
        l.push(format!(
            "   they land on {branch} with the merge. Never put them in kitty-specs/."
        ));
        l.push("   Planning files (kitty-specs/: evidence-log.csv, source-register.csv) are edited in the".into());
        l.push("   main checkout, rarely during implementation.".into());
        l.push(String::new());
    }
    l.extend(tracking(
        ctx,
        workspace,
        branch,
        "Implement, test and commit here only.",
    ));
    l.extend(body_block(wp));
    l.push(RULE.to_string());
    l.push("WHEN YOU ARE DONE, RUN:".into());
    l.push(RULE.to_string());
    l.extend(done.iter().map(|d| format!("  {d}")));
    l.push(String::new());
    l.push(
        "Commit every implementation file in the workspace before step 3: work packages that"
            .into(),
    );
    l.push("depend on this one start from your committed branch.".into());
    l.push(RULE.to_string());
    l.join("\n")
}

/// Where a review starts: the WP's branch and the closest base among its
/// dependencies' branches and the usual trunk names (2.1.3's candidates).
struct GitContext {
    branch: String,
    base: String,
    ahead: u64,
}

fn review_context(root: &Path, slug: &str, wp: &WpFile, workspace: &Path) -> Option<GitContext> {
    let git = status_read::git_out;
    if !workspace.exists() {
        return None;
    }
    let branch = git(workspace, &["symbolic-ref", "--short", "-q", "HEAD"])?;
    let candidates = wp
        .meta
        .dependencies
        .iter()
        .map(|d| format!("{slug}-{d}"))
        .chain(["main", "2.x", "master", "develop"].map(String::from));
    candidates
        .filter_map(|c| {
            let mb = git(root, &["merge-base", &branch, &c])?;
            let n = git(root, &["rev-list", "--count", &format!("{mb}..{branch}")])?;
            Some((n.parse::<u64>().ok()?, c))
        })
        // The first candidate wins a tie, as in 2.1.3.
        .fold(None::<(u64, String)>, |best, (n, c)| match best {
            Some((b, _)) if b <= n => best,
            _ => Some((n, c)),
        })
        .map(|(ahead, base)| GitContext {
            branch,
            base,
            ahead,
        })
}

/// WPs that depend on `wp_id` and are not through review yet.
fn open_dependents(feat: &Feature, wp_id: &str) -> Result<Vec<String>, CliError> {
    Ok(lanes(feat)?
        .into_iter()
        .filter(|(w, l)| {
            w.meta.dependencies.iter().any(|d| d == wp_id)
                && matches!(
                    l,
                    Lane::Planned | Lane::Claimed | Lane::InProgress | Lane::ForReview
                )
        })
        .map(|(w, _)| w.meta.wp_id)
        .collect())
}

fn dependents_alert(wp_id: &str, deps: &[String]) -> String {
    format!(
        "⚠️  Dependency alert: {} depend on {wp_id} (not done yet); if you request changes, tell their agents to rebase.",
        deps.join(", ")
    )
}

fn review_prompt(
    ctx: &Ctx,
    wp: &WpFile,
    workspace: &Path,
    branch: &str,
    git: Option<&GitContext>,
    dependents: &[String],
) -> String {
    let wp_id = &wp.meta.wp_id;
    let slug = wp
        .path
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let agent = wp.meta.agent.as_deref().filter(|a| !a.is_empty());
    let mut l = vec![
        RULE.to_string(),
        format!("REVIEW: {wp_id}"),
        RULE.to_string(),
        String::new(),
        format!("Source: {}", wp.path.display()),
        String::new(),
        format!("Workspace: {}", workspace.display()),
        String::new(),
    ];
    if !dependents.is_empty() {
        l.push(dependents_alert(wp_id, dependents));
        l.push(String::new());
    }
    l.extend(isolation(wp_id, "reviewing"));
    l.push(format!("  - Review and approve {wp_id} only."));
    l.push(String::new());
    if let Some(g) = git {
        l.push("--- GIT REVIEW CONTEXT ---".into());
        l.push(format!("Branch:      {}", g.branch));
        l.push(format!(
            "Base branch: {} ({} commits ahead)",
            g.base, g.ahead
        ));
        l.push(String::new());
        l.push("In the workspace:".into());
        l.push(format!("  cd {}", workspace.display()));
        l.push(format!(
            "  git log {}..HEAD --oneline   # this work package's commits",
            g.base
        ));
        l.push(format!(
            "  git diff {}..HEAD --stat     # the files it changed",
            g.base
        ));
        l.push(format!(
            "  git diff {}..HEAD            # the whole change",
            g.base
        ));
        l.push(String::new());
    }
    l.extend(tracking(
        ctx,
        workspace,
        branch,
        "Read the code, run the tests, check it against the requirements.",
    ));
    l.push("Review the work against the work package below: the code, its tests, the".into());
    l.push("documentation, and what spec.md asks for.".into());
    l.push(String::new());
    l.extend(body_block(wp));
    l.push(RULE.to_string());
    l.push("WHEN THE REVIEW IS DONE, RUN ONE OF:".into());
    l.push(RULE.to_string());
    let done = review_done(wp_id, &slug, agent);
    l.push(format!("  {}", done[0]));
    l.push(String::new());
    l.push(
        "  Changes needed: first write the findings (what is wrong, where, how to fix it):".into(),
    );
    l.push(format!(
        "    cat > {} <<'EOF'",
        review_feedback_path(wp_id).display()
    ));
    l.push("**Issue 1**: <what and how to fix>".into());
    l.push("EOF".into());
    l.push(format!("  {}", done[1]));
    l.push(String::new());
    l.push("One of the two must run: it is what ends the review.".into());
    l.push(RULE.to_string());
    l.join("\n")
}
