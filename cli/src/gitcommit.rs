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
//!
//! Speed (git is most of a committing command's time): paths git already
//! tracks need no `git add` (the pathspec commit takes their working-tree
//! bytes), so we look them up in `.git/index` ourselves and spawn `git add`
//! only for new ones — a lookup that errs only towards adding, and a failed
//! commit is retried the old way. Our commits also skip git's automatic
//! maintenance (`maintenance.auto=false`: a second git process per commit);
//! the user's own git commands still run it.

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
    let add = |paths: &[String]| -> Result<(), CommitError> {
        let o = git(&["add", "--force", "--"], paths)?;
        if o.status.success() {
            Ok(())
        } else {
            Err(CommitError(format!(
                "git add: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )))
        }
    };
    let all: Vec<String> = groups.iter().flat_map(|(p, _)| rel(p)).collect();
    if all.is_empty() {
        return Ok(vec![Committed::NothingToCommit; groups.len()]);
    }
    let mut added = !all_in_index(repo_root, &all);
    if added {
        add(&all)?;
    }
    let mut out = Vec::with_capacity(groups.len());
    for (paths, message) in groups {
        if paths.is_empty() {
            out.push(Committed::NothingToCommit);
            continue;
        }
        let commit = || {
            git(
                &[
                    "-c",
                    "maintenance.auto=false",
                    "-c",
                    "gc.auto=0",
                    "commit",
                    "-q",
                    "--no-verify",
                    "-m",
                    message,
                    "--",
                ],
                &rel(paths),
            )
        };
        let mut o = commit()?;
        if !o.status.success() && !added && !nothing_to_commit(&o) {
            // The index lookup was wrong (a path git does not know after
            // all): stage everything as before and try once more.
            add(&all)?;
            added = true;
            o = commit()?;
        }
        if !o.status.success() {
            if nothing_to_commit(&o) {
                out.push(Committed::NothingToCommit);
                continue;
            }
            return Err(CommitError(format!("git commit: {}", said(&o).trim())));
        }
        out.push(Committed::Yes(head(repo_root)?));
    }
    Ok(out)
}

/// What a git process printed, stdout then stderr.
fn said(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Whether a failed `git commit` only found nothing to commit.
fn nothing_to_commit(o: &std::process::Output) -> bool {
    let text = said(o);
    text.contains("nothing to commit") || text.contains("no changes added")
}

/// Whether every path (relative to `repo_root`, the worktree's top) has an
/// entry in the worktree's index, so the pathspec commit can take it
/// without `git add`. Errs only towards `false` (which costs a `git add`):
/// an index we cannot read or walk (version 4, SHA-256), or git pointed
/// elsewhere by the environment.
fn all_in_index(repo_root: &Path, paths: &[String]) -> bool {
    if ["GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
    {
        return false;
    }
    let Some(dirs) = crate::gitmeta::GitDirs::of_worktree(repo_root) else {
        return false;
    };
    let Ok(index) = std::fs::read(dirs.git_dir.join("index")) else {
        return false;
    };
    let Some(names) = index_names(&index) else {
        return false;
    };
    paths.iter().all(|p| names.contains(&p.as_bytes()))
}

/// The entry names of a version 2 or 3 index of a SHA-1 repository, or
/// `None` when the bytes do not walk as one (each entry: 40 bytes of stat
/// data, the 20-byte object id, 16 bits of flags whose low 12 are the
/// name's length, 16 more when the extended bit is set in version 3, the
/// name, then NULs up to a multiple of 8).
fn index_names(index: &[u8]) -> Option<Vec<&[u8]>> {
    if index.len() < 12 || &index[..4] != b"DIRC" {
        return None;
    }
    let version = u32::from_be_bytes(index[4..8].try_into().ok()?);
    if !matches!(version, 2 | 3) {
        return None;
    }
    let count = u32::from_be_bytes(index[8..12].try_into().ok()?) as usize;
    let mut names = Vec::with_capacity(count);
    let mut at = 12;
    for _ in 0..count {
        let flags_at = at + 60;
        let flags = u16::from_be_bytes(index.get(flags_at..flags_at + 2)?.try_into().ok()?);
        let mut name_at = flags_at + 2;
        if flags & 0x4000 != 0 {
            if version < 3 {
                return None;
            }
            name_at += 2;
        }
        let len = index.get(name_at..)?.iter().position(|&b| b == 0)?;
        let short = usize::from(flags & 0xFFF);
        if short != len.min(0xFFF) {
            return None;
        }
        names.push(&index[name_at..name_at + len]);
        let entry_len = (name_at - at + len + 8) & !7;
        at += entry_len;
    }
    Some(names)
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
    let Ok(doc) = crate::yamltext::parse_value(&text) else {
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
    fn tracked_paths_commit_without_git_add_and_keep_the_users_index() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        git(r, &["init", "-q", "-b", "main"]);
        git(r, &["config", "user.name", "T"]);
        git(r, &["config", "user.email", "t@example.invalid"]);
        fs::create_dir_all(r.join("d")).unwrap();
        fs::write(r.join("d/log.jsonl"), "1\n").unwrap();
        fs::write(r.join("other.txt"), "o\n").unwrap();
        git(r, &["add", "."]);
        git(r, &["commit", "-qm", "root"]);
        assert!(all_in_index(r, &["d/log.jsonl".into(), "other.txt".into()]));
        assert!(!all_in_index(r, &["d/new.jsonl".into()]));
        assert!(!all_in_index(r, &["d".into()]), "a directory is no entry");
        fs::write(r.join("other.txt"), "staged\n").unwrap();
        git(r, &["add", "other.txt"]);
        fs::write(r.join("d/log.jsonl"), "1\n2\n").unwrap();
        let c = commit_paths(r, &[r.join("d/log.jsonl")], "chore: log").unwrap();
        assert!(matches!(c, Committed::Yes(_)), "{c:?}");
        assert_eq!(git(r, &["show", "HEAD:d/log.jsonl"]), "1\n2\n");
        assert_eq!(
            git(r, &["show", "--name-only", "--format=%s", "HEAD"]).trim(),
            "chore: log\n\nd/log.jsonl"
        );
        assert_eq!(
            git(r, &["diff", "--cached", "--name-only"]).trim(),
            "other.txt"
        );
        assert_eq!(git(r, &["status", "--porcelain", "d"]).trim(), "");
    }

    #[test]
    fn the_index_walk_reads_every_name_of_v2_and_v3_and_refuses_v4() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        git(r, &["init", "-q", "-b", "main"]);
        let long = format!("{}/{}.md", "d".repeat(200), "x".repeat(200));
        let names = ["a", "b/c.txt", "é.md", long.as_str()];
        for n in names {
            if let Some(dir) = Path::new(n).parent() {
                fs::create_dir_all(r.join(dir)).unwrap();
            }
            fs::write(r.join(n), n).unwrap();
        }
        git(r, &["add", "."]);
        let walked = |r: &Path| {
            let bytes = fs::read(r.join(".git/index")).unwrap();
            index_names(&bytes).map(|v| {
                v.iter()
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .collect::<Vec<_>>()
            })
        };
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(walked(r), Some(want.clone()));
        // Version 3: an intent-to-add entry carries the extended flags.
        fs::write(r.join("later.txt"), "l").unwrap();
        git(r, &["add", "-N", "later.txt"]);
        let mut with_ita = want.clone();
        with_ita.push("later.txt".into());
        with_ita.sort();
        assert_eq!(walked(r), Some(with_ita));
        // Version 4 compresses names: not walked (git add runs instead).
        git(r, &["update-index", "--index-version", "4"]);
        assert_eq!(walked(r), None);
        assert!(!all_in_index(r, &["a".into()]));
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
