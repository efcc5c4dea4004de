//! `spec-kitty specify NAME`: the next feature directory
//! `kitty-specs/NNN-name/` (meta.json, spec.md, tasks/) → FeatureCreated.
//!
//! The directory is assembled under a random temporary name (created
//! exclusively, inside the repository) and renamed into place, so it appears whole or not at all; two processes racing for the
//! same number cannot both win the rename, and the loser takes the next.

use super::Ctx;
use crate::cli::SpecifyArgs;
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
    let ctx = Ctx::open(out)?;
    let specs = ctx.project.specs_dir();
    crate::fsutil::check_repo_dir(&ctx.project.root, &specs)?;
    fs::create_dir_all(&specs).map_err(|e| CliError::io_at("create", &specs, &e))?;
    let target_branch = a
        .target_branch
        .clone()
        .or_else(|| ctx.git.branch.clone().filter(|b| b != "HEAD"))
        .unwrap_or_else(|| "main".to_string());
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
        write_skeleton(
            &tmp,
            &slug,
            &number,
            &name,
            &a.name,
            &target_branch,
            &created_at,
        )
        .inspect_err(|_| {
            let _ = fs::remove_dir_all(&tmp);
        })?;
        let final_dir = specs.join(&slug);
        if final_dir.exists() || fs::rename(&tmp, &final_dir).is_err() {
            let _ = fs::remove_dir_all(&tmp);
            continue; // someone took this number; try the next
        }
        let deliveries = match ctx
            .emitter
            .deliver_all(std::slice::from_ref(&env), &mut ctx.warner())
        {
            Ok(d) => d,
            Err(e) => {
                let _ = fs::remove_dir_all(&final_dir);
                return Err(e);
            }
        };
        out.line(&format!(
            "{} Created feature {}",
            out.green("✓"),
            out.bold(&slug)
        ));
        out.line(&format!("  {}", final_dir.display()));
        out.json(&serde_json::json!({
            "result": "success",
            "feature": slug,
            "feature_number": number,
            "path": final_dir.display().to_string(),
            "target_branch": target_branch,
            "events": crate::emit::events_json(&[env], &deliveries),
        }));
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

fn write_skeleton(
    dir: &Path,
    slug: &str,
    number: &str,
    name: &str,
    friendly: &str,
    target_branch: &str,
    created_at: &str,
) -> Result<(), CliError> {
    let io = |p: &Path, e: std::io::Error| CliError::io_at("write", p, &e);
    fs::create_dir_all(dir.join("tasks")).map_err(|e| io(dir, e))?;
    let meta = serde_json::json!({
        "feature_number": number,
        "slug": slug,
        "friendly_name": friendly,
        "source_description": name,
        "created_at": created_at,
        "target_branch": target_branch,
        "vcs": "git",
        "announced_wps": [],
    });
    // serde_json without preserve_order sorts keys; write in spec-kitty's order.
    let order = [
        "feature_number",
        "slug",
        "friendly_name",
        "source_description",
        "created_at",
        "target_branch",
        "vcs",
        "announced_wps",
    ];
    let body: Vec<String> = order
        .iter()
        .map(|k| format!("  \"{k}\": {}", meta[k]))
        .collect();
    let meta_text = format!("{{\n{}\n}}\n", body.join(",\n"));
    let p = dir.join("meta.json");
    fs::write(&p, meta_text).map_err(|e| io(&p, e))?;
    let p = dir.join("spec.md");
    fs::write(&p, format!("# Feature Specification: {friendly}\n\n**Feature**: `{slug}`\n**Created**: {}\n\n## User Scenarios\n\n## Requirements\n\n## Success Criteria\n", &created_at[..10]))
        .map_err(|e| io(&p, e))?;
    let p = dir.join("tasks").join(".gitkeep");
    fs::write(&p, "").map_err(|e| io(&p, e))?;
    Ok(())
}
