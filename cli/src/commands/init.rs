//! `spec-kitty init [NAME | --here] [--no-git]`: a new project, or the
//! identity of an existing one (running it again keeps the identity).
//! Emits no event: nothing about work changed.

use super::Ctx;
use crate::cli::InitArgs;
use crate::error::CliError;
use crate::identity::EnsureOpts;
use crate::output::Out;
use crate::project::{self, Project};
use std::fs;
use std::path::Path;
use std::process::Command;

pub fn run(out: &Out, a: InitArgs) -> Result<(), CliError> {
    let cwd = project::cwd()?;
    let root = match (&a.name, a.here) {
        (_, true) | (None, _) => cwd.clone(),
        (Some(name), false) => cwd.join(name),
    };
    fs::create_dir_all(root.join(".kittify"))
        .map_err(|e| CliError::io_at("create", &root.join(".kittify"), &e))?;
    fs::create_dir_all(root.join("kitty-specs"))
        .map_err(|e| CliError::io_at("create", &root.join("kitty-specs"), &e))?;
    let inside_git = root.ancestors().any(|d| d.join(".git").exists());
    let mut git_created = false;
    if !a.no_git && !inside_git {
        git_init(&root)?;
        git_created = true;
    }
    if !a.no_git {
        ensure_gitignore(&root)?;
        configure_status_merge(out, &root);
    }
    let git_root = root
        .ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf);
    let project = Project {
        root: root.clone(),
        git_root,
    };
    let ctx = Ctx::for_project(
        out,
        cwd,
        project,
        EnsureOpts {
            add_sync_section: true,
        },
    )?;
    let id = &ctx.identity;
    out.line(&format!(
        "{} Initialized spec-kitty project in {}",
        out.green("✓"),
        root.display()
    ));
    out.line(&format!(
        "  project_uuid: {}",
        id.uuid.as_deref().unwrap_or("-")
    ));
    out.line(&format!(
        "  project_slug: {}",
        id.slug.as_deref().unwrap_or("-")
    ));
    out.line(&format!("  node_id:      {}", id.node_id));
    if git_created {
        out.line("  git:          initialized");
    }
    out.json(&serde_json::json!({
        "result": "success",
        "path": root.display().to_string(),
        "project_uuid": id.uuid,
        "project_slug": id.slug,
        "node_id": id.node_id,
        "git_initialized": git_created,
    }));
    Ok(())
}

fn git_init(root: &Path) -> Result<(), CliError> {
    let o = Command::new("git")
        .args(["init", "-q"])
        .current_dir(root)
        .output()
        .map_err(|e| {
            CliError::io(format!(
                "cannot run git init in {}: {e} (use --no-git to skip)",
                root.display()
            ))
        })?;
    if !o.status.success() {
        return Err(CliError::io(format!(
            "git init failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(())
}

/// Git merges of `status.events.jsonl` keep both branches' events. A
/// failure only warns: the project works without it (a conflicted log is
/// then reported, with its repair, by `agent status doctor`).
fn configure_status_merge(out: &Out, root: &Path) {
    if let Err(e) = super::status_check::configure_merge_driver(root) {
        out.warn(&format!(
            "{e}; merges of status.events.jsonl will use git's default"
        ));
    }
}

/// What a project keeps out of git (2.1.3's ignored runtime surfaces that
/// we write): worktrees live in `.worktrees/`, and `.kittify/.dashboard`
/// is the running dashboard's record (its port, pid and shutdown token).
const IGNORED: [(&str, &str); 2] = [
    (".worktrees/", ".worktrees"),
    (".kittify/.dashboard", "/.kittify/.dashboard"),
];

/// Adds each missing [`IGNORED`] entry to `.gitignore`, keeping the rest.
fn ensure_gitignore(root: &Path) -> Result<(), CliError> {
    let path = root.join(".gitignore");
    let old = crate::fsutil::read_repo_file(root, &path)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut new = old.clone();
    for (entry, alias) in IGNORED {
        if old.lines().any(|l| l.trim() == entry || l.trim() == alias) {
            continue;
        }
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        new.push_str(entry);
        new.push('\n');
    }
    if new == old {
        return Ok(());
    }
    crate::fsutil::write_repo_file(root, &path, new.as_bytes())
}
