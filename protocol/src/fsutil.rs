//! The one atomic file write every spec-kitty process uses.
//!
//! [`write_atomic`] replaces a file so that a reader sees the old bytes or
//! the new, never a mix, and so that nothing planted beside the target can
//! redirect the write. The steps, and why:
//!
//! 1. The temp file is created in the target's directory (rename is atomic
//!    only within one file system) under a *random* name
//!    (`.{name}.{16 hex}.tmp`), with `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`.
//!    A repository can ship symlinks under any name it likes (git stores
//!    links); an exclusive create never opens an existing entry, so a planted
//!    link is never followed and the file it points at is never touched. On
//!    `EEXIST` another random name is tried.
//! 2. The mode: the one asked for, else the mode of the file being
//!    replaced (given at creation, so a private file is never readable by
//!    others, and set again on the open file, so the umask cannot narrow
//!    it), else `0666` less the umask (as `open` does).
//! 3. Write, `fsync` the file, `rename` it over the target, `fsync` the
//!    directory so the new name survives a crash.
//! 4. Any failure before the rename removes the temp file.
//!
//! [`write_atomic_dir_unsynced`] stops before step 3's directory fsync, for
//! callers that replace several files of one directory and sync it once.
//!
//! **A failed directory fsync is an error.** The rename has happened, so
//! readers already see the new bytes, but the name may not survive a crash;
//! callers treat it like any failed write (the CLI rolls its file changes
//! back). `EINVAL`, the answer of file systems that cannot sync a directory,
//! counts as success.
//!
//! The target path is replaced as given: if it is a symlink, the link is
//! replaced, not its target. Callers that want to write through a link
//! resolve it first (the CLI does, under its repository rule).

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How many random names to try before giving up on `EEXIST`.
const ATTEMPTS: u32 = 16;

/// Replaces `path` with `bytes` atomically (see the module docs). `mode`:
/// the permission bits to give the file; `None` keeps those of the file
/// being replaced (or `0666` less the umask for a new file).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    write_atomic_named(path, bytes, mode, &mut random_u64, Sync::FileAndDir)
}

/// [`write_atomic`] up to the rename, without the directory's `fsync`:
/// for a caller that replaces several files and then syncs each directory
/// once ([`sync_dir`]) before it calls the change done. Returns that
/// directory.
pub fn write_atomic_dir_unsynced<'a>(
    path: &'a Path,
    bytes: &[u8],
    mode: Option<u32>,
) -> io::Result<&'a Path> {
    write_atomic_named(path, bytes, mode, &mut random_u64, Sync::File)?;
    Ok(parent_dir(path))
}

/// [`write_atomic`] without the `fsync`s: readers still see the old or the
/// new content, never a mix, but a crash may lose the write. For files
/// that can be generated again (agent command files), where a sync per
/// file would dominate the command's time.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    write_atomic_named(path, bytes, mode, &mut random_u64, Sync::Nothing)
}

/// Which `fsync`s a write does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sync {
    FileAndDir,
    File,
    Nothing,
}

/// [`write_atomic`] with the temp-name source given (tests plant links at
/// the names it will draw).
fn write_atomic_named(
    path: &Path,
    bytes: &[u8],
    mode: Option<u32>,
    next_name: &mut dyn FnMut() -> u64,
    sync: Sync,
) -> io::Result<()> {
    let dir = parent_dir(path);
    let mode = mode.or_else(|| {
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    });
    let (tmp, mut file) = create_temp(dir, path, mode.unwrap_or(0o666), next_name)?;
    let written = (|| {
        if let Some(mode) = mode {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        file.write_all(bytes)?;
        if sync != Sync::Nothing {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if sync == Sync::FileAndDir {
        sync_dir(dir)
    } else {
        Ok(())
    }
}

/// `fsync`s a directory, so that entries just created or renamed in it
/// survive a crash. `EINVAL` (not supported by the file system) is success.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}

/// Opens `path` for reading without blocking: a FIFO planted where a file
/// was expected opens at once instead of waiting for a writer forever.
pub fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Reads a regular file whole. Anything else (a directory, a FIFO, a
/// socket, a device) is an `InvalidInput` error, and is never waited on.
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = open_nonblocking(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", file_kind(&meta)),
        ));
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// What kind of file `meta` describes, in words for messages.
pub fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates a new temp file beside `target`, exclusively and without
/// following links, under a random name.
fn create_temp(
    dir: &Path,
    target: &Path,
    mode: u32,
    next_name: &mut dyn FnMut() -> u64,
) -> io::Result<(PathBuf, File)> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", next_name()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// 64 unpredictable bits: std's `RandomState` is seeded from the operating
/// system's random source once per process (and bumped per instance); the
/// clock and pid are mixed in so that two processes never share a stream.
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.write_u128(now);
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn temp_names(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn replaces_the_file_keeping_its_mode_and_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.yaml");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"new", None).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        write_atomic(&p, b"private", Some(0o600)).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(temp_names(d.path()).is_empty());
    }

    /// Links planted at every name the old writer would have used (pid-
    /// based) and at the random names the writer will try: none is ever
    /// followed, and the file they point at keeps its bytes.
    #[test]
    fn planted_links_at_temp_names_are_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "# my rc\n").unwrap();
        let repo = d.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        let target = repo.join("config.yaml");
        symlink(
            &victim,
            repo.join(format!(".config.yaml.{}.tmp", std::process::id())),
        )
        .unwrap();
        // The old pid-based names, for the pids near ours.
        let me = std::process::id();
        for pid in me.saturating_sub(50)..me + 50 {
            let _ = symlink(&victim, repo.join(format!(".config.yaml.{pid}.tmp")));
        }
        write_atomic(&target, b"project: {}\n", None).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"# my rc\n");
        let meta = std::fs::symlink_metadata(&target).unwrap();
        assert!(meta.file_type().is_file(), "a regular file, not a link");
        assert_eq!(std::fs::read(&target).unwrap(), b"project: {}\n");
    }

    /// Links planted at the very names the writer draws (a dangling one
    /// too): each is skipped on EEXIST, never followed, and left in place.
    #[test]
    fn a_link_at_a_drawn_temp_name_is_skipped_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let target = d.path().join("f.md");
        let planted = |n: u64| d.path().join(format!(".f.md.{n:016x}.tmp"));
        symlink(&victim, planted(1)).unwrap();
        symlink(d.path().join("missing"), planted(2)).unwrap();
        let mut names = 0u64..;
        write_atomic_named(
            &target,
            b"new",
            None,
            &mut || names.next().unwrap() + 1,
            Sync::FileAndDir,
        )
        .unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(
            !d.path().join("missing").exists(),
            "the dangling link was followed"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert!(std::fs::symlink_metadata(&target).unwrap().is_file());
        for n in [1, 2] {
            assert!(std::fs::symlink_metadata(planted(n))
                .unwrap()
                .file_type()
                .is_symlink());
        }
        // Every drawn name taken: an error, and still nothing followed.
        let e = write_atomic_named(&target, b"x", None, &mut || 1, Sync::FileAndDir).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }

    /// The exclusive create itself: a link already at the chosen name makes
    /// the open fail with EEXIST (never followed), and the writer moves on.
    #[test]
    fn exclusive_create_refuses_an_existing_link() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = d.path().join(".x.tmp");
        symlink(&victim, &link).unwrap();
        let e = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&link)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn a_failed_write_removes_its_temp_file() {
        let d = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename fails.
        let target = d.path().join("t");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), "x").unwrap();
        assert!(write_atomic(&target, b"bytes", None).is_err());
        assert!(temp_names(d.path()).is_empty());
    }

    #[test]
    fn random_names_differ() {
        let a: std::collections::HashSet<u64> = (0..1000).map(|_| random_u64()).collect();
        assert_eq!(a.len(), 1000);
    }
}
