//! Committing what a command wrote, and only that.
//!
//! 2.1.3 commits status and planning files to the current branch after each
//! command (on by default; `--no-auto-commit` or `auto_commit: false` in
//! `.kittify/config.yaml` turns it off). A user's repository often has other
//! dirty or staged files, and those must stay exactly as they were: we stage
//! our paths and commit with a pathspec (`git commit -- PATHS`, git's
//! `--only` mode), which records just those paths and leaves the rest of
//! the index alone — no stash juggling as 2.1.3 does.
//!
//! A failed commit is not a failed command: the files are written and the
//! state they hold is right. Callers warn with [`CommitError`]'s message.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a commit attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// A new commit; its full hash.
    Yes(String),
    /// The paths held no change against HEAD: nothing to commit.
    NothingToCommit,
}

/// Why the commit was not made (the files are written either way).
#[derive(Debug, thiserror::Error)]
#[error("files written but not committed: {0}")]
pub struct CommitError(String);

/// Stages `paths` (files under `repo_root`; ignored ones too, as 2.1.3
/// does) and commits exactly them with `message`.
pub fn commit_paths(
    repo_root: &Path,
    paths: &[PathBuf],
    message: &str,
) -> Result<Committed, CommitError> {
    let mut done = commit_each(repo_root, &[(paths, message)])?;
    Ok(done.pop().unwrap_or(Committed::NothingToCommit))
}

/// Several commits in a row, one per `(paths, message)`, each of exactly
/// its paths, as [`commit_paths`]; all paths are staged by one `git add`
/// (a git process fewer per extra commit: 2.1.3 commits a new feature's
/// spec and its meta.json separately). Stops at the first failure.
pub fn commit_each(
    repo_root: &Path,
    groups: &[(&[PathBuf], &str)],
) -> Result<Vec<Committed>, CommitError> {
    let rel = |paths: &[PathBuf]| -> Vec<String> {
        paths
            .iter()
            .map(|p| {
                p.strip_prefix(repo_root)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    let git = |args: &[&str], paths: &[String]| {
        Command::new("git")
            .args(args)
            .args(paths)
            .current_dir(repo_root)
            .output()
            .map_err(|e| CommitError(format!("cannot run git in {}: {e}", repo_root.display())))
    };
    let all: Vec<String> = groups.iter().flat_map(|(p, _)| rel(p)).collect();
    if all.is_empty() {
        return Ok(vec![Committed::NothingToCommit; groups.len()]);
    }
    let o = git(&["add", "--force", "--"], &all)?;
    if !o.status.success() {
        return Err(CommitError(format!(
            "git add: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    let mut out = Vec::with_capacity(groups.len());
    for (paths, message) in groups {
        if paths.is_empty() {
            out.push(Committed::NothingToCommit);
            continue;
        }
        let o = git(
            &["commit", "-q", "--no-verify", "-m", message, "--"],
            &rel(paths),
        )?;
        if !o.status.success() {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            if text.contains("nothing to commit") || text.contains("no changes added") {
                out.push(Committed::NothingToCommit);
                continue;
            }
            return Err(CommitError(format!("git commit: {}", text.trim())));
        }
        out.push(Committed::Yes(head(repo_root)?));
    }
    Ok(out)
}

/// The new HEAD, read from .git directly: one git process fewer per
/// commit (a third of the commit's cost); rev-parse when the files cannot
/// tell (repo_root below the worktree's top).
fn head(repo_root: &Path) -> Result<String, CommitError> {
    if let Some(sha) = crate::gitmeta::GitMeta::read(repo_root).head_sha {
        return Ok(sha);
    }
    let o = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo_root)
        .output()
        .map_err(|e| CommitError(format!("cannot run git: {e}")))?;
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Whether commands commit by default in this project: `auto_commit` under
/// `agents:` in `.kittify/config.yaml`, else a top-level `auto_commit`,
/// else `true` (2.1.3's rule; a value that is not a boolean counts as
/// unset). The `--auto-commit/--no-auto-commit` flags override it.
pub fn auto_commit_default(repo_root: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(repo_root.join(".kittify").join("config.yaml")) else {
        return true;
    };
    let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(&text) else {
        return true;
    };
    doc.get("agents")
        .and_then(|a| a.get("auto_commit"))
        .and_then(|v| v.as_bool())
        .or_else(|| doc.get("auto_commit").and_then(|v| v.as_bool()))
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn git(dir: &Path, args: &[&str]) -> String {
        let o = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "T")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "T")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    #[test]
    fn commits_only_the_named_paths_and_leaves_staged_and_dirty_files() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        git(r, &["init", "-q", "-b", "main"]);
        fs::write(r.join("a.txt"), "a\n").unwrap();
        fs::write(r.join("other.txt"), "o\n").unwrap();
        git(r, &["add", "."]);
        git(r, &["commit", "-qm", "root"]);
        // The user's work: one staged change, one unstaged change.
        fs::write(r.join("other.txt"), "staged\n").unwrap();
        git(r, &["add", "other.txt"]);
        fs::write(r.join("loose.txt"), "untracked\n").unwrap();
        // Ours: a change and a new file.
        fs::write(r.join("a.txt"), "b\n").unwrap();
        fs::write(r.join("new.txt"), "n\n").unwrap();
        // commit_paths runs git with the process environment; the test
        // sets identity through the repository config instead.
        git(r, &["config", "user.name", "T"]);
        git(r, &["config", "user.email", "t@example.invalid"]);
        let c = commit_paths(r, &[r.join("a.txt"), r.join("new.txt")], "chore: ours").unwrap();
        assert!(matches!(c, Committed::Yes(ref h) if h.len() == 40), "{c:?}");
        let files = git(r, &["show", "--name-only", "--format=%s", "HEAD"]);
        assert_eq!(files.trim(), "chore: ours\n\na.txt\nnew.txt");
        // The user's staged change is still staged, untracked still untracked.
        assert_eq!(
            git(r, &["diff", "--cached", "--name-only"]).trim(),
            "other.txt"
        );
        assert!(git(r, &["status", "--porcelain"]).contains("?? loose.txt"));
        // Again with nothing new: no empty commit.
        let again = commit_paths(r, &[r.join("a.txt")], "chore: again").unwrap();
        assert_eq!(again, Committed::NothingToCommit);
    }

    #[test]
    fn auto_commit_reads_agents_then_top_level_then_defaults_on() {
        let t = tempfile::tempdir().unwrap();
        let k = t.path().join(".kittify");
        fs::create_dir_all(&k).unwrap();
        assert!(auto_commit_default(t.path()), "no config: on");
        for (yaml, want) in [
            ("agents:\n  auto_commit: false\n", false),
            ("auto_commit: false\n", false),
            ("agents:\n  auto_commit: true\nauto_commit: false\n", true),
            ("agents:\n  auto_commit: 'no'\n", true),
            ("project:\n  slug: x\n", true),
        ] {
            fs::write(k.join("config.yaml"), yaml).unwrap();
            assert_eq!(auto_commit_default(t.path()), want, "{yaml}");
        }
    }
}
