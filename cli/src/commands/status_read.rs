//! The read-only `agent tasks` commands of 2.1.3: `status` (the board
//! with stale detection), `list-tasks`, `list-dependents` and
//! `validate-workflow`, on the canonical status model
//! ([`crate::status::current`]).
//!
//! Reading never writes. Unlike 2.1.3 these commands do not check out the
//! feature's target branch, re-materialise views, back-fill the project
//! identity or emit events: every file of the repository is byte-identical
//! afterwards, whatever state the log and views are in (a read that
//! "repaired" a stale view is how committed `done` events were lost
//! upstream). They open the project without [`super::Ctx`] for that
//! reason.

use crate::cli::{ListTasksArgs, TasksReadCommand, TasksStatusArgs, WpReadArgs};
use crate::error::CliError;
use crate::feature::{self, Feature};
use crate::gitcommit;
use crate::gitmeta::GitMeta;
use crate::output::Out;
use crate::project;
use crate::status::current::{self, CurrentWp, FeatureState};
use crate::wpfile::{self, WpFile};
use crate::yamltext;
use serde_json::{json, Map, Value};
use spec_kitty_protocol::Lane;
use std::path::Path;
use std::process::Command;

pub fn run(out: &Out, c: TasksReadCommand) -> Result<(), CliError> {
    match c {
        TasksReadCommand::Status(a) => status(out, a),
        TasksReadCommand::ListTasks(a) => list_tasks(out, a),
        TasksReadCommand::ListDependents(a) => list_dependents(out, a),
        TasksReadCommand::ValidateWorkflow(a) => validate_workflow(out, a),
    }
}

/// The project and feature a read command acts on, found without writing
/// anything (no identity back-fill).
pub fn open_feature(explicit: Option<&str>) -> Result<Feature, CliError> {
    let cwd = project::cwd()?;
    let project = project::locate(&cwd)?;
    let git = project
        .git_root
        .as_deref()
        .map(GitMeta::read)
        .unwrap_or_default();
    feature::detect(&project, explicit, git.branch.as_deref(), &cwd)
}

/// The feature's state, refusing unreadable WP files: a board or list
/// that silently left one out would disagree with the other CLI. Every
/// bad file is named, with why.
fn read_strict(feat: &Feature) -> Result<FeatureState, CliError> {
    let state = current::read(feat)?;
    if state.unreadable.is_empty() {
        return Ok(state);
    }
    let lines: Vec<String> = state
        .unreadable
        .iter()
        .map(|b| format!("  - {}", b.error.message))
        .collect();
    Err(CliError::new(
        state.unreadable[0].error.kind,
        format!(
            "cannot read {} work package file(s) of {}:\n{}",
            state.unreadable.len(),
            feat.slug,
            lines.join("\n")
        ),
    ))
}

/// A top-level scalar of a WP file's frontmatter as written (quotes off).
fn fm_scalar(wp: &WpFile, key: &str) -> Option<String> {
    let fm = wp.frontmatter();
    yamltext::find_key(fm, key)
        .map(|kl| kl.inner(fm).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn file_name(wp: &CurrentWp) -> String {
    wp.file
        .as_ref()
        .and_then(|f| f.path.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// agent tasks status

/// What 2.1.3's stale detection finds for an in-progress WP.
struct Staleness {
    is_stale: bool,
    minutes_since_commit: Option<f64>,
    worktree_exists: bool,
}

/// `git ARGS` in `dir`: its trimmed stdout, `None` when it fails.
pub(crate) fn git_out(dir: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// 2.1.3's default branch for stale detection: origin's HEAD, else the
/// first of main, master, develop that exists, else main.
fn default_branch(dir: &Path) -> String {
    if let Some(r) = git_out(dir, &["symbolic-ref", "refs/remotes/origin/HEAD"]) {
        return r.rsplit('/').next().unwrap_or("main").to_string();
    }
    ["main", "master", "develop"]
        .into_iter()
        .find(|b| git_out(dir, &["rev-parse", "--verify", "--quiet", b]).is_some())
        .unwrap_or("main")
        .to_string()
}

/// Stale = its worktree has commits of its own and the last one is older
/// than the threshold (a fresh worktree with no commit is not stale).
fn staleness(root: &Path, slug: &str, wp_id: &str, threshold_min: u64) -> Staleness {
    let wt = root.join(".worktrees").join(format!("{slug}-{wp_id}"));
    let none = |exists| Staleness {
        is_stale: false,
        minutes_since_commit: None,
        worktree_exists: exists,
    };
    if !wt.is_dir() {
        return none(false);
    }
    let base = default_branch(&wt);
    let Some(mb) = git_out(&wt, &["merge-base", "HEAD", &base]) else {
        return none(true);
    };
    let own = git_out(&wt, &["rev-list", "--count", &format!("{mb}..HEAD")])
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let Some(ct) = (own > 0)
        .then(|| git_out(&wt, &["log", "-1", "--format=%ct"]))
        .flatten()
        .and_then(|t| t.parse::<i64>().ok())
    else {
        return none(true);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let minutes = (now - ct) as f64 / 60.0;
    Staleness {
        is_stale: minutes > threshold_min as f64,
        minutes_since_commit: Some((minutes * 10.0).round() / 10.0),
        worktree_exists: true,
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn status(out: &Out, a: TasksStatusArgs) -> Result<(), CliError> {
    let feat = open_feature(a.feature.as_deref())?;
    let state = read_strict(&feat)?;
    let total = state.wps.len();
    let mut items = Vec::new();
    let mut by_lane: Map<String, Value> = Map::new();
    let mut stale_count = 0;
    let mut stale_of: std::collections::HashMap<String, Staleness> = Default::default();
    for wp in state.wps.values() {
        let lane = wp.lane.as_wire();
        let n = by_lane.get(lane).and_then(Value::as_u64).unwrap_or(0);
        by_lane.insert(lane.to_string(), json!(n + 1));
        let f = wp.file.as_ref();
        let mut item = json!({
            "id": wp.wp_id,
            "title": wp.title(),
            "lane": lane,
            "phase": f.and_then(|f| fm_scalar(f, "phase")).unwrap_or_else(|| "Unknown Phase".into()),
            "file": file_name(wp),
            "agent": f.and_then(|f| f.meta.agent.clone()).unwrap_or_default(),
            "shell_pid": f.and_then(|f| f.meta.shell_pid.clone()).unwrap_or_default(),
            "source": wp.source.as_str(),
        });
        if wp.lane == Lane::InProgress {
            let s = staleness(&feat.root, &feat.slug, &wp.wp_id, a.stale_threshold);
            item["is_stale"] = json!(s.is_stale);
            item["minutes_since_commit"] = json!(s.minutes_since_commit);
            item["worktree_exists"] = json!(s.worktree_exists);
            stale_count += usize::from(s.is_stale);
            stale_of.insert(wp.wp_id.clone(), s);
        }
        items.push(item);
    }
    let done = state.in_lane(Lane::Done).count();
    let pct = if total == 0 {
        0.0
    } else {
        round1(done as f64 * 100.0 / total as f64)
    };
    let auto_commit = gitcommit::auto_commit_default(&feat.root);
    out.json(&json!({
        "feature": feat.slug,
        "total_wps": total,
        "by_lane": by_lane,
        "work_packages": items,
        "progress_percentage": pct,
        "stale_wps": stale_count,
        "auto_commit": auto_commit,
    }));
    if out.json {
        return Ok(());
    }
    if total == 0 {
        out.line(&format!(
            "No work packages found in {}",
            feat.tasks_dir().display()
        ));
        return Ok(());
    }
    out.line(&format!("Work Package Status: {}", out.bold(&feat.slug)));
    let filled = (40.0 * pct / 100.0) as usize;
    out.line(&format!("Progress: {done}/{total} ({pct:?}%)"));
    out.line(&format!(
        "{}{}",
        "█".repeat(filled),
        "░".repeat(40 - filled)
    ));
    for lane in Lane::ALL {
        let wps: Vec<&CurrentWp> = state.in_lane(lane).collect();
        if wps.is_empty() && !BOARD_LANES.contains(&lane) {
            continue;
        }
        out.line("");
        out.line(&format!(
            "{} ({})",
            out.cyan(&lane.as_wire().to_uppercase()),
            wps.len()
        ));
        if wps.is_empty() {
            out.line(&format!("  {}", out.dim("-")));
        }
        for wp in wps {
            let stale = stale_of.get(&wp.wp_id).filter(|s| s.is_stale);
            let note = match stale {
                Some(s) => format!(
                    "  (stale: {}m, agent: {})",
                    s.minutes_since_commit.unwrap_or(0.0),
                    wp.file
                        .as_ref()
                        .and_then(|f| f.meta.agent.as_deref())
                        .unwrap_or("unknown")
                ),
                None => String::new(),
            };
            out.line(&format!("  {}  {}{note}", out.bold(&wp.wp_id), wp.title()));
        }
    }
    if stale_count > 0 {
        out.line("");
        out.line(&format!(
            "{stale_count} stale WP(s) detected - agents may have stopped without transitioning"
        ));
        out.line("   Run: spec-kitty agent tasks move-task <WP_ID> --to for_review");
    }
    out.line("");
    out.line(&format!(
        "Auto-commit: {}",
        if auto_commit { "enabled" } else { "disabled" }
    ));
    Ok(())
}

/// The lanes 2.1.3's board always shows (the others appear when used).
const BOARD_LANES: [Lane; 5] = [
    Lane::Planned,
    Lane::InProgress,
    Lane::ForReview,
    Lane::Approved,
    Lane::Done,
];

// ---------------------------------------------------------------------------
// agent tasks list-tasks

fn list_tasks(out: &Out, a: ListTasksArgs) -> Result<(), CliError> {
    let wanted = a
        .lane
        .as_deref()
        .map(wpfile::parse_lane)
        .transpose()
        .map_err(CliError::invalid)?;
    let feat = open_feature(a.feature.as_deref())?;
    if !feat.tasks_dir().is_dir() {
        return Err(CliError::invalid(format!(
            "tasks directory not found: {}",
            feat.tasks_dir().display()
        )));
    }
    let state = read_strict(&feat)?;
    let tasks: Vec<Value> = state
        .wps
        .values()
        .filter(|w| wanted.is_none_or(|l| w.lane == l))
        .filter(|w| w.file.is_some())
        .map(|w| {
            json!({
                "work_package_id": w.wp_id,
                "title": w.title(),
                "lane": w.lane.as_wire(),
                "path": w.file.as_ref().map(|f| f.path.display().to_string()),
            })
        })
        .collect();
    out.json(&json!({"tasks": tasks, "count": tasks.len()}));
    let in_lane = a
        .lane
        .as_deref()
        .map(|l| format!(" in lane {l}"))
        .unwrap_or_default();
    if tasks.is_empty() {
        out.line(&format!("No tasks found{in_lane}"));
        return Ok(());
    }
    out.line(&format!("Tasks{in_lane}:"));
    out.line("");
    for t in &tasks {
        out.line(&format!(
            "  {}: {} [{}]",
            t["work_package_id"].as_str().unwrap_or(""),
            t["title"].as_str().unwrap_or(""),
            t["lane"].as_str().unwrap_or("")
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// agent tasks list-dependents

fn list_dependents(out: &Out, a: WpReadArgs) -> Result<(), CliError> {
    feature::check_wp_id(&a.wp_id)?;
    let feat = open_feature(a.feature.as_deref())?;
    let state = read_strict(&feat)?;
    let Some(me) = state.wps.get(&a.wp_id).filter(|w| w.file.is_some()) else {
        return Err(feature::find_wp(&feat, &a.wp_id).err().unwrap_or_else(|| {
            CliError::invalid(format!(
                "work package {} not found in {}",
                a.wp_id,
                feat.tasks_dir().display()
            ))
        }));
    };
    let depends_on = me.dependencies().to_vec();
    let dependents: Vec<String> = state
        .wps
        .values()
        .filter(|w| w.dependencies().iter().any(|d| d == &a.wp_id))
        .map(|w| w.wp_id.clone())
        .collect();
    out.json(&json!({
        "wp_id": a.wp_id,
        "depends_on": depends_on,
        "dependents": dependents,
    }));
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.join(", ")
        }
    };
    out.line(&format!("{} Dependency Info:", out.bold(&a.wp_id)));
    out.line(&format!("  Depends on: {}", list(&depends_on)));
    out.line(&format!("  Depended on by: {}", list(&dependents)));
    if !dependents.is_empty() {
        out.line("");
        out.line(&format!(
            "Changes to {} may impact: {}",
            a.wp_id,
            dependents.join(", ")
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// agent tasks validate-workflow

/// The eight lanes and the `doing` alias: what a WP file may say.
fn lane_ok(s: &str) -> bool {
    wpfile::parse_lane(s).is_ok()
}

fn validate_workflow(out: &Out, a: WpReadArgs) -> Result<(), CliError> {
    feature::check_wp_id(&a.wp_id)?;
    let feat = open_feature(a.feature.as_deref())?;
    let path = feature::find_wp(&feat, &a.wp_id)?;
    let bytes = spec_kitty_protocol::fsutil::read_regular(&path)
        .map_err(|e| CliError::io_at("read", &path, &e))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::invalid(format!("{} is not UTF-8 text", path.display())))?;
    let (fm, body_start) = wpfile::split(&text).ok_or_else(|| {
        CliError::invalid(format!(
            "malformed frontmatter in {}: the file must start with a `---` line and the frontmatter must end with another `---` line",
            path.display()
        ))
    })?;
    let fm_text = &text[fm];
    let value: Value = if fm_text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        yamltext::parse_value(fm_text).map_err(|e| {
            CliError::invalid(format!(
                "malformed frontmatter in {}: {}",
                path.display(),
                e.to_string().lines().next().unwrap_or("")
            ))
        })?
    };
    let obj = value.as_object().ok_or_else(|| {
        CliError::invalid(format!(
            "malformed frontmatter in {}: the frontmatter is not a mapping",
            path.display()
        ))
    })?;
    let scalar = |k: &str| match obj.get(k) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for field in ["work_package_id", "title", "lane"] {
        if scalar(field).is_none() {
            errors.push(format!("Missing required field: {field}"));
        }
    }
    let lane = scalar("lane");
    if let Some(l) = lane.as_deref().filter(|l| !lane_ok(l)) {
        errors.push(format!(
            "Invalid lane '{l}'. Must be one of: {} (or doing, the alias of in_progress)",
            Lane::ALL.map(|l| l.as_wire()).join(", ")
        ));
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(id) = scalar("work_package_id").filter(|id| !file_name.starts_with(id.as_str())) {
        warnings.push(format!(
            "Work package ID '{id}' doesn't match filename '{file_name}'"
        ));
    }
    if !text[body_start..].contains("## Activity Log") {
        warnings.push("Missing Activity Log section".to_string());
    }
    // Beyond 2.1.3: a frontmatter lane the log disagrees with is what
    // makes the two CLIs disagree, so say so (a warning: the log wins).
    if let (Some(l), Ok(state)) = (lane.as_deref(), current::read(&feat)) {
        if let (Ok(fm_lane), Some(s)) = (
            wpfile::parse_lane(l),
            state.snapshot.work_packages.get(&a.wp_id),
        ) {
            if fm_lane != s.lane {
                warnings.push(format!(
                    "frontmatter lane={} but canonical state={} (status.events.jsonl wins; `spec-kitty agent status materialize` rewrites the view)",
                    fm_lane.as_wire(),
                    s.lane.as_wire()
                ));
            }
        }
    }
    let valid = errors.is_empty();
    out.json(&json!({
        "valid": valid,
        "errors": errors,
        "warnings": warnings,
        "task_id": a.wp_id,
        "lane": lane.clone().unwrap_or_else(|| "unknown".into()),
    }));
    if !out.json {
        if valid {
            out.line(&format!("{} {} validation passed", out.green("✓"), a.wp_id));
        } else {
            out.line(&format!("✗ {} validation failed", a.wp_id));
            for e in &errors {
                out.line(&format!("  Error: {e}"));
            }
        }
        if !warnings.is_empty() {
            out.line("");
            out.line("Warnings:");
            for w in &warnings {
                out.line(&format!("  • {w}"));
            }
        }
    }
    // 2.1.3 exits 0 either way (scripts read `valid`); a file that cannot
    // be parsed at all is an error above.
    Ok(())
}
