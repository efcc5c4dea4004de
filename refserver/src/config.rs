//! Command-line configuration: port, storage, users, token lifetimes,
//! WebSocket heartbeat, project claims and the faults active at start.
//!
//! Everything a test needs to set up server state is a flag (or a users
//! file), so tests never depend on special cases inside the server.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;

/// One account: password and team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub password: String,
    pub team_slug: String,
}

/// Why a flag or the users file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{what} '{value}': expected {expected}")]
    Format {
        what: String,
        value: String,
        expected: &'static str,
    },
    #[error("users file {path}: {source}")]
    UsersFile {
        path: String,
        source: std::io::Error,
    },
    #[error("users file {path} line {line}: expected USER:PASSWORD:TEAM")]
    UsersFileLine { path: String, line: usize },
}

/// `spec-kitty-refserver`: reference SaaS ingest server (loopback only).
///
/// Prints exactly one line `listening on http://127.0.0.1:PORT` (https:// with --tls or
/// --cert) on stdout when ready.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "spec-kitty-refserver",
    version,
    about,
    long_about = None,
    after_help = "Runtime control (loopback): GET|POST /__control/faults, GET /__control/stats, \
POST /__control/revoke-tokens, POST /__control/projects. Views: GET /api/v1/projects/, \
GET /api/v1/events/?project_uuid=U, dashboard at /. See refserver/README.md."
)]
pub struct Config {
    /// TCP port on 127.0.0.1; 0 picks a free port (printed on the `listening on` line).
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// SQLite database file; created if missing. Default: in memory (lost at exit).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// An account, USER:PASSWORD:TEAM (repeatable). Example: --user alice:secret:team-a
    #[arg(long = "user", value_name = "USER:PASSWORD:TEAM")]
    pub users: Vec<String>,

    /// File of accounts, one USER:PASSWORD:TEAM per line; blank lines and `#` comments ignored.
    #[arg(long, value_name = "PATH")]
    pub users_file: Option<PathBuf>,

    /// Pre-claims a project for a team, TEAM:PROJECT_UUID (repeatable). Events for that
    /// project sent with another team's token fail the project_uuid authorization check.
    /// Unclaimed projects are claimed by the team of the first accepted event.
    #[arg(long = "project", value_name = "TEAM:PROJECT_UUID")]
    pub projects: Vec<String>,

    /// Access-token lifetime in seconds (0: tokens are expired at once, every use is a 401).
    #[arg(long, default_value_t = 900)]
    pub access_lifetime: u64,

    /// Refresh-token lifetime in seconds.
    #[arg(long, default_value_t = 604_800)]
    pub refresh_lifetime: u64,

    /// WebSocket-token lifetime in seconds (tokens are also single-use).
    #[arg(long, default_value_t = 60)]
    pub ws_token_lifetime: u64,

    /// Interval between server pings on the WebSocket, in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    pub ping_interval_ms: u64,

    /// Close a WebSocket after this many consecutive unanswered pings (0: never).
    #[arg(long, default_value_t = 3)]
    pub max_missed_pongs: u64,

    /// Legacy 2.x mode: never send WebSocket acks (fault `ws_ack: false`).
    #[arg(long)]
    pub legacy_ws: bool,

    /// Fault: answer the next N API/WebSocket-upgrade requests with HTTP 500.
    #[arg(long, default_value_t = 0)]
    pub fail_next: u64,

    /// Fault: answer this percentage (0-100) of API requests with HTTP 500.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub fail_percent: u8,

    /// Status code of injected failures (400-599).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(400..=599))]
    pub fail_status: u16,

    /// Fault: delay every API request (and WebSocket reply) by this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,

    /// Fault: drop each WebSocket abruptly right after storing its Nth event frame (no ack for it).
    #[arg(long, value_name = "N")]
    pub ws_drop_after_frames: Option<u64>,

    /// Fault: reject every event (batch result `rejected`, WebSocket error frame).
    #[arg(long)]
    pub reject_all: bool,

    /// Fault: close the listening socket for this many milliseconds right after start
    /// (connections are refused), then listen again on the same port.
    #[arg(long, default_value_t = 0)]
    pub refuse_connections_ms: u64,

    /// Serve https/wss with a throw-away CA and a server certificate for 127.0.0.1 and
    /// localhost, made at start (see --ca-out). The `listening on` line says https://.
    #[arg(long)]
    pub tls: bool,

    /// With --tls: write the throw-away CA certificate (PEM) here, for clients'
    /// SSL_CERT_FILE.
    #[arg(long, value_name = "PATH", requires = "tls")]
    pub ca_out: Option<PathBuf>,

    /// Serve https/wss with this PEM certificate chain (with --key) instead of a
    /// throw-away one.
    #[arg(long, value_name = "PATH", requires = "key", conflicts_with = "tls")]
    pub cert: Option<PathBuf>,

    /// The PEM private key of --cert.
    #[arg(long, value_name = "PATH", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Log one line per request and event to stderr (never tokens).
    #[arg(long)]
    pub verbose: bool,
}

fn split3(what: &str, s: &str) -> Result<(String, String, String), ConfigError> {
    let mut parts = s.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(u), Some(p), Some(t)) if !u.is_empty() && !p.is_empty() && !t.is_empty() => {
            Ok((u.to_string(), p.to_string(), t.to_string()))
        }
        _ => Err(ConfigError::Format {
            what: what.to_string(),
            value: s.to_string(),
            expected: "USER:PASSWORD:TEAM",
        }),
    }
}

impl Config {
    /// Accounts from `--user` and `--users-file`, by username (later wins).
    pub fn load_users(&self) -> Result<BTreeMap<String, User>, ConfigError> {
        let mut users = BTreeMap::new();
        if let Some(path) = &self.users_file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::UsersFile {
                path: path.display().to_string(),
                source,
            })?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (u, p, t) = split3("user", line).map_err(|_| ConfigError::UsersFileLine {
                    path: path.display().to_string(),
                    line: i + 1,
                })?;
                users.insert(
                    u.clone(),
                    User {
                        username: u,
                        password: p,
                        team_slug: t,
                    },
                );
            }
        }
        for spec in &self.users {
            let (u, p, t) = split3("--user", spec)?;
            users.insert(
                u.clone(),
                User {
                    username: u,
                    password: p,
                    team_slug: t,
                },
            );
        }
        Ok(users)
    }

    /// Project claims from `--project TEAM:UUID`, as (project_uuid, team).
    pub fn project_claims(&self) -> Result<Vec<(String, String)>, ConfigError> {
        self.projects
            .iter()
            .map(|spec| match spec.split_once(':') {
                Some((team, uuid))
                    if !team.is_empty() && spec_kitty_protocol::envelope::is_uuid(uuid) =>
                {
                    Ok((uuid.to_string(), team.to_string()))
                }
                _ => Err(ConfigError::Format {
                    what: "--project".into(),
                    value: spec.clone(),
                    expected: "TEAM:PROJECT_UUID (a hyphenated UUID)",
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_claims_parse_and_bad_ones_are_named() {
        let c = Config::parse_from([
            "x",
            "--user",
            "alice:se:cret:team-a",
            "--project",
            "team-b:550e8400-e29b-41d4-a716-446655440000",
        ]);
        let users = c.load_users().unwrap();
        assert_eq!(users["alice"].password, "se");
        assert_eq!(users["alice"].team_slug, "cret:team-a");
        assert_eq!(
            c.project_claims().unwrap(),
            vec![(
                "550e8400-e29b-41d4-a716-446655440000".to_string(),
                "team-b".to_string()
            )]
        );
        let bad = Config::parse_from(["x", "--user", "bob:pw"]);
        assert!(bad
            .load_users()
            .unwrap_err()
            .to_string()
            .contains("USER:PASSWORD:TEAM"));
        let bad = Config::parse_from(["x", "--project", "team:not-a-uuid"]);
        assert!(bad.project_claims().is_err());
    }
}
