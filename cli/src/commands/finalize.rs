//! Finalizing a feature's tasks as 2.1.3 does (`spec-kitty tasks`, `agent
//! feature finalize-tasks`, `agent tasks finalize-tasks`), and `agent tasks
//! map-requirements`.
//!
//! Finalize reads `tasks.md` (work-package sections, "depends on" and
//! "Requirement Refs" lines) and each WP's frontmatter, checks the
//! dependency graph and (feature variant) that every WP names requirements
//! of spec.md and every functional requirement is covered, then writes
//! `dependencies`, `requirement_refs`, `planning_base_branch`,
//! `merge_target_branch` and `branch_strategy` into each WP file (surgical
//! edits; the rest of each file stays byte for byte), commits "Add tasks
//! for feature …", and sends `WPCreated` for each WP not announced before.
//!
//! Announced before means: listed in meta.json `announced_wps` (this CLI
//! records every WP it announces there), or already carrying the
//! `branch_strategy` sentence that only a finalize writes (2.1.3's writes
//! it in the same run as it sends `WPCreated`, so a WP that has it was
//! announced by the Python CLI, or by us). Either way no WP is announced
//! twice, whichever CLI finalized first. (2.1.3 itself re-announces every
//! WP on each run; that is the Python CLI's doing, not ours.)

use super::plan::{commit_files, current_branch, fail_json, feature_for};
use super::{rel, Ctx};
use crate::cli::{MapRequirementsArgs, PlanningArgs};
use crate::emit::{events_json, Changes};
use crate::error::CliError;
use crate::feature;
use crate::output::Out;
use crate::tasksmd;
use crate::wpfile::WpFile;
use crate::yamltext;
use serde_json::{json, Value};
use spec_kitty_protocol::envelope::{Payload, WpCreated};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which finalize: `agent feature finalize-tasks` / `tasks` (checks the
/// requirement mapping) or `agent tasks finalize-tasks` (does not, as in
/// 2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Feature,
    Tasks,
}

const STRATEGY_HEAD: &str = "Planning artifacts for this feature were generated on ";
const STRATEGY_MID: &str = ". During /spec-kitty.implement this WP may branch from a dependency-specific base, but completed changes must merge back into ";
const STRATEGY_TAIL: &str = " unless the human explicitly redirects the landing branch.";

/// 2.1.3's `branch_strategy` sentence for a planning branch.
fn strategy(branch: &str) -> String {
    format!("{STRATEGY_HEAD}{branch}{STRATEGY_MID}{branch}{STRATEGY_TAIL}")
}

/// Was this frontmatter written by a finalize (2.1.3's or ours)?
fn finalized(fm: &Value) -> bool {
    fm.get("branch_strategy")
        .and_then(Value::as_str)
        .is_some_and(|s| {
            s.starts_with(STRATEGY_HEAD) && s.contains(STRATEGY_MID) && s.ends_with(STRATEGY_TAIL)
        })
}

/// Was this WP finalized (so announced) already? For `tasks finalize`,
/// which announces without finalizing.
pub fn announced_by_finalize(wp: &WpFile) -> bool {
    parse_fm(wp).is_ok_and(|fm| finalized(&fm))
}

/// Key order of 2.1.3's WP frontmatter, for placing keys that are missing.
const ORDER: [&str; 8] = [
    "work_package_id",
    "title",
    "lane",
    "dependencies",
    "requirement_refs",
    "planning_base_branch",
    "merge_target_branch",
    "branch_strategy",
];

/// A list as YAML: `[]`, or a block sequence as 2.1.3 (ruamel) writes it.
fn yaml_list(items: &[String]) -> String {
    if items.is_empty() {
        "[]".to_string()
    } else {
        items
            .iter()
            .map(|i| format!("\n- {}", yamltext::scalar(i)))
            .collect()
    }
}

fn parse_fm(wp: &WpFile) -> Result<Value, CliError> {
    if wp.frontmatter().trim().is_empty() {
        return Ok(json!({}));
    }
    yamltext::parse_value(wp.frontmatter()).map_err(|e| {
        CliError::invalid(format!(
            "malformed frontmatter in {}: {}",
            wp.path.display(),
            e.to_string().lines().next().unwrap_or("")
        ))
    })
}

/// `wp`'s text with `fields` set in its frontmatter (only those whose value
/// differs or whose key is missing), checked by reading it back. `None`
/// when nothing changes.
fn set_fields(
    wp: &WpFile,
    fm: &Value,
    fields: &[(&str, Value)],
) -> Result<Option<String>, CliError> {
    let mut text = wp.frontmatter().to_string();
    let mut changed = false;
    for (key, want) in fields {
        if fm.get(*key) == Some(want) && yamltext::find_key(&text, key).is_some() {
            continue;
        }
        let rendered = match want {
            Value::Array(a) => {
                let items: Vec<String> = a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                yaml_list(&items)
            }
            Value::String(s) => yamltext::scalar(s),
            other => other.to_string(),
        };
        let pos = ORDER.iter().position(|k| k == key).unwrap_or(ORDER.len());
        text = yamltext::set_key(&text, key, &rendered, &ORDER[..pos]);
        changed = true;
    }
    if !changed {
        return Ok(None);
    }
    let full = format!(
        "{}{}{}",
        &wp.text[..wp.fm.start],
        text,
        &wp.text[wp.fm.end..]
    );
    let back = WpFile::parse(&wp.path, full.clone())?;
    let back_fm = parse_fm(&back)?;
    // Every field reads back as set, and every other key as it was (a key
    // line inside a multi-line quoted scalar must not be taken for a key).
    let others_kept = fm.as_object().is_some_and(|before| {
        before
            .iter()
            .filter(|(k, _)| !fields.iter().any(|(f, _)| f == k))
            .all(|(k, v)| back_fm.get(k) == Some(v))
    });
    for (key, want) in fields {
        if back_fm.get(*key) != Some(want) || !others_kept {
            return Err(CliError::invalid(format!(
                "cannot set `{key}` in the frontmatter of {} without disturbing its other lines; fix the file's YAML by hand and run again",
                wp.path.display()
            )));
        }
    }
    Ok(Some(full))
}

/// What one WP will get.
struct Plan {
    wp: WpFile,
    fm: Value,
    deps: Vec<String>,
    refs: Vec<String>,
    title: String,
}

/// One list of each WP, by WP id (the `*_parsed` keys of the answers).
fn by_wp<'a>(
    plans: &'a [Plan],
    f: impl Fn(&'a Plan) -> &'a Vec<String>,
) -> BTreeMap<&'a str, &'a Vec<String>> {
    plans
        .iter()
        .map(|p| (p.wp.meta.wp_id.as_str(), f(p)))
        .collect()
}

fn read_text(root: &Path, path: &Path) -> Result<Option<String>, CliError> {
    match crate::fsutil::read_repo_file(root, path)? {
        None => Ok(None),
        Some(b) => String::from_utf8(b)
            .map(|t| Some(t.trim_start_matches('\u{feff}').to_string()))
            .map_err(|_| CliError::invalid(format!("{} is not UTF-8 text", path.display()))),
    }
}

/// Requirement ids of spec.md: (all, functional), sorted.
fn spec_ids(spec: &str) -> (Vec<String>, Vec<String>) {
    let mut all = tasksmd::requirement_ids(spec);
    all.sort();
    let functional = all
        .iter()
        .filter(|i| i.starts_with("FR-"))
        .cloned()
        .collect();
    (all, functional)
}

pub fn run(out: &Out, a: PlanningArgs, mode: Mode) -> Result<(), CliError> {
    let ctx = Ctx::open(out)?;
    let feat = feature_for(
        &ctx,
        a.feature.as_deref(),
        "FEATURE_CONTEXT_UNRESOLVED",
        "finalize-tasks",
    )?;
    let root = ctx.project.root.clone();
    let tasks_dir = feat.tasks_dir();
    if !tasks_dir.is_dir() {
        return Err(CliError::invalid(format!(
            "tasks directory not found: {} (the work package files go there, one WPnn-title.md each)",
            tasks_dir.display()
        )));
    }
    // 2.1.3: the feature variant needs spec.md, the tasks variant tasks.md.
    let need = |path: &Path, needed: bool, why: &str| -> Result<Option<String>, CliError> {
        match read_text(&root, path)? {
            None if needed => Err(CliError::invalid(format!(
                "{} not found: {} ({why})",
                path.file_name().unwrap_or_default().to_string_lossy(),
                path.display()
            ))),
            t => Ok(t),
        }
    };
    let spec_path = feat.dir.join("spec.md");
    let spec = need(
        &spec_path,
        mode == Mode::Feature,
        "finalize checks the work packages' requirement refs against it",
    )?;
    let tasks_md_path = feat.dir.join("tasks.md");
    let tasks_md = need(
        &tasks_md_path,
        mode == Mode::Tasks,
        "its WPnn sections name each work package's dependencies",
    )?;
    let _lock = feature::lock_feature(&feat)?;
    let sections = tasksmd::sections(tasks_md.as_deref().unwrap_or(""));
    let section = |id: &str| sections.iter().find(|s| s.wp_id == id);
    let mut plans = Vec::new();
    for wp in feature::load_wps(&feat)? {
        let fm = parse_fm(&wp)?;
        let id = wp.meta.wp_id.clone();
        let deps = match section(&id) {
            Some(s) => s.dependencies.clone(),
            None => wp.meta.dependencies.clone(),
        };
        let mut refs = tasksmd::normalize_refs(fm.get("requirement_refs"));
        if refs.is_empty() {
            refs = section(&id)
                .map(|s| s.requirement_refs.clone())
                .unwrap_or_default();
        }
        let title = Some(wp.meta.title.trim())
            .filter(|t| !t.is_empty())
            .unwrap_or(&id)
            .to_string();
        plans.push(Plan {
            wp,
            fm,
            deps,
            refs,
            title,
        });
    }
    check_graph(&plans, &sections, &tasks_md_path)?;
    let (all_ids, functional) = spec_ids(spec.as_deref().unwrap_or(""));
    if mode == Mode::Feature {
        check_mapping(out, &plans, &all_ids, &functional, &spec_path)?;
    }

    let current = current_branch(&ctx);
    let branch = current.clone().unwrap_or_else(|| "main".to_string());
    let (meta_text, meta) = feature::read_meta(&feat)?;
    let mut announced = feature::announced(&meta);
    let mut changes = Changes::new(&root);
    let mut updated = 0;
    let mut fresh: Vec<&Plan> = Vec::new();
    for p in &plans {
        let id = &p.wp.meta.wp_id;
        // A WP carrying the finalize sentence was announced by 2.1.3 (the
        // sentence stays in its file, so meta.json need not list it: a
        // re-run then changes nothing and commits nothing, as in 2.1.3).
        if !announced.contains(id) && !finalized(&p.fm) {
            fresh.push(p);
        }
        let fields = [
            ("dependencies", json!(p.deps)),
            ("requirement_refs", json!(p.refs)),
            ("planning_base_branch", json!(branch)),
            ("merge_target_branch", json!(branch)),
            ("branch_strategy", json!(strategy(&branch))),
        ];
        if let Some(new) = set_fields(&p.wp, &p.fm, &fields)? {
            changes.replace(&p.wp.path, &p.wp.text, new);
            updated += 1;
        }
    }
    let causation = spec_kitty_protocol::identity::new_ulid();
    let mut envs = Vec::with_capacity(fresh.len());
    for p in &fresh {
        envs.push(ctx.emitter.build(
            &Payload::WPCreated(WpCreated {
                wp_id: p.wp.meta.wp_id.clone(),
                title: p.title.clone(),
                feature_slug: feat.slug.clone(),
                dependencies: p.deps.clone(),
            }),
            Some(causation.clone()),
        )?);
    }
    let fresh_ids: Vec<String> = fresh.iter().map(|p| p.wp.meta.wp_id.clone()).collect();
    announced.extend(fresh_ids.iter().cloned());
    if !fresh_ids.is_empty() {
        let new_meta = feature::meta_with(&feat, &meta_text, "announced_wps", json!(announced))?;
        if meta_text.is_empty() {
            changes.create(&feat.meta_path(), new_meta);
        } else {
            changes.replace(&feat.meta_path(), &meta_text, new_meta);
        }
    }
    let deliveries = changes.commit(&ctx.emitter, &envs, &mut ctx.warner())?;

    // 2.1.3 commits tasks.md and every file in tasks/; meta.json too here,
    // since it now lists the announced work packages.
    let mut files: Vec<PathBuf> = Vec::new();
    if tasks_md.is_some() {
        files.push(tasks_md_path.clone());
    }
    let mut in_tasks: Vec<PathBuf> = std::fs::read_dir(&tasks_dir)
        .map_err(|e| CliError::io_at("read", &tasks_dir, &e))?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    in_tasks.sort();
    files.extend(in_tasks);
    if feat.meta_path().is_file() {
        files.push(feat.meta_path());
    }
    let commit = if a.commit.enabled(&root) {
        commit_files(
            &ctx,
            &files,
            &format!("Add tasks for feature {}", feat.slug),
        )
    } else {
        None
    };

    let deps_map = by_wp(&plans, |p| &p.deps);
    let refs_map = by_wp(&plans, |p| &p.refs);
    out.line(&format!(
        "{} Finalized {} work package(s) of {} ({} file(s) updated)",
        out.green("✓"),
        plans.len(),
        feat.slug,
        updated
    ));
    match &commit {
        Some(h) => out.line(&format!(
            "  Tasks committed to {}: {}",
            current.as_deref().unwrap_or("HEAD"),
            &h[..7.min(h.len())]
        )),
        None => {
            out.line("  No commit made (nothing changed, auto-commit off, or not a git repository)")
        }
    }
    if !fresh_ids.is_empty() {
        out.line(&format!("  Announced: {}", fresh_ids.join(", ")));
    }
    let mut payload = json!({
        "result": "success",
        "feature": feat.slug,
        "wp_count": plans.len(),
        "updated_wp_count": updated,
        "tasks_dir": tasks_dir.display().to_string(),
        "commit_created": commit.is_some(),
        "commit_hash": commit,
        "files_committed": files.iter().map(|f| rel(&ctx, f)).collect::<Vec<_>>(),
        "dependencies_parsed": deps_map,
        "requirement_refs_parsed": refs_map,
        "announced": fresh_ids,
        "causation_id": if envs.is_empty() { Value::Null } else { json!(causation) },
        "events": events_json(&envs, &deliveries),
    });
    if mode == Mode::Tasks {
        // `agent tasks finalize-tasks` answers with these keys in 2.1.3.
        payload["updated"] = json!(updated);
        payload["dependencies"] = json!(deps_map);
    }
    payload["spec_kitty_version"] = json!(env!("CARGO_PKG_VERSION"));
    out.json(&payload);
    Ok(())
}

/// Every dependency names another WP of the feature (a file in tasks/ or
/// a section of tasks.md), and there is no cycle.
fn check_graph(
    plans: &[Plan],
    sections: &[tasksmd::Section],
    tasks_md: &Path,
) -> Result<(), CliError> {
    let known = |id: &str| {
        plans.iter().any(|p| p.wp.meta.wp_id == id) || sections.iter().any(|s| s.wp_id == id)
    };
    let where_ = |id: &str| match sections.iter().find(|s| s.wp_id == id) {
        Some(s) => format!("{}:{}", tasks_md.display(), s.line),
        None => plans
            .iter()
            .find(|p| p.wp.meta.wp_id == id)
            .map(|p| p.wp.path.display().to_string())
            .unwrap_or_default(),
    };
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in plans {
        let id = &p.wp.meta.wp_id;
        for d in &p.deps {
            if d == id {
                return Err(CliError::invalid(format!(
                    "{}: {id} depends on itself (rule: a work package cannot depend on itself)",
                    where_(id)
                )));
            }
            if !known(d) {
                return Err(CliError::invalid(format!(
                    "{}: {id} depends on {d}, which has no section in tasks.md and no file in tasks/ (rule: every dependency must be a work package of this feature)",
                    where_(id)
                )));
            }
        }
        graph.insert(id.clone(), p.deps.clone());
    }
    if let Some(cycle) = tasksmd::find_cycle(&graph) {
        return Err(CliError::invalid(format!(
            "{}: circular dependency {} (rule: dependencies must not form a cycle)",
            where_(&cycle[0]),
            cycle.join(" → ")
        )));
    }
    Ok(())
}

/// 2.1.3's requirement-mapping gate: every WP names requirements, each one
/// defined in spec.md, and every functional requirement is covered. On
/// failure the `--json` answer carries 2.1.3's keys.
fn check_mapping(
    out: &Out,
    plans: &[Plan],
    all_ids: &[String],
    functional: &[String],
    spec_path: &Path,
) -> Result<(), CliError> {
    let mut missing: Vec<&str> = Vec::new();
    let mut unknown: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut mapped: Vec<&str> = Vec::new();
    for p in plans {
        let id = p.wp.meta.wp_id.as_str();
        if p.refs.is_empty() {
            missing.push(id);
            continue;
        }
        let bad: Vec<&str> = p
            .refs
            .iter()
            .filter(|r| !all_ids.contains(r))
            .map(String::as_str)
            .collect();
        if bad.is_empty() {
            mapped.extend(p.refs.iter().map(String::as_str));
        } else {
            unknown.insert(id, bad);
        }
    }
    missing.sort_unstable();
    let unmapped: Vec<&str> = functional
        .iter()
        .map(String::as_str)
        .filter(|f| !mapped.contains(f))
        .collect();
    if missing.is_empty() && unknown.is_empty() && unmapped.is_empty() {
        return Ok(());
    }
    let mut why = Vec::new();
    if !missing.is_empty() {
        why.push(format!(
            "no requirement refs for {} (give each a `Requirement Refs:` line in tasks.md or run `spec-kitty agent tasks map-requirements`)",
            missing.join(", ")
        ));
    }
    for (wp, refs) in &unknown {
        why.push(format!(
            "{wp} names {} not defined in {}",
            refs.join(", "),
            spec_path.display()
        ));
    }
    if !unmapped.is_empty() {
        why.push(format!(
            "functional requirements of {} covered by no work package: {}",
            spec_path.display(),
            unmapped.join(", ")
        ));
    }
    let msg = format!("requirement mapping validation failed: {}", why.join("; "));
    let deps = by_wp(plans, |p| &p.deps);
    let refs = by_wp(plans, |p| &p.refs);
    let payload = json!({
        "error": msg,
        "missing_requirement_refs_wps": missing,
        "unknown_requirement_refs": unknown,
        "unmapped_functional_requirements": unmapped,
        "dependencies_parsed": deps,
        "requirement_refs_parsed": refs,
    });
    Err(fail_json(out, payload, &msg))
}

pub fn map_requirements(out: &Out, a: MapRequirementsArgs) -> Result<(), CliError> {
    let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    match (&a.batch, &a.wp, &a.refs) {
        (Some(batch), None, None) => {
            let v: Value = serde_json::from_str(batch)
                .map_err(|e| CliError::invalid(format!("--batch is not valid JSON: {e}")))?;
            let obj = v.as_object().ok_or_else(|| {
                CliError::invalid("--batch must be a JSON object {\"WP01\": [\"FR-001\"], ...}")
            })?;
            for (wp, refs) in obj {
                let list = refs
                    .as_array()
                    .filter(|l| l.iter().all(Value::is_string))
                    .ok_or_else(|| {
                        CliError::invalid(format!(
                            "--batch: the refs of {wp} must be a list of strings"
                        ))
                    })?;
                wanted.insert(
                    wp.to_uppercase(),
                    list.iter()
                        .filter_map(|r| r.as_str())
                        .map(|r| r.trim().to_uppercase())
                        .collect(),
                );
            }
        }
        (None, Some(wp), Some(refs)) => {
            wanted.insert(
                wp.trim().to_uppercase(),
                refs.split(',')
                    .map(|r| r.trim().to_uppercase())
                    .filter(|r| !r.is_empty())
                    .collect(),
            );
        }
        _ => {
            return Err(CliError::invalid(
                "give either --wp WPnn with --refs FR-001,... or --batch '{\"WPnn\": [...]}'",
            ))
        }
    }
    let malformed: Vec<&str> = wanted
        .values()
        .flatten()
        .filter(|r| tasksmd::requirement_ids(r).first().map(String::as_str) != Some(r.as_str()))
        .map(String::as_str)
        .collect();
    if !malformed.is_empty() {
        let msg = format!(
            "invalid requirement ref format: {} (refs are FR-NNN, NFR-NNN or C-NNN)",
            malformed.join(", ")
        );
        let payload = json!({"error": msg, "malformed_refs": malformed,
            "hint": "Refs must match FR-NNN, NFR-NNN, or C-NNN format"});
        return Err(fail_json(out, payload, &msg));
    }
    let ctx = Ctx::open(out)?;
    let feat = ctx.feature(a.feature.as_deref())?;
    let root = ctx.project.root.clone();
    let spec_path = feat.dir.join("spec.md");
    let spec = read_text(&root, &spec_path)?.ok_or_else(|| {
        CliError::invalid(format!(
            "spec.md not found: {} (refs are checked against the requirement ids it defines)",
            spec_path.display()
        ))
    })?;
    let (all_ids, functional) = spec_ids(&spec);
    let unknown: Vec<&str> = wanted
        .values()
        .flatten()
        .filter(|r| !all_ids.contains(r))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let defined = if all_ids.is_empty() {
            "none".to_string()
        } else {
            all_ids.join(", ")
        };
        let msg = format!(
            "requirement refs not defined in {}: {} (defined: {defined})",
            spec_path.display(),
            unknown.join(", "),
        );
        let payload = json!({"error": msg, "unknown_refs": unknown,
            "hint": format!("Refs not found in spec.md. Available: {defined}")});
        return Err(fail_json(out, payload, &msg));
    }
    let _lock = feature::lock_feature(&feat)?;
    let wps = feature::load_wps(&feat)?;
    let unknown_wps: Vec<&str> = wanted
        .keys()
        .filter(|w| !wps.iter().any(|p| &p.meta.wp_id == *w))
        .map(String::as_str)
        .collect();
    if !unknown_wps.is_empty() {
        let available: Vec<&str> = wps.iter().map(|w| w.meta.wp_id.as_str()).collect();
        let msg = format!(
            "unknown work package(s) {} in {} (available: {})",
            unknown_wps.join(", "),
            feat.tasks_dir().display(),
            available.join(", ")
        );
        let payload = json!({"error": msg, "unknown_wps": unknown_wps,
            "hint": format!("Available WPs: {}", available.join(", "))});
        return Err(fail_json(out, payload, &msg));
    }
    let tasks_md = read_text(&root, &feat.dir.join("tasks.md"))?;
    let sections = tasksmd::sections(tasks_md.as_deref().unwrap_or(""));
    let mut changes = Changes::new(&root);
    let mut written = Vec::new();
    let mut totals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stale: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for wp in &wps {
        let id = &wp.meta.wp_id;
        let fm = parse_fm(wp)?;
        let mut refs = tasksmd::normalize_refs(fm.get("requirement_refs"));
        if let Some(new) = wanted.get(id) {
            if !a.replace {
                if refs.is_empty() {
                    refs = sections
                        .iter()
                        .find(|s| &s.wp_id == id)
                        .map(|s| s.requirement_refs.clone())
                        .unwrap_or_default();
                }
                refs.extend(new.iter().cloned());
            } else {
                refs = new.clone();
            }
            refs.sort();
            refs.dedup();
            if let Some(text) = set_fields(wp, &fm, &[("requirement_refs", json!(refs))])? {
                changes.replace(&wp.path, &wp.text, text);
            }
            written.push(wp.path.clone());
        }
        let bad: Vec<String> = refs
            .iter()
            .filter(|r| !all_ids.contains(r))
            .cloned()
            .collect();
        if !bad.is_empty() {
            stale.insert(id.clone(), bad);
        }
        if !refs.is_empty() {
            totals.insert(id.clone(), refs);
        }
    }
    if !stale.is_empty() {
        let list: Vec<String> = stale
            .iter()
            .map(|(w, r)| format!("{w}: {}", r.join(", ")))
            .collect();
        return Err(CliError::invalid(format!(
            "work package frontmatter names requirements not defined in {}: {}; correct them with --replace, e.g. `spec-kitty agent tasks map-requirements --wp WP01 --refs FR-001 --replace`",
            spec_path.display(),
            list.join("; ")
        )));
    }
    changes.apply()?;
    let committed = if a.commit.enabled(&root) && !written.is_empty() {
        let ids: Vec<&str> = wanted.keys().map(String::as_str).collect();
        commit_files(
            &ctx,
            &written,
            &format!(
                "chore: Map requirements for {} on spec {}",
                ids.join(", "),
                feat.number()
            ),
        )
        .is_some()
    } else {
        false
    };
    let mapped: Vec<&String> = totals.values().flatten().collect();
    let unmapped: Vec<&String> = functional.iter().filter(|f| !mapped.contains(f)).collect();
    out.line(&format!("{} Requirement mappings saved", out.green("✓")));
    for (wp, refs) in &wanted {
        out.line(&format!("  {wp}: {}", refs.join(", ")));
    }
    out.line(&format!(
        "  Coverage: {}/{} functional requirements mapped",
        functional.len() - unmapped.len(),
        functional.len()
    ));
    if !unmapped.is_empty() {
        out.line(&format!(
            "  Unmapped: {}",
            unmapped
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut mapped_now = wanted.clone();
    for v in mapped_now.values_mut() {
        v.sort();
    }
    out.json(&json!({
        "result": "success",
        "mapped": mapped_now,
        "total_mappings": totals,
        "coverage": {
            "total_functional": functional.len(),
            "mapped_functional": functional.len() - unmapped.len(),
            "unmapped_functional": unmapped,
        },
        "committed": committed,
    }));
    Ok(())
}
