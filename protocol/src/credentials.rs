//! The login, as the Python 2.x CLI and we both keep it:
//! `$SPEC_KITTY_SYNC_HOME/credentials`, TOML, mode 0600.
//!
//! ```toml
//! [tokens]
//! access = "..."
//! refresh = "..."
//! access_expires_at = "2026-02-07T08:34:22.123456+00:00"
//! refresh_expires_at = "2026-02-14T08:34:22.123456+00:00"
//! [user]
//! username = "alice"
//! team_slug = "team-a"
//! [server]
//! url = "https://spec-kitty-dev.fly.dev"
//! ```
//!
//! Why here: the CLI writes it on login and the daemon rewrites it on token
//! refresh; one reader/writer means they cannot disagree on the layout.
//! Writers hold [`lock`] (the same `credentials.lock` the Python CLI's
//! `FileLock` uses, an `flock`), write a temp file (0600 from creation),
//! fsync, rename: a reader sees the old file or the new one, never half.
//! Keys we do not know are kept on rewrite.
//!
//! Tokens are secrets: [`Credentials`] has a `Debug` that hides them, and
//! nothing in this module puts a token in an error message.

use crate::Paths;
use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the credentials file holds. Expiries are µs since the epoch.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub access: Option<String>,
    pub refresh: Option<String>,
    pub access_expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
    pub username: Option<String>,
    pub team_slug: Option<String>,
    pub server_url: Option<String>,
    /// `[server] insecure = true`: the user allowed plain http to a
    /// non-loopback server at login (`--insecure`).
    pub insecure: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hide = |t: &Option<String>| t.as_ref().map(|_| "<redacted>");
        f.debug_struct("Credentials")
            .field("access", &hide(&self.access))
            .field("refresh", &hide(&self.refresh))
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("username", &self.username)
            .field("team_slug", &self.team_slug)
            .field("server_url", &self.server_url)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl Credentials {
    /// Has tokens (a session that may still be alive).
    pub fn logged_in(&self) -> bool {
        self.access.is_some() || self.refresh.is_some()
    }

    /// `team_slug` for events: the login's team, else `"local"`.
    pub fn team_slug_or_local(&self) -> String {
        self.team_slug
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "local".to_string())
    }
}

/// The credentials file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The parse error is not quoted: it may show a line holding a token.
    #[error("{path} is not valid TOML (expected [tokens], [user], [server] tables); log in again to rewrite it")]
    Parse { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot take the lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another process has held {path} for {secs} s; try again")]
    LockTimeout { path: PathBuf, secs: u64 },
}

/// Reads the credentials file; `Ok(None)` when there is none.
pub fn read(paths: &Paths) -> Result<Option<Credentials>, CredentialsError> {
    let path = paths.credentials();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CredentialsError::Read { path, source }),
    };
    let doc: toml::Table = text
        .parse()
        .map_err(|_| CredentialsError::Parse { path: path.clone() })?;
    Ok(Some(from_table(&doc)))
}

fn from_table(doc: &toml::Table) -> Credentials {
    let get = |table: &str, key: &str| {
        doc.get(table)
            .and_then(|t| t.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .filter(|s| !s.is_empty())
    };
    let time = |key: &str| {
        get("tokens", key)
            .as_deref()
            .and_then(crate::time::parse_micros)
    };
    Credentials {
        access: get("tokens", "access"),
        refresh: get("tokens", "refresh"),
        access_expires_at: time("access_expires_at"),
        refresh_expires_at: time("refresh_expires_at"),
        username: get("user", "username"),
        team_slug: get("user", "team_slug"),
        server_url: get("server", "url"),
        insecure: doc
            .get("server")
            .and_then(|t| t.get("insecure"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    }
}

/// Writes `creds` atomically with mode 0600, keeping keys of the existing
/// file that we do not manage. Call with [`lock`] held.
pub fn write(paths: &Paths, creds: &Credentials) -> Result<(), CredentialsError> {
    let path = paths.credentials();
    let mut doc: toml::Table = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_default();
    fn set(doc: &mut toml::Table, table: &str, key: &str, v: Option<toml::Value>) {
        let t = doc
            .entry(table.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !t.is_table() {
            *t = toml::Value::Table(toml::Table::new());
        }
        let t = t.as_table_mut().expect("table");
        match v {
            Some(v) => {
                t.insert(key.to_string(), v);
            }
            None => {
                t.remove(key);
            }
        }
    }
    let s = |v: &Option<String>| v.clone().map(toml::Value::String);
    let ts = |v: Option<i64>| v.map(|m| toml::Value::String(crate::time::format_micros(m)));
    set(&mut doc, "tokens", "access", s(&creds.access));
    set(&mut doc, "tokens", "refresh", s(&creds.refresh));
    set(
        &mut doc,
        "tokens",
        "access_expires_at",
        ts(creds.access_expires_at),
    );
    set(
        &mut doc,
        "tokens",
        "refresh_expires_at",
        ts(creds.refresh_expires_at),
    );
    set(&mut doc, "user", "username", s(&creds.username));
    set(&mut doc, "user", "team_slug", s(&creds.team_slug));
    set(&mut doc, "server", "url", s(&creds.server_url));
    set(
        &mut doc,
        "server",
        "insecure",
        creds.insecure.then_some(toml::Value::Boolean(true)),
    );
    // Empty tables (e.g. [tokens] after a session ended) are dropped.
    doc.retain(|_, v| v.as_table().is_none_or(|t| !t.is_empty()));
    let text = toml::to_string(&doc).expect("a TOML table serialises");
    write_private(&path, text.as_bytes()).map_err(|source| CredentialsError::Write { path, source })
}

/// Removes the credentials file (logout). Call with [`lock`] held.
pub fn remove(paths: &Paths) -> Result<bool, CredentialsError> {
    let path = paths.credentials();
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(CredentialsError::Write { path, source }),
    }
}

/// Writes `bytes` to `path` atomically with mode 0600, creating its
/// directory: [`crate::fsutil::write_atomic`] (random exclusive temp name,
/// fsync, rename, fsync of the directory).
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    crate::fsutil::write_atomic(path, bytes, Some(0o600))
}

/// Takes the machine-wide credentials lock (`Paths::refresh_lock()`, an
/// exclusive `flock`, the same file the Python CLI locks), waiting up to
/// `wait`. Released when the returned file is dropped.
pub fn lock(paths: &Paths, wait: Duration) -> Result<File, CredentialsError> {
    let path = paths.refresh_lock();
    let err = |source| CredentialsError::Lock {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(err)?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(CredentialsError::LockTimeout {
                    path,
                    secs: wait.as_secs(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
        }
    }
}

/// Is `url` allowed as a server without TLS? `https` always; `http` only
/// to a loopback host (127.0.0.0/8, ::1, localhost) unless `insecure`.
pub fn check_server_url(url: &str, insecure: bool) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("server URL {url:?} has no scheme; use https://HOST"))?;
    let host_port = rest.split('/').next().unwrap_or("");
    if host_port.is_empty() {
        return Err(format!("server URL {url:?} has no host"));
    }
    match scheme {
        "https" => Ok(()),
        "http" if insecure || is_loopback_host(host_port) => Ok(()),
        "http" => Err(format!(
            "refusing plain http to {host_port}: tokens would travel unencrypted; use https:// (plain http is allowed only to loopback, or with --insecure)"
        )),
        other => Err(format!(
            "server URL {url:?}: unsupported scheme {other:?}; use https://"
        )),
    }
}

/// `host[:port]` names this machine.
pub fn is_loopback_host(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_unknown_keys_and_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        std::fs::write(
            paths.credentials(),
            "[tokens]\naccess = \"a1\"\nrefresh = \"r1\"\naccess_expires_at = \"2026-02-07T08:34:22.123456+00:00\"\nrefresh_expires_at = \"2026-02-14T08:34:22+00:00\"\n[user]\nusername = \"alice\"\nextra = 1\n[server]\nurl = \"https://x.example\"\n[other]\nk = \"v\"\n",
        )
        .unwrap();
        let mut c = read(&paths).unwrap().unwrap();
        assert_eq!(c.access.as_deref(), Some("a1"));
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert_eq!(c.team_slug, None);
        assert_eq!(c.team_slug_or_local(), "local");
        assert!(c.access_expires_at.is_some() && c.refresh_expires_at.is_some());
        c.team_slug = Some("team-a".into());
        c.access = Some("a2".into());
        write(&paths, &c).unwrap();
        let back = read(&paths).unwrap().unwrap();
        assert_eq!(back, c);
        let text = std::fs::read_to_string(paths.credentials()).unwrap();
        assert!(
            text.contains("extra = 1") && text.contains("[other]"),
            "{text}"
        );
        let mode = std::fs::metadata(paths.credentials())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{c:?}").contains("a2"), "Debug hides tokens");
    }

    #[test]
    fn dropping_tokens_removes_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        let c = Credentials {
            username: Some("u".into()),
            ..Credentials::default()
        };
        write(&paths, &c).unwrap();
        let text = std::fs::read_to_string(paths.credentials()).unwrap();
        assert!(!text.contains("[tokens]"), "{text}");
        assert!(!read(&paths).unwrap().unwrap().logged_in());
    }

    #[test]
    fn server_url_rules() {
        assert!(check_server_url("https://spec-kitty-dev.fly.dev", false).is_ok());
        assert!(check_server_url("http://127.0.0.1:8000", false).is_ok());
        assert!(check_server_url("http://localhost:1/x", false).is_ok());
        assert!(check_server_url("http://[::1]:80", false).is_ok());
        assert!(check_server_url("http://example.com", false).is_err());
        assert!(check_server_url("http://example.com", true).is_ok());
        assert!(check_server_url("ftp://example.com", true).is_err());
        assert!(check_server_url("example.com", false).is_err());
    }

    #[test]
    fn unparseable_file_names_no_content() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        std::fs::write(paths.credentials(), "[tokens\naccess = \"SECRET\"").unwrap();
        let e = read(&paths).unwrap_err().to_string();
        assert!(!e.contains("SECRET"), "{e}");
    }
}
