//! The planning commands between `specify` and `tasks`, as 2.1.3 has them:
//! `plan` / `agent feature setup-plan` (plan.md, committed as "Add plan
//! for feature …"), `research` (research.md, data-model.md, research/*.csv),
//! `agent feature check-prerequisites` and `agent feature branch-context`;
//! plus what the planning commands share: the branch contract 2.1.3 puts in
//! every `--json` answer, and committing only the files a command wrote.

use super::{rel, Ctx};
use crate::cli::{
    AgentFeatureCommand, BranchContextArgs, CheckPrerequisitesArgs, PlanningArgs, ResearchArgs,
};
use crate::error::CliError;
use crate::feature::Feature;
use crate::output::Out;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

pub fn agent_feature(out: &Out, c: AgentFeatureCommand) -> Result<(), CliError> {
    match c {
        AgentFeatureCommand::CreateFeature(a) => super::specify::create_feature(out, a),
        AgentFeatureCommand::SetupPlan(a) => setup_plan(out, a),
        AgentFeatureCommand::CheckPrerequisites(a) => check_prerequisites(out, a),
        AgentFeatureCommand::BranchContext(a) => branch_context(out, a),
        AgentFeatureCommand::FinalizeTasks(a) => {
            super::finalize::run(out, a, super::finalize::Mode::Feature)
        }
        AgentFeatureCommand::Merge(a) => super::merge::run(out, a),
        AgentFeatureCommand::Accept(a) => super::accept::run(out, a.into()),
    }
}

/// Adds 2.1.3's branch contract to a `--json` answer (an object): the same
/// keys in lower and upper case, `runtime_vars` and `branch_context`, so
/// agent prompts written for 2.1.3 find what they read. Also
/// `spec_kitty_version`, which 2.1.3 adds to every such answer.
pub fn branch_contract(payload: &mut Value, target: &str, current: Option<&str>) {
    let Some(p) = payload.as_object_mut() else {
        return;
    };
    let current = current
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or(target);
    let matches = current == target;
    let summary = format!(
        "Current branch at workflow start: {current}. Planning/base branch for this feature: {target}. Completed changes must merge into {target}."
    );
    let now = spec_kitty_protocol::time::now_utc();
    let now = format!("{}Z", &now[..19]);
    let mut runtime = p
        .get("runtime_vars")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in [
        ("now_utc_iso", json!(now)),
        ("current_branch", json!(current)),
        ("target_branch", json!(target)),
        ("base_branch", json!(target)),
        ("planning_base_branch", json!(target)),
        ("merge_target_branch", json!(target)),
        ("branch_matches_target", json!(matches)),
        ("branch_strategy_summary", json!(summary)),
    ] {
        runtime.insert(k.into(), v);
    }
    let context: Map<String, Value> = [
        ("current_branch", json!(current)),
        ("target_branch", json!(target)),
        ("base_branch", json!(target)),
        ("planning_base_branch", json!(target)),
        ("merge_target_branch", json!(target)),
        ("expected_checkout_branch", json!(target)),
        ("matches_target", json!(matches)),
        ("branch_strategy_summary", json!(summary)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in [
        ("current_branch", json!(current)),
        ("CURRENT_BRANCH", json!(current)),
        ("target_branch", json!(target)),
        ("base_branch", json!(target)),
        ("TARGET_BRANCH", json!(target)),
        ("BASE_BRANCH", json!(target)),
        ("planning_base_branch", json!(target)),
        ("PLANNING_BASE_BRANCH", json!(target)),
        ("merge_target_branch", json!(target)),
        ("MERGE_TARGET_BRANCH", json!(target)),
        ("EXPECTED_TARGET_BRANCH", json!(target)),
        ("EXPECTED_BASE_BRANCH", json!(target)),
        ("branch_matches_target", json!(matches)),
        ("BRANCH_MATCHES_TARGET", json!(matches)),
        ("branch_strategy_summary", json!(summary)),
        ("NOW_UTC_ISO", json!(now)),
        ("runtime_vars", Value::Object(runtime)),
        ("branch_context", Value::Object(context)),
    ] {
        p.insert(k.into(), v);
    }
    p.entry("spec_kitty_version")
        .or_insert_with(|| json!(env!("CARGO_PKG_VERSION")));
}

/// Commits exactly `paths` with `message` when the project is a git
/// repository; a failure is a warning (the files are written, the command
/// succeeds). Returns the new commit's hash.
pub fn commit_files(ctx: &Ctx, paths: &[PathBuf], message: &str) -> Option<String> {
    match try_commit_each(ctx, &[(paths, message)]) {
        Ok(mut hashes) => hashes.pop(),
        Err(e) => {
            ctx.out.warn(&e.to_string());
            None
        }
    }
}

/// One commit per `(paths, message)` (see [`crate::gitcommit::commit_each`])
/// in the repository holding kitty-specs/; the hashes of the commits made
/// (none outside git, none for a group with nothing new).
pub fn try_commit_each(
    ctx: &Ctx,
    groups: &[(&[PathBuf], &str)],
) -> Result<Vec<String>, crate::gitcommit::CommitError> {
    let Some(git_root) = ctx.project.git_root.as_ref() else {
        return Ok(Vec::new());
    };
    // Commit in the main repository, where kitty-specs/ lives, even when
    // the command runs inside a worktree.
    let root = if ctx.project.root.join(".git").exists() {
        &ctx.project.root
    } else {
        git_root
    };
    Ok(crate::gitcommit::commit_each(root, groups)?
        .into_iter()
        .filter_map(|c| match c {
            crate::gitcommit::Committed::Yes(h) => Some(h),
            crate::gitcommit::Committed::NothingToCommit => None,
        })
        .collect())
}

/// Fails with 2.1.3's `--json` error answer (`payload`, holding `error`
/// and its other keys) on stdout and `msg` on stderr.
pub fn fail_json(out: &Out, payload: Value, msg: &str) -> CliError {
    out.json(&payload);
    Out {
        json: false,
        ..*out
    }
    .error(msg);
    CliError::reported(crate::error::Kind::Invalid)
}

/// The feature a planning command acts on; when it cannot be told, the
/// `--json` answer carries 2.1.3's keys (`error_code`,
/// `available_features`, `example_command`, `remediation`) so an agent can
/// retry with `--feature`.
pub fn feature_for(
    ctx: &Ctx,
    explicit: Option<&str>,
    code: &str,
    command: &str,
) -> Result<Feature, CliError> {
    ctx.feature(explicit).map_err(|e| {
        if !ctx.out.json || e.kind != crate::error::Kind::Invalid {
            return e;
        }
        let all = crate::feature::list(&ctx.project);
        let mut payload = json!({
            "error": e.message,
            "error_code": code,
            "feature_flag": explicit,
            "available_features": all,
            "remediation": if all.is_empty() {
                "Run /spec-kitty.specify or: spec-kitty agent feature create-feature <name> --json".to_string()
            } else {
                "Re-run with --feature <slug>".to_string()
            },
            "spec_kitty_version": env!("CARGO_PKG_VERSION"),
        });
        if let Some(first) = all.first() {
            payload["example_command"] =
                json!(format!("spec-kitty agent feature {command} --feature {first} --json"));
        }
        let msg = e.message.clone();
        fail_json(&ctx.out, payload, &msg)
    })
}

/// The branch a feature's planning happens on and lands in: `target_branch`
/// in its meta.json, else the current branch, else `main` (2.1.3's rule).
pub fn feature_target_branch(ctx: &Ctx, feat: &Feature) -> String {
    crate::feature::read_meta(feat)
        .ok()
        .and_then(|(_, m)| {
            m.get("target_branch")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .or_else(|| current_branch(ctx))
        .unwrap_or_else(|| "main".to_string())
}

/// The checked-out branch (`None` when detached or outside git).
pub fn current_branch(ctx: &Ctx) -> Option<String> {
    ctx.git.branch.clone().filter(|b| b != "HEAD")
}

/// A project template file (`.kittify/templates/NAME`, as 2.1.3 looks for
/// it first), else `ours`.
pub fn template(root: &Path, name: &str, ours: &str) -> String {
    let p = root.join(".kittify").join("templates").join(name);
    crate::fsutil::read_repo_file(root, &p)
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| ours.to_string())
}

pub fn setup_plan(out: &Out, a: PlanningArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = feature_for(
        &ctx,
        a.feature.as_deref(),
        "PLAN_CONTEXT_UNRESOLVED",
        "setup-plan",
    )?;
    let spec = feat.dir.join("spec.md");
    if crate::fsutil::read_repo_file(&ctx.project.root, &spec)?.is_none() {
        let msg = format!(
            "required spec not found for feature '{}': {} does not exist; write the spec first (`spec-kitty specify`) or pick another feature with --feature",
            feat.slug,
            spec.display()
        );
        let payload = json!({
            "error": msg,
            "error_code": "SPEC_FILE_MISSING",
            "feature_slug": feat.slug,
            "feature_dir": feat.dir.display().to_string(),
            "spec_file": spec.display().to_string(),
            "remediation": [
                format!("Restore the missing spec file at {}", spec.display()),
                "Or select another feature explicitly: spec-kitty agent feature setup-plan --feature <feature-slug> --json",
            ],
        });
        return Err(fail_json(out, payload, &msg));
    }
    let target = feature_target_branch(&ctx, &feat);
    let plan = feat.dir.join("plan.md");
    // 2.1.3 copies the template over plan.md every time; a plan that is
    // already there is someone's work, so it is kept.
    let existed = crate::fsutil::read_repo_file(&ctx.project.root, &plan)?.is_some();
    if !existed {
        let text = template(&ctx.project.root, "plan-template.md", PLAN_TEMPLATE)
            .replace("[FEATURE]", &feat.slug);
        crate::fsutil::write_repo_file(&ctx.project.root, &plan, text.as_bytes())?;
    }
    let commit = if a.commit.enabled(&ctx.project.root) {
        commit_files(
            &ctx,
            std::slice::from_ref(&plan),
            &format!("Add plan for feature {}", feat.slug),
        )
    } else {
        None
    };
    out.line(&format!(
        "{} Plan {}: {}",
        out.green("✓"),
        if existed { "kept" } else { "scaffolded" },
        rel(&ctx, &plan)
    ));
    if commit.is_some() {
        out.line(&format!(
            "  Plan committed to {}",
            current_branch(&ctx).unwrap_or_default()
        ));
    }
    let mut payload = json!({
        "result": "success",
        "feature_slug": feat.slug,
        "plan_file": plan.display().to_string(),
        "feature_dir": feat.dir.display().to_string(),
        "spec_file": spec.display().to_string(),
        "plan_existed": existed,
        "commit_hash": commit,
    });
    branch_contract(&mut payload, &target, current_branch(&ctx).as_deref());
    out.json(&payload);
    Ok(())
}

/// 2.1.3's markers of an unfilled plan template; five or more still in
/// plan.md mean the plan was not written yet.
const PLAN_MARKERS: [&str; 11] = [
    "[FEATURE]",
    "[###-feature-name]",
    "[DATE]",
    "[link]",
    "[Extract from feature spec:",
    "ACTION REQUIRED: Replace the content",
    "[e.g., Python 3.11",
    "or NEEDS CLARIFICATION",
    "# [REMOVE IF UNUSED]",
    "[Gates determined based on constitution file]",
    "[Document the selected structure",
];

pub fn research(out: &Out, a: ResearchArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let root = &ctx.project.root;
    let plan = feat.dir.join("plan.md");
    if let Some(b) = crate::fsutil::read_repo_file(root, &plan)? {
        let text = String::from_utf8_lossy(&b);
        let found: Vec<&str> = PLAN_MARKERS
            .iter()
            .copied()
            .filter(|m| text.contains(m))
            .collect();
        if found.len() >= 5 {
            return Err(CliError::invalid(format!(
                "{} is still the unfilled template ({} template markers, e.g. {}); fill in the plan (/spec-kitty.plan) before research",
                plan.display(),
                found.len(),
                found[..3].join(", ")
            )));
        }
    }
    let mut artifacts = Vec::new();
    let mut created = Vec::new();
    for (relp, ours) in [
        ("research.md", RESEARCH_MD),
        ("data-model.md", DATA_MODEL_MD),
        ("research/evidence-log.csv", EVIDENCE_CSV),
        ("research/source-register.csv", SOURCES_CSV),
    ] {
        let dest = feat.dir.join(relp);
        let exists = crate::fsutil::read_repo_file(root, &dest)?.is_some();
        if !exists || a.force {
            if let Some(parent) = dest.parent() {
                crate::fsutil::check_repo_dir(root, parent)?;
                std::fs::create_dir_all(parent)
                    .map_err(|e| CliError::io_at("create", parent, &e))?;
            }
            let name = Path::new(relp).file_name().unwrap().to_string_lossy();
            let text = template(root, &name, ours);
            crate::fsutil::write_repo_file(root, &dest, text.as_bytes())?;
            created.push(relp);
        }
        artifacts.push(dest);
    }
    out.line(&format!(
        "{} Research artifacts of {}:",
        out.green("✓"),
        feat.slug
    ));
    for (p, relp) in artifacts.iter().zip([
        "research.md",
        "data-model.md",
        "research/evidence-log.csv",
        "research/source-register.csv",
    ]) {
        let state = if created.contains(&relp) {
            "created"
        } else {
            "kept"
        };
        out.line(&format!("  - {} ({state})", rel(&ctx, p)));
    }
    out.json(&json!({
        "result": "success",
        "feature": feat.slug,
        "feature_dir": feat.dir.display().to_string(),
        "artifacts": artifacts.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "created": created,
    }));
    Ok(())
}

pub fn check_prerequisites(out: &Out, a: CheckPrerequisitesArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = feature_for(
        &ctx,
        a.feature.as_deref(),
        "FEATURE_CONTEXT_UNRESOLVED",
        "check-prerequisites",
    )?;
    let include_tasks = a.include_tasks || a.require_tasks;
    let dir = &feat.dir;
    let s = |p: &Path| p.display().to_string();
    let (mut errors, mut warnings) = (Vec::<String>::new(), Vec::<String>::new());
    let (mut paths, mut files, mut dirs) = (Map::new(), Map::new(), Map::new());
    let mut docs: Vec<&str> = Vec::new();
    for (file, key) in [
        ("spec.md", "spec_file"),
        ("plan.md", "plan_file"),
        ("tasks.md", "tasks_file"),
    ] {
        let p = dir.join(file);
        if p.is_file() {
            paths.insert(key.into(), json!(s(&p)));
            files.insert(key.into(), json!(s(&p)));
            docs.push(file);
        } else if file == "spec.md" || (file == "tasks.md" && include_tasks) {
            errors.push(format!("Missing required file: {file}"));
        }
    }
    for d in ["checklists", "research", "tasks"] {
        let p = dir.join(d);
        if p.is_dir() {
            paths.insert(format!("{d}_dir"), json!(s(&p)));
            dirs.insert(format!("{d}_dir"), json!(s(&p)));
        } else {
            warnings.push(format!("Missing recommended directory: {d}/"));
        }
    }
    paths.insert("feature_dir".into(), json!(s(dir)));
    dirs.insert("feature_dir".into(), json!(s(dir)));
    docs.sort_unstable();
    let target = feature_target_branch(&ctx, &feat);
    let valid = errors.is_empty();
    let mut payload = if a.paths_only {
        let mut p = paths.clone();
        let get = |k: &str| paths.get(k).cloned().unwrap_or(json!(""));
        p.insert("artifact_files".into(), Value::Object(files));
        p.insert("artifact_dirs".into(), Value::Object(dirs));
        p.insert("available_docs".into(), json!(docs));
        for (alias, k) in [
            ("FEATURE_DIR", "feature_dir"),
            ("SPEC_FILE", "spec_file"),
            ("PLAN_FILE", "plan_file"),
            ("TASKS_FILE", "tasks_file"),
            ("FEATURE_SPEC", "spec_file"),
            ("IMPL_PLAN", "plan_file"),
            ("TASKS", "tasks_file"),
        ] {
            p.insert(alias.into(), get(k));
        }
        p.insert("SPECS_DIR".into(), json!(s(&ctx.project.specs_dir())));
        Value::Object(p)
    } else {
        json!({
            "valid": valid,
            "errors": errors,
            "warnings": warnings,
            "paths": paths,
            "artifact_files": files,
            "artifact_dirs": dirs,
            "available_docs": docs,
            "FEATURE_DIR": s(dir),
            "AVAILABLE_DOCS": docs,
        })
    };
    branch_contract(&mut payload, &target, current_branch(&ctx).as_deref());
    if valid {
        out.line(&format!("{} Prerequisites check passed", out.green("✓")));
        out.line(&format!("   Feature: {}", feat.slug));
    } else {
        out.line("✗ Prerequisites check failed");
        for e in &errors {
            out.line(&format!("   • {e} (in {})", dir.display()));
        }
    }
    for w in &warnings {
        out.line(&format!("   warning: {w}"));
    }
    out.json(&payload);
    // As 2.1.3: the answer reports validity; the exit code is 0 either way,
    // so agents read `valid` (and `errors`) from the JSON.
    Ok(())
}

pub fn branch_context(out: &Out, a: BranchContextArgs) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    if ctx.project.git_root.is_none() {
        return Err(CliError::invalid(format!(
            "{} is not in a git repository; the branch context needs git",
            ctx.project.root.display()
        )));
    }
    let Some(current) = current_branch(&ctx) else {
        return Err(CliError::invalid(
            "HEAD is detached: check out a branch to resolve the branch context",
        ));
    };
    let given = a
        .target_branch
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let target = given.unwrap_or(&current).to_string();
    let mut payload = json!({
        "result": "success",
        "repo_root": ctx.project.root.display().to_string(),
        "target_branch_source": if given.is_some() { "cli_arg" } else { "current_branch" },
        "next_step": "Use this deterministic branch contract during specify/plan prompts; do not rediscover branch state inside the LLM.",
    });
    branch_contract(&mut payload, &target, Some(&current));
    out.line(&format!("Current branch: {current}"));
    out.line(&format!("Planning/base branch: {target}"));
    out.line(&format!("Merge target: {target}"));
    out.line(&format!("Matches target: {}", current == target));
    out.json(&payload);
    Ok(())
}

const PLAN_TEMPLATE: &str = "# Implementation Plan: [FEATURE]

**Spec**: [spec.md](spec.md)

## Summary

<!-- The approach in a few sentences: what gets built and how. -->

## Technical Context

**Language/Version**:
**Primary Dependencies**:
**Storage**:
**Testing**:
**Target Platform**:
**Performance Goals**:
**Constraints**:

## Project Structure

<!-- The directories and files this feature adds or changes. -->

## Design Decisions

<!-- Each decision, the alternatives considered, and why. -->

## Risks

<!-- What could go wrong and how the work packages guard against it. -->
";

const RESEARCH_MD: &str = "# Research

## Questions

<!-- What must be known before building, one heading per question. -->

## Findings

<!-- Each finding with its evidence (see research/evidence-log.csv) and
     its sources (research/source-register.csv). -->

## Decisions

<!-- Decision, rationale, alternatives considered. -->
";

const DATA_MODEL_MD: &str = "# Data Model

## Entities

<!-- Each entity: fields, types, constraints, relationships. -->

## State Transitions

<!-- Lifecycles, if any. -->
";

const EVIDENCE_CSV: &str = "timestamp,source_type,citation,key_finding,confidence,notes\n";
const SOURCES_CSV: &str = "source_id,citation,url,accessed_date,relevance,status\n";
