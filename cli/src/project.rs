//! Where the project is: the directory holding `.kittify/` and
//! `kitty-specs/`, found from the current directory.
//!
//! Agents run commands from inside `.worktrees/<feature>-WPnn/`, which is a
//! git worktree with its own checkout of `.kittify/`. Like spec-kitty 2.x we
//! always act on the *main* repository's `kitty-specs/` (the source of
//! truth), while git facts for events (branch, HEAD) come from the
//! worktree the command runs in.

use crate::error::{CliError, Kind};
use crate::gitmeta::GitDirs;
use std::path::{Path, PathBuf};

/// A located project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The main project root (holds `.kittify/` and `kitty-specs/`).
    pub root: PathBuf,
    /// The nearest directory at or above the current one that holds
    /// `.git`: where branch and HEAD are read. `None` outside git.
    pub git_root: Option<PathBuf>,
}

impl Project {
    pub fn kittify(&self) -> PathBuf {
        self.root.join(".kittify")
    }
    pub fn config_path(&self) -> PathBuf {
        self.root.join(".kittify").join("config.yaml")
    }
    pub fn specs_dir(&self) -> PathBuf {
        self.root.join("kitty-specs")
    }
}

fn has_markers(d: &Path) -> bool {
    d.join(".kittify").is_dir() || d.join("kitty-specs").is_dir()
}

/// Finds the project containing `start`.
pub fn locate(start: &Path) -> Result<Project, CliError> {
    let git_root = start
        .ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf);
    for d in start.ancestors() {
        if !has_markers(d) {
            continue;
        }
        let mut root = d.to_path_buf();
        if d.join(".git").is_file() {
            if let Some(main) = GitDirs::of_worktree(d).and_then(|g| g.main_worktree()) {
                if has_markers(&main) {
                    root = main;
                }
            }
        }
        return Ok(Project { root, git_root });
    }
    Err(CliError::new(
        Kind::NotInProject,
        format!(
            "not inside a spec-kitty project: no .kittify/ or kitty-specs/ in {} or any parent directory; run `spec-kitty init` first",
            start.display()
        ),
    ))
}

/// The current directory, as an error the user can read when it is gone.
pub fn cwd() -> Result<PathBuf, CliError> {
    std::env::current_dir()
        .map_err(|e| CliError::io(format!("cannot read the current directory: {e}")))
}
