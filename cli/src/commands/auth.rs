//! `spec-kitty auth login | logout | status`: the login the daemon uses to
//! reach the SaaS.
//!
//! The CLI only logs in and out; refreshing tokens is the daemon's job (one
//! refresher per machine, so a rotating refresh token is never spent twice).
//! Credentials go to `$SPEC_KITTY_SYNC_HOME/credentials` in the Python CLI's
//! layout ([`spec_kitty_protocol::credentials`]), written atomically with
//! mode 0600 under the machine-wide lock; then a running daemon is told to
//! reload. Tokens are never printed: not in status, not in errors.

use crate::cli::{AuthCommand, JsonFlag, LoginArgs};
use crate::daemon_client::{self, ClientError};
use crate::error::{CliError, Kind};
use crate::output::Out;
use serde_json::{json, Value};
use spec_kitty_protocol::credentials::{self, Credentials};
use spec_kitty_protocol::ipc::{DaemonStatus, Request, Response};
use spec_kitty_protocol::Paths;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// The SaaS used when nothing else says which.
pub use spec_kitty_protocol::saas::DEFAULT_SERVER_URL;
/// Environment variable that overrides `[sync] server_url`.
pub const SERVER_URL_ENV: &str = "SPEC_KITTY_SERVER_URL";

pub fn run(out: &Out, cmd: AuthCommand) -> Result<(), CliError> {
    match cmd {
        AuthCommand::Login(a) => login(out, a),
        AuthCommand::Logout(a) => logout(out, a),
        AuthCommand::Status(a) => status(out, a),
    }
}

/// The server URL: `flag`, else env, else `[sync] server_url`, else the default.
pub fn server_url(paths: &Paths, flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| {
            std::env::var(SERVER_URL_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .or_else(|| configured_server_url(paths))
        .unwrap_or_else(|| DEFAULT_SERVER_URL.to_string())
        .trim()
        .trim_end_matches('/')
        .to_string()
}

/// `[sync] server_url` of `config.toml`, if set.
pub fn configured_server_url(paths: &Paths) -> Option<String> {
    let text = std::fs::read_to_string(paths.config_toml()).ok()?;
    let doc: toml::Table = text.parse().ok()?;
    doc.get("sync")?
        .get("server_url")?
        .as_str()
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
}

fn login(out: &Out, a: LoginArgs) -> Result<(), CliError> {
    let paths = super::state_paths(out)?;
    let server = server_url(&paths, a.server.as_deref());
    credentials::check_server_url(&server, a.insecure).map_err(CliError::invalid)?;
    if let Some(who) = already_logged_in(&paths, &server, a.username.as_deref()) {
        if !a.force {
            if out.json {
                out.json(&json!({
                    "logged_in": true, "already": true, "username": who, "server_url": server,
                }));
            } else {
                out.line(&format!(
                    "Already logged in to {server} as {who}. Use --force to log in again, or `spec-kitty auth logout` first."
                ));
            }
            return Ok(());
        }
    }
    if a.password.is_some() {
        out.warn("--password puts the password in your shell history and in the process list; prefer --password-stdin or the prompt");
    }
    let interactive = std::io::stdin().is_terminal();
    let username = match a.username {
        Some(u) => u,
        None if interactive && !a.password_stdin && a.password.is_none() => {
            eprint!("Username: ");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| CliError::io(format!("cannot read the username: {e}")))?;
            line.trim().to_string()
        }
        None => {
            return Err(CliError::new(
                Kind::Invalid,
                "no username: pass -u USER (no terminal to prompt on)",
            ))
        }
    };
    if username.is_empty() {
        return Err(CliError::invalid("the username is empty"));
    }
    let password = if let Some(p) = a.password {
        p
    } else if a.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::io(format!("cannot read the password from stdin: {e}")))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else if interactive {
        rpassword::prompt_password(format!("Password for {username} at {server}: "))
            .map_err(|e| CliError::io(format!("cannot read the password: {e}")))?
    } else {
        return Err(CliError::new(
            Kind::Invalid,
            "no terminal to prompt for a password: use --password-stdin",
        ));
    };
    if password.is_empty() {
        return Err(CliError::invalid("the password is empty"));
    }

    let body = post_login(&server, &username, &password)?;
    let Some(tokens) = spec_kitty_protocol::saas::TokenReply::from_json(&body) else {
        return Err(CliError::io(format!(
            "{server} answered the login without tokens; is this a spec-kitty server?"
        )));
    };
    let now = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
    let (access_expires_at, refresh_expires_at) = tokens.expiries(now);
    let creds = Credentials {
        access: Some(tokens.access),
        refresh: Some(tokens.refresh),
        access_expires_at: Some(access_expires_at),
        refresh_expires_at: Some(refresh_expires_at),
        username: Some(username.clone()),
        team_slug: tokens.team_slug,
        server_url: Some(server.clone()),
        insecure: a.insecure,
    };
    {
        let _lock =
            credentials::lock(&paths, Duration::from_secs(10)).map_err(CliError::io_from)?;
        credentials::write(&paths, &creds).map_err(CliError::io_from)?;
    }
    let daemon = tell_daemon(&paths, true);
    let team = creds.team_slug_or_local();
    if out.json {
        out.json(&json!({
            "logged_in": true, "username": username, "team_slug": team,
            "server_url": server, "daemon": daemon,
        }));
    } else {
        out.line(&format!(
            "Logged in to {server} as {username} (team {team}). {daemon}"
        ));
    }
    Ok(())
}

/// The username when a login for `server` (and `username`, if given) is
/// saved whose refresh token has not expired: 2.1.3's "already
/// authenticated" (a login elsewhere or as someone else just proceeds).
fn already_logged_in(paths: &Paths, server: &str, username: Option<&str>) -> Option<String> {
    let c = credentials::read(paths).ok()??;
    c.refresh.as_ref()?;
    let now = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
    if c.refresh_expires_at.is_some_and(|t| t <= now) {
        return None;
    }
    let saved = c.server_url.as_deref()?.trim_end_matches('/');
    let who = c.username?;
    (saved == server && username.is_none_or(|u| u == who)).then_some(who)
}

/// An HTTP client for the SaaS: the trusted roots of [`spec_kitty_protocol::tls`],
/// every status an answer (not an error), bounded in time.
pub fn http_agent(connect: Duration, global: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(spec_kitty_protocol::tls::ureq_tls_config())
        .http_status_as_error(false)
        .timeout_connect(Some(connect))
        .timeout_global(Some(global))
        .build()
        .into()
}

/// `POST /api/v1/token/` → the JSON answer; errors in words for the user.
fn post_login(server: &str, username: &str, password: &str) -> Result<Value, CliError> {
    // A bad SSL_CERT_FILE is named before anything is sent.
    spec_kitty_protocol::tls::trusted_roots().map_err(CliError::io_from)?;
    let agent = http_agent(Duration::from_secs(10), Duration::from_secs(30));
    let url = format!("{server}/api/v1/token/");
    let resp = agent
        .post(&url)
        .send_json(json!({"username": username, "password": password}));
    let mut resp = match resp {
        Ok(r) => r,
        Err(e) if spec_kitty_protocol::tls::explain_certificate_error(&e.to_string()).is_some() => {
            let why = spec_kitty_protocol::tls::explain_certificate_error(&e.to_string())
                .unwrap_or_default();
            return Err(CliError::io(format!(
                "TLS failure talking to {server}: {why} ({e}); a private CA's certificate can be trusted with SSL_CERT_FILE=PATH"
            )));
        }
        Err(e @ (ureq::Error::Tls(_) | ureq::Error::Rustls(_))) => {
            return Err(CliError::io(format!(
                "TLS failure talking to {server}: {e} (is the certificate valid for this host?)"
            )))
        }
        Err(e) if looks_like_tls(&e.to_string()) => {
            return Err(CliError::io(format!(
                "TLS failure talking to {server}: {e} (does the server speak https, with a valid certificate for this host?)"
            )))
        }
        Err(e) => {
            return Err(CliError::io(format!("cannot reach {server}: {e}")));
        }
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    match status {
        200 => Ok(body),
        401 | 403 => Err(CliError::refused(format!(
            "{server} refused the username or password for {username:?} (HTTP {status})"
        ))),
        _ => Err(CliError::io(format!(
            "{server} answered the login with HTTP {status}{}",
            body.get("error")
                .and_then(Value::as_str)
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ))),
    }
}

/// rustls failures often arrive wrapped as I/O errors; recognise them by
/// their words so the user hears "TLS", not "io".
pub fn looks_like_tls(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    [
        "tls",
        "certificate",
        "handshake",
        "corrupt message",
        "invalidcontenttype",
        "alert",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// Tells a running daemon to re-read the credentials. After a login, a
/// daemon is started when events wait (queued or spooled) so they drain.
fn tell_daemon(paths: &Paths, start_if_queued: bool) -> String {
    match daemon_client::request(paths, Request::Reload, Duration::from_secs(3)) {
        Ok(Response::Done { .. }) => "The sync daemon reloaded the credentials.".into(),
        Ok(other) => format!("The sync daemon answered the reload with {other:?}."),
        Err(ClientError::NotRunning) => {
            let queued = paths.store().exists()
                || std::fs::read_dir(paths.spool_dir())
                    .map(|mut d| d.any(|e| e.is_ok()))
                    .unwrap_or(false);
            if start_if_queued && queued {
                match daemon_client::launch::start(paths, Duration::from_secs(10)) {
                    Ok(_) => "Started the sync daemon to send queued events.".into(),
                    Err(e) => format!("Queued events will be sent when the daemon starts ({e})."),
                }
            } else {
                "No sync daemon is running; it will use the login when it starts.".into()
            }
        }
        Err(e) => format!("Could not tell the sync daemon: {e}."),
    }
}

fn logout(out: &Out, a: JsonFlag) -> Result<(), CliError> {
    let paths = super::state_paths(out)?;
    let removed = {
        let _lock =
            credentials::lock(&paths, Duration::from_secs(10)).map_err(CliError::io_from)?;
        credentials::remove(&paths).map_err(CliError::io_from)?
    };
    let daemon = tell_daemon(&paths, false);
    if a.json {
        out.json(&json!({"logged_out": removed, "daemon": daemon}));
    } else if removed {
        out.line(&format!(
            "Logged out. Queued events stay queued until the next login. {daemon}"
        ));
    } else {
        out.line("Not logged in.");
    }
    Ok(())
}

fn status(out: &Out, a: JsonFlag) -> Result<(), CliError> {
    let paths = super::state_paths(out)?;
    let creds = credentials::read(&paths)
        .map_err(CliError::io_from)?
        .unwrap_or_default();
    let fmt = |t: Option<i64>| t.map(spec_kitty_protocol::time::format_micros);
    let now = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
    let refresh_alive = creds.refresh.is_some() && creds.refresh_expires_at.is_none_or(|t| t > now);
    // The daemon knows when the server ended the session.
    let daemon: Option<DaemonStatus> =
        match daemon_client::request(&paths, Request::Status, Duration::from_secs(2)) {
            Ok(Response::Status { json }) => serde_json::from_str(&json).ok(),
            _ => None,
        };
    let hint = daemon.as_ref().and_then(|d| d.auth.hint.clone());
    let logged_in = refresh_alive && daemon.as_ref().is_none_or(|d| d.auth.logged_in);
    let server = creds
        .server_url
        .clone()
        .unwrap_or_else(|| server_url(&paths, None));
    if a.json {
        out.json(&json!({
            "logged_in": logged_in,
            "username": creds.username,
            "team_slug": creds.team_slug,
            "server_url": server,
            "access_expires_at": fmt(creds.access_expires_at),
            "refresh_expires_at": fmt(creds.refresh_expires_at),
            "connection": daemon.as_ref().map(|d| d.connection.state.clone()),
            "hint": (!logged_in).then(|| hint.clone().unwrap_or_else(|| "run spec-kitty auth login".into())),
        }));
        return Ok(());
    }
    if logged_in {
        out.line(&format!(
            "Logged in as {} (team {}) at {server}",
            creds.username.as_deref().unwrap_or("?"),
            creds.team_slug_or_local()
        ));
        out.line(&format!(
            "  access token expires {}; session (refresh) expires {}",
            fmt(creds.access_expires_at).unwrap_or_else(|| "?".into()),
            fmt(creds.refresh_expires_at).unwrap_or_else(|| "?".into())
        ));
        if let Some(d) = &daemon {
            out.line(&format!("  sync daemon: {}", d.connection.state));
        }
    } else {
        out.line(&format!(
            "Not logged in ({}); server {server}",
            hint.unwrap_or_else(|| "run spec-kitty auth login".into())
        ));
        if let Some(u) = &creds.username {
            out.line(&format!("  last user: {u}"));
        }
    }
    Ok(())
}
