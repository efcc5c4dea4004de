//! Atomic file replacement and advisory locks.
//!
//! "No partial writes": every file we change is written to a temp file in
//! the same directory, fsynced, renamed over the original, and the
//! directory fsynced. Readers see the old bytes or the new, never a mix.
//!
//! Locks are `flock`s through std's `File::lock` on files that already
//! exist (a WP file, the `.kittify` directory), so we never litter the
//! repository with lock files. Because a replaced file is a new inode, a
//! waiter that finally gets the lock checks that it locked the file that is
//! *now* at the path and retries otherwise.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Replaces `path` with `bytes` atomically, keeping the file's permission
/// bits when it exists.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        if let Ok(meta) = fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An exclusive lock held until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Locks the file or directory at `path` exclusively, waiting for other
/// holders. For files that get replaced by rename, retries until the
/// locked inode is the one at `path`.
pub fn lock_path(path: &Path) -> io::Result<Lock> {
    loop {
        let file = File::open(path)?;
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
