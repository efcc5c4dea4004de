//! What the daemon reads from the user's files: the login (for `team_slug`
//! and status) and its own tunables.
//!
//! Credentials are read fresh at start, on `Reload` and on SIGHUP, never
//! cached across a login/logout.

use spec_kitty_protocol::credentials::{self, Credentials};
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

/// The login, through the one reader every process uses
/// ([`credentials::read`]). A missing file means "not logged in"; an
/// unreadable or unparseable one is logged (never quoted: it may hold a
/// token) and also read as logged out.
pub fn read_credentials(paths: &Paths) -> Credentials {
    match credentials::read(paths) {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            tracing::warn!("{e}; treating as logged out");
            Credentials::default()
        }
    }
}

/// A duration in whole seconds from an environment variable, if set and valid.
pub fn env_secs(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}
