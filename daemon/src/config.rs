//! What the daemon reads from the user's files: the login (for `team_slug`
//! and status) and its own tunables.
//!
//! Credentials are read fresh at start and on `Reload`, never cached across a
//! login/logout, and tokens are never kept here: status only needs to know
//! *whether* there is a login, and who.

use spec_kitty_protocol::Paths;
use std::time::Duration;

/// Environment variable: idle-exit timeout in seconds for auto-spawned
/// daemons (`0` = never). Overridden by `--idle-exit-secs`.
pub const IDLE_EXIT_ENV: &str = "SPEC_KITTY_SYNCD_IDLE_EXIT_SECS";
/// Default idle-exit timeout of an auto-spawned daemon.
pub const DEFAULT_IDLE_EXIT: Duration = Duration::from_secs(600);
/// Environment variable: seconds during which a second version-skew
/// shutdown is refused (restart-loop guard).
pub const SKEW_COOLDOWN_ENV: &str = "SPEC_KITTY_SYNCD_SKEW_COOLDOWN_SECS";
/// Default restart cooldown for version-skew shutdowns.
pub const DEFAULT_SKEW_COOLDOWN: Duration = Duration::from_secs(60);

/// The login as far as the daemon needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Login {
    pub username: Option<String>,
    pub team_slug: Option<String>,
    pub server_url: Option<String>,
    pub has_tokens: bool,
}

impl Login {
    /// `team_slug` for events: the login's team, else `"local"` (US4).
    pub fn team_slug(&self) -> String {
        self.team_slug
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "local".to_string())
    }
}

/// Reads `credentials` (TOML `[tokens] [user] [server]`). A missing or
/// unreadable file means "not logged in"; an unparseable one is logged.
pub fn read_login(paths: &Paths) -> Login {
    let path = paths.credentials();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Login::default(),
        Err(e) => {
            tracing::warn!(
                "cannot read {}: {e}; treating as logged out",
                path.display()
            );
            return Login::default();
        }
    };
    let doc: toml::Table = match text.parse() {
        Ok(d) => d,
        Err(e) => {
            // The parse error may quote the line, which could hold a token:
            // say where, not what.
            let _ = e;
            tracing::warn!(
                "{} is not valid TOML; treating as logged out",
                path.display()
            );
            return Login::default();
        }
    };
    let get = |table: &str, key: &str| {
        doc.get(table)
            .and_then(|t| t.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    Login {
        username: get("user", "username"),
        team_slug: get("user", "team_slug"),
        server_url: get("server", "url"),
        has_tokens: get("tokens", "access").is_some() || get("tokens", "refresh").is_some(),
    }
}

/// A duration in whole seconds from an environment variable, if set and valid.
pub fn env_secs(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}
