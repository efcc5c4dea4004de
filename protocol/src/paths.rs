//! Every file and socket path, derived from one root.
//!
//! `SPEC_KITTY_SYNC_HOME` (default `~/.spec-kitty`, the directory the Python
//! CLI already uses for credentials and its queue) decides everything: tests
//! point it at a temp dir and nothing leaks into the real home.
//!
//! `SPEC_KITTY_HOME` is the Python CLI's *global runtime directory*
//! (`~/.kittify`), not ours. Earlier releases of this CLI read it as the
//! sync root; for one release it is still honoured when it already holds
//! our state (`syncd/`), with a notice ([`Paths::legacy_notice`]), so no
//! running daemon's queue is stranded. Otherwise it is left to Python. The socket path is *never* taken from
//! `XDG_RUNTIME_DIR` or `TMPDIR`: those differ between shells, and a client
//! that computes a different path than the daemon cannot find it.

use std::path::{Path, PathBuf};

/// The environment variable that overrides the root.
pub const HOME_ENV: &str = "SPEC_KITTY_SYNC_HOME";

/// The name earlier releases used (it means something else to 2.1.3).
pub const LEGACY_HOME_ENV: &str = "SPEC_KITTY_HOME";

/// Longest socket path we bind to. `sun_path` holds 108 bytes on Linux and
/// 104 on macOS, including the trailing NUL.
pub const MAX_SOCKET_PATH: usize = 100;

/// All paths of one spec-kitty home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    root: PathBuf,
    /// Taken from [`LEGACY_HOME_ENV`] because our state was already there.
    legacy: bool,
}

/// The home directory could not be determined.
#[derive(Debug, thiserror::Error)]
#[error("cannot find the spec-kitty home: {HOME_ENV} is unset and so is HOME; set {HOME_ENV} to a directory")]
pub struct NoHome;

impl Paths {
    /// Paths under an explicit root.
    pub fn new(root: impl Into<PathBuf>) -> Paths {
        Paths {
            root: root.into(),
            legacy: false,
        }
    }

    /// `$SPEC_KITTY_SYNC_HOME`, else `$SPEC_KITTY_HOME` when it already
    /// holds our `syncd/` (see the module doc), else `$HOME/.spec-kitty`,
    /// else the password database's home + `.spec-kitty`. A relative value
    /// is made absolute against the current directory, so a daemon (cwd =
    /// state dir) and its clients agree.
    pub fn from_env() -> Result<Paths, NoHome> {
        let var = |name| -> Result<Option<PathBuf>, NoHome> {
            let Some(v) = std::env::var_os(name).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            let p = PathBuf::from(v);
            Ok(Some(if p.is_absolute() {
                p
            } else {
                std::env::current_dir().map_err(|_| NoHome)?.join(p)
            }))
        };
        if let Some(p) = var(HOME_ENV)? {
            return Ok(Paths::new(p));
        }
        if let Some(p) = var(LEGACY_HOME_ENV)? {
            if p.join("syncd").is_dir() {
                return Ok(Paths {
                    root: p,
                    legacy: true,
                });
            }
        }
        let home = std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| crate::identity::passwd_home().map(PathBuf::from))
            .ok_or(NoHome)?;
        Ok(Paths::new(home.join(".spec-kitty")))
    }

    /// A one-line notice when the root came from [`LEGACY_HOME_ENV`].
    pub fn legacy_notice(&self) -> Option<String> {
        self.legacy.then(|| {
            format!(
                "using {LEGACY_HOME_ENV}={} as the sync state directory; \
                 set {HOME_ENV} instead ({LEGACY_HOME_ENV} is the Python CLI's runtime \
                 directory, and this fallback goes away in the next release)",
                self.root.display()
            )
        })
    }

    /// The root directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Our durable queue and clock (SQLite), owned by the daemon.
    pub fn store(&self) -> PathBuf {
        self.root.join("syncd").join("store.db")
    }

    /// Directory of the daemon's own state (store, locks, logs). The daemon
    /// uses it as its working directory.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("syncd")
    }

    /// One file per event the CLI could not hand to the daemon.
    pub fn spool_dir(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// The spool file of one event: `spool/<event_id>.json`, holding the
    /// unstamped envelope as JSON. Writers create it under a dot-prefixed
    /// temp name in the same directory, fsync, then rename, so readers only
    /// ever see whole files; readers ignore names starting with `.`.
    pub fn spool_file(&self, event_id: &str) -> PathBuf {
        self.spool_dir().join(format!("{event_id}.json"))
    }

    /// Where unparseable spool files are moved (never deleted).
    pub fn spool_rejected_dir(&self) -> PathBuf {
        self.spool_dir().join("rejected")
    }

    /// Held by the running daemon for its whole life (liveness = lock held).
    pub fn daemon_lock(&self) -> PathBuf {
        self.state_dir().join("syncd.lock")
    }

    /// Serialises CLI processes that try to spawn a daemon at once.
    pub fn start_lock(&self) -> PathBuf {
        self.state_dir().join("start.lock")
    }

    /// Machine-wide lock around token refresh.
    pub fn refresh_lock(&self) -> PathBuf {
        self.root.join("credentials.lock")
    }

    /// Directory of the daemon's log files.
    pub fn log_dir(&self) -> PathBuf {
        self.state_dir().join("logs")
    }

    /// The daemon's current log file.
    pub fn log_file(&self) -> PathBuf {
        self.log_dir().join("syncd.log")
    }

    /// The directory the socket lives in (mode 0700, checked before bind).
    pub fn socket_dir(&self) -> PathBuf {
        match self.preferred_socket() {
            Some(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
            None => fallback_socket_dir(&self.root),
        }
    }

    /// The daemon socket: `$ROOT/run/syncd.sock`, or, when that path is too
    /// long for a Unix socket, `/tmp/spec-kitty-<uid>-<hash of root>/syncd.sock`
    /// (fixed, so every process of the user computes the same one).
    pub fn socket(&self) -> PathBuf {
        self.preferred_socket()
            .unwrap_or_else(|| fallback_socket_dir(&self.root).join("syncd.sock"))
    }

    fn preferred_socket(&self) -> Option<PathBuf> {
        let p = self.root.join("run").join("syncd.sock");
        (p.as_os_str().len() <= MAX_SOCKET_PATH).then_some(p)
    }

    /// `[tokens] [user] [server]` TOML, mode 0600 (shared with the Python CLI).
    pub fn credentials(&self) -> PathBuf {
        self.root.join("credentials")
    }

    /// User configuration: `[sync] server_url` (shared with the Python CLI).
    pub fn config_toml(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// The Python CLI's Lamport clock `{value, node_id, updated_at}`.
    pub fn clock_json(&self) -> PathBuf {
        self.root.join("clock.json")
    }

    /// The Python CLI's offline queue (adopted by the daemon on first start).
    pub fn legacy_queue_db(&self) -> PathBuf {
        self.root.join("queue.db")
    }

    /// The Python CLI's queue while a login exists: 2.1.3 keeps one per
    /// `server|user|team` scope (lower-cased, the URL without a trailing
    /// `/`, `no-team` for a missing team), in
    /// `queues/queue-<first 16 hex of sha256(scope)>.db`.
    pub fn python_scoped_queue_db(
        &self,
        server_url: &str,
        username: &str,
        team_slug: Option<&str>,
    ) -> PathBuf {
        use sha2::{Digest, Sha256};
        let part = |s: &str| s.trim().to_lowercase();
        let team = team_slug.filter(|t| !t.is_empty()).unwrap_or("no-team");
        let scope = format!(
            "{}|{}|{}",
            part(server_url).trim_end_matches('/'),
            part(username),
            part(team)
        );
        let digest = Sha256::digest(scope.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        self.root.join("queues").join(format!("queue-{hex}.db"))
    }

    /// Remembers when the CLI last printed the "run auth login" hint.
    pub fn login_hint_stamp(&self) -> PathBuf {
        self.root.join("run").join("login-hint")
    }
}

fn fallback_socket_dir(root: &Path) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    PathBuf::from(format!(
        "/tmp/spec-kitty-{}-{hash}",
        crate::identity::current_uid()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_scoped_queue_is_the_one_2_1_3_names() {
        // Digests from 2.1.3's own `scope_db_path` (Python's hashlib).
        let p = Paths::new("/h");
        assert_eq!(
            p.python_scoped_queue_db("https://127.0.0.1:46721/", "Alice", Some("team-a")),
            PathBuf::from("/h/queues/queue-cfd4c789d675500f.db")
        );
        assert_eq!(
            p.python_scoped_queue_db(" https://SK.example.com", "bob@x.io", None),
            PathBuf::from("/h/queues/queue-6ec6b362a073e8f8.db")
        );
    }

    #[test]
    fn everything_lives_under_the_root() {
        let p = Paths::new("/h");
        for path in [
            p.store(),
            p.spool_dir(),
            p.daemon_lock(),
            p.start_lock(),
            p.log_file(),
            p.socket(),
            p.credentials(),
            p.config_toml(),
            p.clock_json(),
            p.legacy_queue_db(),
        ] {
            assert!(path.starts_with("/h"), "{path:?}");
        }
        assert_eq!(p.socket(), PathBuf::from("/h/run/syncd.sock"));
        assert_eq!(p.socket_dir(), PathBuf::from("/h/run"));
        assert_eq!(p.credentials(), PathBuf::from("/h/credentials"));
        assert_eq!(p.clock_json(), PathBuf::from("/h/clock.json"));
    }

    #[test]
    fn long_roots_fall_back_to_a_fixed_short_socket() {
        let long = format!("/{}", "x".repeat(150));
        let a = Paths::new(&long);
        let sock = a.socket();
        assert!(sock.as_os_str().len() <= MAX_SOCKET_PATH);
        assert!(sock.starts_with("/tmp"));
        assert_eq!(sock, Paths::new(&long).socket(), "deterministic");
        assert_ne!(
            sock,
            Paths::new(format!("{long}y")).socket(),
            "differs per root"
        );
        assert_eq!(a.socket_dir(), sock.parent().unwrap());
    }
}
