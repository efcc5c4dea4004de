//! `spec-kitty specify NAME` and `agent feature create-feature SLUG`: the
//! next feature directory `kitty-specs/NNN-name/` as 2.1.3 lays it out
//! (meta.json with its keys, spec.md, checklists/, research/, tasks/ with
//! README.md) → FeatureCreated once, then 2.1.3's two commits ("Add spec
//! for feature …", "Add meta for feature …").
//!
//! The directory is assembled under a random temporary name (created
//! exclusively, inside the repository) and renamed into place, so it appears whole or not at all; two processes racing for the
//! same number cannot both win the rename, and the loser takes the next.

use super::Ctx;
use crate::cli::{CreateFeatureArgs, NewFeatureOpts, SpecifyArgs};
use crate::error::CliError;
use crate::identity::kebab;
use crate::output::Out;
use spec_kitty_protocol::envelope::{is_feature_slug, FeatureCreated, Payload};
use std::fs;
use std::path::Path;

pub fn run(out: &Out, a: SpecifyArgs) -> Result<(), CliError> {
    let name = kebab(&a.name);
    if name.is_empty() {
        return Err(CliError::invalid(format!(
            "feature name '{}' has no letters or digits to make a slug from",
            a.name
        )));
    }
    create(out, &name, &a.opts)
}

/// `agent feature create-feature SLUG`: the slug must already be kebab-case
/// (2.1.3's rule), where `specify` makes one from any name.
pub fn create_feature(out: &Out, a: CreateFeatureArgs) -> Result<(), CliError> {
    if !is_kebab(&a.feature_slug) {
        return Err(CliError::invalid(format!(
            "invalid feature slug '{}': it must be kebab-case, a lowercase letter first, then lowercase letters, digits and single hyphens (e.g. user-auth, fix-bug-123)",
            a.feature_slug
        )));
    }
    create(out, &a.feature_slug, &a.opts)
}

/// `^[a-z][a-z0-9]*(-[a-z0-9]+)*$`
fn is_kebab(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && s.split('-').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn create(out: &Out, name: &str, opts: &NewFeatureOpts) -> Result<(), CliError> {
    let commit = opts.commit;
    let target_branch = opts.target_branch.as_deref();
    let mission = opts
        .mission
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .unwrap_or("software-dev");
    let ctx = Ctx::open(out)?;
    let specs = ctx.project.specs_dir();
    crate::fsutil::check_repo_dir(&ctx.project.root, &specs)?;
    fs::create_dir_all(&specs).map_err(|e| CliError::io_at("create", &specs, &e))?;
    let current_branch = ctx.git.branch.clone().filter(|b| b != "HEAD");
    let target_branch = target_branch
        .map(str::to_string)
        .or_else(|| current_branch.clone())
        .unwrap_or_else(|| "main".to_string());
    let template = super::plan::template(&ctx.project.root, "spec-template.md", SPEC_TEMPLATE);
    for _attempt in 0..20 {
        let next = next_number(&specs);
        if next > 999 {
            return Err(CliError::invalid(format!(
                "{} already holds feature 999",
                specs.display()
            )));
        }
        let number = format!("{next:03}");
        let slug = format!("{number}-{name}");
        if !is_feature_slug(&slug) {
            return Err(CliError::invalid(format!(
                "'{slug}' is not a valid feature slug (NNN-lowercase-kebab)"
            )));
        }
        let created_at = spec_kitty_protocol::time::now_utc();
        let payload = Payload::FeatureCreated(FeatureCreated {
            feature_slug: slug.clone(),
            feature_number: number.clone(),
            target_branch: target_branch.clone(),
            wp_count: 0,
            created_at: Some(created_at.clone()),
        });
        let env = ctx.emitter.build(&payload, None)?;
        // A fresh directory under a random name (mkdir never follows a
        // planted link); a name already taken just costs an attempt.
        let tmp = specs.join(format!(
            ".{slug}.{:016x}.tmp",
            spec_kitty_protocol::fsutil::random_u64()
        ));
        if let Err(e) = fs::create_dir(&tmp) {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                continue;
            }
            return Err(CliError::io_at("create", &tmp, &e));
        }
        let meta = Meta {
            slug: &slug,
            number: &number,
            name,
            mission,
            target_branch: &target_branch,
            created_at: &created_at,
        };
        write_skeleton(&tmp, &meta, &template).inspect_err(|_| {
            let _ = fs::remove_dir_all(&tmp);
        })?;
        let final_dir = specs.join(&slug);
        if final_dir.exists() || fs::rename(&tmp, &final_dir).is_err() {
            let _ = fs::remove_dir_all(&tmp);
            continue; // someone took this number; try the next
        }
        let deliveries =
            match ctx
                .emitter
                .deliver_all(std::slice::from_ref(&env), &mut ctx.warner(), &mut || {})
            {
                Ok(d) => d,
                Err(e) => {
                    let _ = fs::remove_dir_all(&final_dir);
                    return Err(e);
                }
            };
        let spec_file = final_dir.join("spec.md");
        let meta_file = final_dir.join("meta.json");
        let readme = final_dir.join("tasks").join("README.md");
        // 2.1.3 makes two commits: the spec, then the metadata.
        let mut commits = Vec::new();
        if commit.enabled(&ctx.project.root) {
            let spec_paths = [
                spec_file.clone(),
                readme.clone(),
                final_dir.join("tasks").join(".gitkeep"),
            ];
            let spec_msg = format!("Add spec for feature {slug}");
            let meta_msg = format!("Add meta for feature {slug}");
            match super::plan::try_commit_each(
                &ctx,
                &[
                    (&spec_paths[..], &spec_msg),
                    (std::slice::from_ref(&meta_file), &meta_msg),
                ],
            ) {
                Ok(h) => commits = h,
                Err(e) => out.warn(&e.to_string()),
            }
        }
        out.line(&format!(
            "{} Created feature {}",
            out.green("✓"),
            out.bold(&slug)
        ));
        out.line(&format!("  {}", final_dir.display()));
        if !commits.is_empty() {
            out.line(&format!(
                "  Spec and meta committed to {}",
                current_branch.as_deref().unwrap_or("HEAD")
            ));
        }
        let mut payload = serde_json::json!({
            "result": "success",
            "feature": slug,
            "feature_number": number,
            "feature_dir": final_dir.display().to_string(),
            "path": final_dir.display().to_string(),
            "spec_file": spec_file.display().to_string(),
            "meta_file": meta_file.display().to_string(),
            "created_at": created_at,
            "created_files": [spec_file.display().to_string(), meta_file.display().to_string(), readme.display().to_string()],
            "write_mode": "update_existing_files",
            "next_step": "Read then update spec_file/meta_file; do not recreate with blind write.",
            "mission": mission,
            "commits": commits,
            "events": crate::emit::events_json(&[env], &deliveries),
        });
        super::plan::branch_contract(&mut payload, &target_branch, current_branch.as_deref());
        out.json(&payload);
        return Ok(());
    }
    Err(CliError::io(format!(
        "could not claim a feature number in {} after 20 attempts",
        specs.display()
    )))
}

fn next_number(specs: &Path) -> u32 {
    fs::read_dir(specs)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name();
            let n = n.to_str()?;
            let b = n.as_bytes();
            (b.len() > 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b'-')
                .then(|| n[..3].parse::<u32>().ok())
                .flatten()
        })
        .max()
        .unwrap_or(0)
        + 1
}

/// What meta.json records at creation.
struct Meta<'a> {
    slug: &'a str,
    number: &'a str,
    name: &'a str,
    mission: &'a str,
    target_branch: &'a str,
    created_at: &'a str,
}

fn write_skeleton(dir: &Path, m: &Meta, spec_template: &str) -> Result<(), CliError> {
    let io = |p: &Path, e: std::io::Error| CliError::io_at("write", p, &e);
    for sub in ["tasks", "checklists", "research"] {
        fs::create_dir_all(dir.join(sub)).map_err(|e| io(dir, e))?;
    }
    // 2.1.3's keys, written as its write_meta does (sorted keys, indent 2,
    // non-ASCII kept); announced_wps is ours (which WPs had WPCreated).
    let meta = serde_json::json!({
        "feature_number": m.number,
        "slug": m.slug,
        "feature_slug": m.slug,
        "friendly_name": m.name.replace('-', " ").trim(),
        "mission": m.mission,
        "target_branch": m.target_branch,
        // Envelope time is Python's isoformat() form, as 2.1.3 writes it.
        "created_at": m.created_at,
        "announced_wps": [],
    });
    let meta_text = crate::pyjson::dumps(&meta, crate::pyjson::Style::Pretty) + "\n";
    let p = dir.join("meta.json");
    fs::write(&p, meta_text).map_err(|e| io(&p, e))?;
    let p = dir.join("spec.md");
    let spec = spec_template
        .replace("[FEATURE NAME]", &m.name.replace('-', " "))
        .replace("[###-feature-name]", m.slug)
        .replace("[DATE]", &m.created_at[..10]);
    fs::write(&p, spec).map_err(|e| io(&p, e))?;
    let p = dir.join("tasks").join(".gitkeep");
    fs::write(&p, "").map_err(|e| io(&p, e))?;
    let p = dir.join("tasks").join("README.md");
    fs::write(&p, TASKS_README).map_err(|e| io(&p, e))?;
    Ok(())
}

/// Our spec skeleton. Requirement ids are written as `FR-NNN` placeholders:
/// a real id (letters, hyphen, digits) here would count as a requirement
/// that finalize must see mapped.
const SPEC_TEMPLATE: &str = "# Feature Specification: [FEATURE NAME]

**Feature**: `[###-feature-name]`
**Created**: [DATE]
**Status**: Draft

## User Scenarios & Testing

<!-- Who uses this, what they do, what they see. One scenario per heading,
     each with its acceptance checks (Given / When / Then). -->

## Requirements

### Functional Requirements

<!-- One line each, numbered FR-NNN (FR-001, FR-002, ...): work packages
     name the ids they cover, and `spec-kitty tasks` checks that every
     functional requirement is covered. -->

### Non-Functional Requirements

<!-- NFR-NNN: speed, limits, security, compatibility. -->

### Constraints

<!-- C-NNN: what the solution must not change or must work within. -->

## Success Criteria

<!-- Measurable outcomes that say the feature is done. -->
";

const TASKS_README: &str = "# Work packages

One file per work package: `WPnn-short-title.md` (e.g. `WP01-setup.md`),
all directly in this directory. Each starts with YAML frontmatter:

```yaml
---
work_package_id: WP01
title: Set up the project
lane: planned
dependencies: []
requirement_refs: [FR-001]
subtasks: [T001, T002]
---
```

The lane (planned, doing, for_review, approved, done) is changed only by
commands, never by hand:

```bash
spec-kitty agent tasks move-task WP01 --to doing
```

`spec-kitty tasks` (or `spec-kitty agent feature finalize-tasks`) reads
`../tasks.md` and fills in each file's `dependencies`, `requirement_refs`
and branch fields, then commits the work packages.
";
