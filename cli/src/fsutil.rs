//! Repository files: the one rule for links and special files, atomic
//! replacement, and advisory locks.
//!
//! **The rule.** Before the CLI reads or writes a file of the repository
//! (`.kittify/config.yaml`, WP files, `meta.json`, `.gitignore`, feature
//! directories) it resolves the path, following every symbolic link in any
//! component ([`resolve_in_repo`]):
//!
//! - a link whose target lies **outside the repository** is never followed,
//!   for reading or writing: the command stops with an error naming the
//!   path, where it leads and the rule (exit 5), and writes nothing;
//! - a link **inside** the repository is followed and stays a link: the
//!   write replaces the file it points to;
//! - a path that must be a file but is a directory, FIFO, socket or device
//!   is an error naming it (exit 4), never skipped and never opened.
//!
//! (The config is the one exception to "stop": an unusable config never
//! blocks work, see [`crate::identity`]; the rule decides only whether it
//! is read and written.)
//!
//! "No partial writes": every change goes through
//! [`spec_kitty_protocol::fsutil::write_atomic`] (random exclusive temp
//! name that never follows a planted link, fsync, rename, fsync of the
//! directory). Readers see the old bytes or the new, never a mix.
//!
//! Locks are `flock`s through std's `File::lock` on files that already
//! exist (a WP file, the `.kittify` directory), so we never litter the
//! repository with lock files. Because a replaced file is a new inode, a
//! waiter that finally gets the lock checks that it locked the file that is
//! *now* at the path and retries otherwise.

use crate::error::{CliError, Kind};
use spec_kitty_protocol::fsutil as pfs;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes` atomically, keeping the file's permission
/// bits when it exists. The path is used as given: for repository files use
/// [`write_repo_file`], which applies the link rule first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    pfs::write_atomic(path, bytes, None)
}

/// Why a repository path cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RepoPathError {
    #[error("refusing to use {path}: it leads to {target}, outside the repository {root} (spec-kitty never follows a link out of the repository)")]
    Outside {
        path: PathBuf,
        target: PathBuf,
        root: PathBuf,
    },
    #[error("{path} is {kind}, not a regular file (spec-kitty reads and writes only regular files there)")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path} is a symbolic link to {target}, which does not exist")]
    Dangling { path: PathBuf, target: PathBuf },
    #[error("cannot resolve {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl From<RepoPathError> for CliError {
    fn from(e: RepoPathError) -> CliError {
        let kind = match e {
            RepoPathError::Outside { .. } => Kind::Refused,
            RepoPathError::NotAFile { .. } | RepoPathError::Dangling { .. } => Kind::Invalid,
            RepoPathError::Io { .. } => Kind::Io,
        };
        CliError::new(kind, e.to_string()).with_source(e)
    }
}

/// Applies the rule (module docs) to `path`, a file of the repository at
/// `root`: the real path to read or write. A missing file is fine (its
/// directory must resolve inside the repository); the caller creates it.
pub fn resolve_in_repo(root: &Path, path: &Path) -> Result<PathBuf, RepoPathError> {
    // The common case costs one lstat per component below the root; so
    // does a file not there yet (to read as missing, or to create).
    if plain_below(root, path).is_some_and(|m| m.is_none_or(|m| m.is_file())) {
        return Ok(path.to_path_buf());
    }
    let io_err = |p: &Path, source| RepoPathError::Io {
        path: p.to_path_buf(),
        source,
    };
    let real_root = fs::canonicalize(root).map_err(|e| io_err(root, e))?;
    let inside = |target: PathBuf| {
        if target.starts_with(&real_root) {
            Ok(target)
        } else {
            Err(RepoPathError::Outside {
                path: path.to_path_buf(),
                target,
                root: root.to_path_buf(),
            })
        }
    };
    match fs::canonicalize(path) {
        Ok(real) => {
            let real = inside(real)?;
            let meta = fs::metadata(&real).map_err(|e| io_err(path, e))?;
            if meta.is_file() {
                Ok(real)
            } else {
                Err(RepoPathError::NotAFile {
                    path: path.to_path_buf(),
                    kind: pfs::file_kind(&meta),
                })
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Ok(target) = fs::read_link(path) {
                return Err(RepoPathError::Dangling {
                    path: path.to_path_buf(),
                    target,
                });
            }
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                return Err(io_err(path, e));
            };
            let real_dir = fs::canonicalize(dir).map_err(|e| io_err(dir, e))?;
            inside(real_dir.join(name))
        }
        Err(e) => Err(io_err(path, e)),
    }
}

/// What `path` is when it is reached from `root` through real directories
/// only (no link in any component below the root): then the rule holds
/// without resolving anything. `Some(None)`: every directory on the way is
/// real and the last component does not exist (not even as a link).
fn plain_below(root: &Path, path: &Path) -> Option<Option<fs::Metadata>> {
    let rel = path.strip_prefix(root).ok()?;
    let mut cur = root.to_path_buf();
    let mut meta = None;
    let mut components = rel.components().peekable();
    while let Some(c) = components.next() {
        let std::path::Component::Normal(name) = c else {
            return None;
        };
        if meta.as_ref().is_some_and(|m: &fs::Metadata| !m.is_dir()) {
            return None;
        }
        cur.push(name);
        match fs::symlink_metadata(&cur) {
            Ok(m) if !m.file_type().is_symlink() => meta = Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound && components.peek().is_none() => {
                return Some(None)
            }
            _ => return None,
        }
    }
    meta.map(Some)
}

/// Checks that the directory `dir` of the repository at `root` resolves
/// inside it (a `tasks/` or `kitty-specs/` linked elsewhere is refused).
/// A missing directory is fine.
pub fn check_repo_dir(root: &Path, dir: &Path) -> Result<(), RepoPathError> {
    if plain_below(root, dir).is_some_and(|m| m.is_none_or(|m| m.is_dir())) {
        return Ok(());
    }
    let Ok(real) = fs::canonicalize(dir) else {
        return Ok(());
    };
    let real_root = fs::canonicalize(root).map_err(|source| RepoPathError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    if real.starts_with(&real_root) {
        Ok(())
    } else {
        Err(RepoPathError::Outside {
            path: dir.to_path_buf(),
            target: real,
            root: root.to_path_buf(),
        })
    }
}

/// Reads a repository file under the rule; `None` when there is none.
pub fn read_repo_file(root: &Path, path: &Path) -> Result<Option<Vec<u8>>, CliError> {
    let real = resolve_in_repo(root, path)?;
    match pfs::read_regular(&real) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::io_at("read", path, &e)),
    }
}

/// Replaces a repository file atomically under the rule: through a link
/// inside the repository (which stays a link), never through one leaving it.
pub fn write_repo_file(root: &Path, path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let real = resolve_in_repo(root, path)?;
    pfs::write_atomic(&real, bytes, None).map_err(|e| CliError::io_at("write", path, &e))
}

/// [`write_repo_file`] without the `fsync`s, for files a command can
/// generate again (the agent command files of `init`).
pub fn write_repo_file_unsynced(root: &Path, path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let real = resolve_in_repo(root, path)?;
    pfs::write_atomic_unsynced(&real, bytes, None).map_err(|e| CliError::io_at("write", path, &e))
}

/// An exclusive lock held until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Locks the file or directory at `path` exclusively, waiting for other
/// holders. For files that get replaced by rename, retries until the
/// locked inode is the one at `path`. Opens without blocking, so a FIFO at
/// the path cannot hang the command.
pub fn lock_path(path: &Path) -> io::Result<Lock> {
    loop {
        let file = pfs::open_nonblocking(path)?;
        file.lock()?;
        let locked = file.metadata()?;
        match fs::metadata(path) {
            Ok(now) if now.ino() == locked.ino() && now.dev() == locked.dev() => {
                return Ok(Lock { _file: file })
            }
            Ok(_) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn the_rule_follows_links_inside_and_refuses_links_out() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("repo");
        fs::create_dir_all(root.join("a")).unwrap();
        fs::write(root.join("a/real.yaml"), "x").unwrap();
        fs::write(d.path().join("outside"), "victim").unwrap();
        symlink("a/real.yaml", root.join("in.yaml")).unwrap();
        symlink(d.path().join("outside"), root.join("out.yaml")).unwrap();
        symlink(d.path(), root.join("outdir")).unwrap();
        let real_root = fs::canonicalize(&root).unwrap();
        assert_eq!(
            resolve_in_repo(&root, &root.join("in.yaml")).unwrap(),
            real_root.join("a/real.yaml")
        );
        assert_eq!(
            resolve_in_repo(&root, &root.join("new.yaml")).unwrap(),
            real_root.join("new.yaml")
        );
        for p in ["out.yaml", "outdir/outside", "outdir/new"] {
            let e = resolve_in_repo(&root, &root.join(p)).unwrap_err();
            assert!(matches!(e, RepoPathError::Outside { .. }), "{p}: {e}");
            assert!(e.to_string().contains("outside the repository"), "{e}");
        }
        let e = resolve_in_repo(&root, &root.join("a")).unwrap_err();
        assert_eq!(e.to_string(), format!("{} is a directory, not a regular file (spec-kitty reads and writes only regular files there)", root.join("a").display()));
        // Writing through the inside link keeps the link.
        write_repo_file(&root, &root.join("in.yaml"), b"new").unwrap();
        assert!(fs::symlink_metadata(root.join("in.yaml"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(root.join("a/real.yaml")).unwrap(), b"new");
        assert!(write_repo_file(&root, &root.join("out.yaml"), b"evil").is_err());
        assert_eq!(fs::read(d.path().join("outside")).unwrap(), b"victim");
    }
}
