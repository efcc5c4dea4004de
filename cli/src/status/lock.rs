//! The per-feature status lock that both CLIs take.
//!
//! spec-kitty 2.1.3 serialises the writers of a feature's status files
//! (`status.events.jsonl`, `status.json`, `tasks.md`) with the `filelock`
//! package on `<git common dir>/spec-kitty-locks/<feature>.status.lock`,
//! which on Unix is `flock(LOCK_EX)` on that file. Taking an `flock` on the
//! same file makes a Rust and a Python process serialise, and because the
//! path is under the *common* git dir, the main checkout and every worktree
//! share it. The file is never removed (neither side removes it), so both
//! always lock the same inode.

use crate::fsutil::{self, Lock};
use crate::gitmeta::GitDirs;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The lock file of `feature_slug` for the working tree at `repo_root`
/// (`.git` inside it is a directory or a worktree's `gitdir:` file). Not a
/// git repository: `<root>/.git/...`, as 2.1.3 falls back to.
pub fn path(repo_root: &Path, feature_slug: &str) -> PathBuf {
    let common = GitDirs::of_worktree(repo_root)
        .map(|d| d.common_dir)
        .unwrap_or_else(|| repo_root.join(".git"));
    common
        .join("spec-kitty-locks")
        .join(format!("{feature_slug}.status.lock"))
}

/// Takes the lock, waiting for other holders (either CLI).
pub fn acquire(repo_root: &Path, feature_slug: &str) -> io::Result<Lock> {
    let lock = path(repo_root, feature_slug);
    if let Some(dir) = lock.parent() {
        fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)?;
    fsutil::lock_path(&lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worktrees_share_the_main_checkouts_lock_file() {
        let t = tempfile::tempdir().unwrap();
        let main = t.path().join("main");
        fs::create_dir_all(main.join(".git/worktrees/wt1")).unwrap();
        fs::write(main.join(".git/worktrees/wt1/commondir"), "../..\n").unwrap();
        let wt = t.path().join("wt1");
        fs::create_dir_all(&wt).unwrap();
        fs::write(
            wt.join(".git"),
            format!("gitdir: {}\n", main.join(".git/worktrees/wt1").display()),
        )
        .unwrap();
        let from_main = path(&main, "001-demo");
        assert_eq!(
            from_main,
            main.join(".git/spec-kitty-locks/001-demo.status.lock")
        );
        let from_wt = path(&wt, "001-demo");
        assert_eq!(
            fs::canonicalize(from_wt.parent().unwrap().parent().unwrap()).unwrap(),
            fs::canonicalize(main.join(".git")).unwrap()
        );
        let held = acquire(&main, "001-demo").unwrap();
        assert!(from_main.is_file());
        drop(held);
        // Not a git repository: 2.1.3's fallback.
        let plain = t.path().join("plain");
        fs::create_dir_all(&plain).unwrap();
        assert_eq!(
            path(&plain, "f"),
            plain.join(".git/spec-kitty-locks/f.status.lock")
        );
    }
}
