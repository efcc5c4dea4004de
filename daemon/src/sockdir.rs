//! The socket directory and socket file, checked before we trust them.
//!
//! Why: the socket is the daemon's only door. If another user could create
//! or swap the directory (the `/tmp` fallback makes that possible), they
//! could impersonate the daemon or intercept events. So before binding we
//! insist the directory is a real directory (not a symlink), owned by us,
//! and closed to group and others (0700); and we only ever remove a stale
//! *socket* at our path, never another kind of file.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// The socket directory or path is not safe to use.
#[derive(Debug, thiserror::Error)]
pub enum SockDirError {
    #[error("cannot create the socket directory {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("the socket directory {path} is a symlink; refusing to use it (remove it and retry)")]
    Symlink { path: String },
    #[error("the socket directory {path} is not a directory")]
    NotDir { path: String },
    #[error("the socket directory {path} belongs to uid {owner}, not to us (uid {me}); refusing to use it")]
    Owner { path: String, owner: u32, me: u32 },
    #[error("cannot make the socket directory {path} private (0700): {source}")]
    Chmod {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} exists and is not a socket; refusing to remove it (move it away and retry)")]
    NotSocket { path: String },
    #[error("cannot remove the stale socket {path}: {source}")]
    Remove {
        path: String,
        source: std::io::Error,
    },
}

/// Our effective uid.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Creates `dir` (mode 0700) if missing, then verifies: not a symlink, a
/// directory, owned by us, no group/other bits (tightened to 0700 if only
/// the mode is off, since we own it).
pub fn prepare(dir: &Path) -> Result<(), SockDirError> {
    let shown = dir.display().to_string();
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|source| SockDirError::Create {
            path: parent.display().to_string(),
            source,
        })?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(SockDirError::Create {
                path: shown,
                source,
            })
        }
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|source| SockDirError::Create {
        path: shown.clone(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(SockDirError::Symlink { path: shown });
    }
    if !meta.is_dir() {
        return Err(SockDirError::NotDir { path: shown });
    }
    let me = euid();
    if meta.uid() != me {
        return Err(SockDirError::Owner {
            path: shown,
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o077 != 0 {
        tracing::warn!(
            "socket directory {shown} had mode {:o}; tightening to 0700",
            meta.mode() & 0o777
        );
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| SockDirError::Chmod {
                path: shown,
                source,
            },
        )?;
    }
    Ok(())
}

/// Removes a socket left by a crashed daemon. Call only while holding the
/// daemon lock (then no live daemon can be behind it).
pub fn remove_stale(socket: &Path) -> Result<bool, SockDirError> {
    let shown = socket.display().to_string();
    match std::fs::symlink_metadata(socket) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(SockDirError::Remove {
            path: shown,
            source,
        }),
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(socket).map_err(|source| SockDirError::Remove {
                path: shown,
                source,
            })?;
            Ok(true)
        }
        Ok(_) => Err(SockDirError::NotSocket { path: shown }),
    }
}

/// Device and inode of the socket we bound, to know later whether the file
/// at the path is still ours.
pub fn identity(socket: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(socket)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Removes the socket only if it is still the one we bound.
pub fn remove_if_ours(socket: &Path, ours: Option<(u64, u64)>) {
    if ours.is_some() && identity(socket) == ours {
        if let Err(e) = std::fs::remove_file(socket) {
            tracing::warn!("cannot remove socket {}: {e}", socket.display());
        }
    }
}

/// The pid of a daemon of ours that answers on `socket`, if one does. A
/// connect that succeeds means a live listener (a crashed daemon's socket
/// refuses); its SO_PEERCRED must be our uid, or it is not ours to reuse.
pub fn live_daemon(socket: &Path) -> Option<u32> {
    let stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    let cred = rustix::net::sockopt::socket_peercred(&stream).ok()?;
    (cred.uid == rustix::process::geteuid()).then(|| cred.pid.as_raw_nonzero().get() as u32)
}
