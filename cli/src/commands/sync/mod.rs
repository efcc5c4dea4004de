//! `spec-kitty sync ...`: the daemon as the user sees it: `status`,
//! `start`, `stop`, `restart`, `logs`, `service install|uninstall|status`.
//!
//! Everything here talks to the daemon through [`crate::daemon_client`]
//! with bounded timeouts, so a wedged daemon makes these commands fail with
//! a message, never hang. `status` works (and says so) when no daemon runs.
//!
//! Extension point: other command groups under `sync` (e.g. `sync now`,
//! `sync server` from the transport work) add ONE variant to
//! [`SyncCommand`] and ONE arm in [`run`]; their handlers live in their own
//! module.

pub mod checks;
pub mod remote;

use crate::daemon_client::{self, ClientError};
use crate::error::CliError;
use crate::output::Out;
use crate::{identity, project};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use spec_kitty_protocol::ipc::{DaemonStatus, Request, Response};
use spec_kitty_protocol::Paths;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exit codes and environment of the `sync` commands (appended to `--help`).
pub const SYNC_HELP: &str = "\
Exit codes:
  0  success (`status` also exits 0 when no daemon runs; see \"running\" in --json)
  1  the daemon could not be reached, started or stopped, or a file could not be written
  2  usage error

Environment:
  SPEC_KITTY_SYNC_HOME  state directory (default ~/.spec-kitty): socket, store, spool, logs
  SPEC_KITTY_SYNCD_BIN  spec-kitty-syncd to start (default: next to spec-kitty, then PATH)";

/// How long `status`/`stop`/`start` wait for the daemon.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Show the sync daemon, its queue per project, held and parked events, connection, login and spool.
    #[command(after_help = SYNC_HELP)]
    Status(StatusArgs),
    /// Start the sync daemon if it is not running (or replace an older one) and report its pid.
    #[command(after_help = SYNC_HELP)]
    Start(JsonArgs),
    /// Ask the sync daemon to finish in-flight work and exit; waits until it is gone.
    #[command(after_help = SYNC_HELP)]
    Stop(JsonArgs),
    /// Stop the sync daemon, then start it again.
    #[command(after_help = SYNC_HELP)]
    Restart(JsonArgs),
    /// Show the newest daemon log file (SPEC_KITTY_SYNC_HOME/syncd/logs/).
    #[command(after_help = SYNC_HELP)]
    Logs(LogsArgs),
    /// Install, remove or inspect the per-user service unit (systemd --user on Linux, launchd on macOS).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Send queued events to the SaaS now (`--wait`: until drained) and summarise.
    Now(crate::commands::sync::remote::NowArgs),
    /// Put events the server rejected (parked) back in the queue, to be sent again.
    #[command(after_help = SYNC_HELP)]
    RetryParked(JsonArgs),
    /// Show or set the SaaS server URL ([sync] server_url in config.toml).
    Server(crate::commands::sync::remote::ServerArgs),
    /// Check the sync health (daemon, queue, spool, login, server) and say what to do about each problem.
    #[command(after_help = SYNC_HELP)]
    Doctor(JsonArgs),
    /// Validate the events waiting to be sent (spooled files, events the server rejected).
    #[command(after_help = SYNC_HELP)]
    Diagnose(JsonArgs),
}

impl SyncCommand {
    /// Whether the command prints JSON (for error output).
    pub fn json(&self) -> bool {
        match self {
            SyncCommand::Status(a) => a.json,
            SyncCommand::Start(a)
            | SyncCommand::Stop(a)
            | SyncCommand::Restart(a)
            | SyncCommand::RetryParked(a)
            | SyncCommand::Doctor(a)
            | SyncCommand::Diagnose(a) => a.json,
            SyncCommand::Logs(_) => false,
            SyncCommand::Now(a) => a.json,
            SyncCommand::Server(a) => a.json,
            SyncCommand::Service(s) => match s {
                ServiceCommand::Install(a) | ServiceCommand::Uninstall(a) => a.json,
                ServiceCommand::Status(a) => a.json,
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Also probe the server with the saved login (up to 5 s when it does not answer).
    #[arg(short = 'c', long)]
    pub check: bool,
    /// Print the status as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new lines as they are written (Ctrl-C to stop).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// How many of the last lines to show.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: usize,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write the user service unit(s) pointing at this spec-kitty-syncd (no root needed).
    #[command(after_help = SYNC_HELP)]
    Install(JsonArgs),
    /// Remove the user service unit(s) written by `install`.
    #[command(after_help = SYNC_HELP)]
    Uninstall(JsonArgs),
    /// Say whether the user service unit is installed, and where.
    #[command(after_help = SYNC_HELP)]
    Status(JsonArgs),
}

/// Runs one `sync` subcommand.
pub fn run(out: &Out, cmd: SyncCommand) -> Result<(), CliError> {
    let paths = super::state_paths(out)?;
    match cmd {
        SyncCommand::Status(a) => status(out, &paths, a.check),
        SyncCommand::Start(_) => start(out, &paths),
        SyncCommand::Stop(_) => stop(out, &paths).map(|_| ()),
        SyncCommand::Restart(_) => {
            stop(out, &paths)?;
            start(out, &paths)
        }
        SyncCommand::Logs(a) => logs(&paths, a),
        SyncCommand::Service(ServiceCommand::Install(_)) => service_install(out, &paths),
        SyncCommand::Service(ServiceCommand::Uninstall(_)) => service_uninstall(out),
        SyncCommand::Service(ServiceCommand::Status(_)) => service_status(out),
        SyncCommand::Now(a) => crate::commands::sync::remote::now(out, a),
        SyncCommand::RetryParked(_) => retry_parked(out, &paths),
        SyncCommand::Server(a) => crate::commands::sync::remote::server(out, a),
        SyncCommand::Doctor(_) => crate::commands::sync::checks::doctor(out, &paths),
        SyncCommand::Diagnose(_) => crate::commands::sync::checks::diagnose(out, &paths),
    }
}

fn client_err(e: ClientError) -> CliError {
    CliError::io(e.to_string())
}

// ---------------------------------------------------------------- status

/// `spool/*.json` files waiting (names starting with `.` are temp files).
pub fn spool_backlog(paths: &Paths) -> u64 {
    spool_files(paths).len() as u64
}

/// The waiting spool files, sorted by name.
pub fn spool_files(paths: &Paths) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(paths.spool_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    !n.starts_with('.') && n.ends_with(".json") && e.path().is_file()
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The current project's identity and `sync.auto_start`, read without
/// writing anything (status must not backfill identity).
fn current_project() -> Option<Value> {
    let cwd = std::env::current_dir().ok()?;
    let p = project::locate(&cwd).ok()?;
    let id = identity::peek(&p);
    Some(json!({
        "root": p.root.display().to_string(),
        "uuid": id.uuid,
        "slug": id.slug,
        "auto_start": id.auto_start,
    }))
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

const OPTED_OUT: &str = "sync opted out (sync.auto_start: false): commands here never start the daemon; events go to a running daemon, else to the spool";

fn status(out: &Out, paths: &Paths, check: bool) -> Result<(), CliError> {
    let ping = check.then(|| crate::commands::sync::checks::probe(paths));
    let spool = spool_backlog(paths);
    let project = current_project();
    let opted_out = project
        .as_ref()
        .is_some_and(|p| p["auto_start"] == Value::Bool(false));
    let answer = daemon_client::request(paths, Request::Status, STATUS_TIMEOUT);
    let mut warnings = Vec::new();
    // Something answers on the socket but not usefully (wedged, another
    // protocol version): not the same as "not running".
    let mut unreachable: Option<String> = None;
    let daemon: Option<DaemonStatus> = match answer {
        Ok(Response::Status { json }) => Some(
            serde_json::from_str(&json)
                .map_err(|e| CliError::io(format!("the daemon sent an unreadable status: {e}")))?,
        ),
        Ok(Response::Error { message, .. }) => {
            unreachable = Some(format!(
                "the sync daemon runs but could not report its status: {message}"
            ));
            None
        }
        Ok(_) => {
            unreachable = Some("the sync daemon gave an answer that is not a status".into());
            None
        }
        Err(ClientError::NotRunning) => None,
        Err(e) => {
            unreachable = Some(e.to_string());
            None
        }
    };
    if let Some(d) = &daemon {
        if d.held > 0 {
            warnings.push(format!(
                "{} event(s) have no project_uuid and are held locally, never sent",
                d.held
            ));
        }
        if d.parked_total > 0 {
            warnings.push(format!(
                "{} event(s) were rejected by the server and are parked; `spec-kitty sync retry-parked` sends them again",
                d.parked_total
            ));
        }
    }
    // Nothing listens: say so only if nothing blocks the socket path
    // either; the daemon cannot bind over another kind of file.
    let blocked = if daemon.is_none() && unreachable.is_none() {
        blocked_socket(&paths.socket())
    } else {
        None
    };
    if out.json {
        out.json(&json!({
            "running": daemon.is_some(),
            "unreachable": unreachable,
            "blocked": blocked,
            "socket": paths.socket().display().to_string(),
            "daemon": daemon,
            "spool_backlog": spool,
            "spool_dir": paths.spool_dir().display().to_string(),
            "project": project,
            "opted_out": opted_out,
            "warnings": warnings,
            "check": ping.as_ref().map(crate::commands::sync::checks::probe_json),
        }));
        return Ok(());
    }
    let row = |k: &str, v: String| out.line(&format!("{:<14}{v}", k));
    match &daemon {
        None => match (&unreachable, &blocked) {
            (Some(e), _) => row("Daemon", format!("not usable: {e}")),
            (None, Some(b)) => row("Daemon", format!("cannot start: {b}")),
            (None, None) => row(
                "Daemon",
                format!(
                    "not running (nothing answers on {})",
                    paths.socket().display()
                ),
            ),
        },
        Some(d) => {
            row(
                "Daemon",
                format!(
                    "running, pid {}, spec-kitty-syncd {} (protocol {}), mode {}, up {}",
                    d.pid,
                    d.version,
                    d.protocol,
                    d.mode,
                    age(d.uptime_secs)
                ),
            );
            row("Socket", d.socket.clone());
            row(
                "Queue",
                format!(
                    "{} pending{}; Lamport clock {}",
                    d.queue_depth,
                    d.oldest_pending_age_secs
                        .map_or(String::new(), |a| format!(", oldest {} old", age(a))),
                    d.lamport_clock
                ),
            );
            if d.projects.is_empty() {
                row("Projects", "none yet".into());
            } else {
                row("Projects", String::new());
                let w = d
                    .projects
                    .iter()
                    .map(|p| p.project_slug.as_deref().unwrap_or("?").len())
                    .max()
                    .unwrap_or(0);
                for p in &d.projects {
                    out.line(&format!(
                        "  {:<w$}  {:>6} pending  {:>6} sent  {}",
                        p.project_slug.as_deref().unwrap_or("?"),
                        p.pending,
                        p.sent,
                        out.dim(&p.project_uuid)
                    ));
                }
            }
            row(
                "Held",
                if d.held == 0 {
                    "0".into()
                } else {
                    format!("{} (no project_uuid: kept locally, never sent)", d.held)
                },
            );
            row("Parked", d.parked_total.to_string());
            for p in &d.parked {
                out.line(&format!(
                    "  {} {} {}: {} (attempts {})",
                    p.event_id,
                    p.event_type,
                    p.project_slug.as_deref().unwrap_or("?"),
                    p.reason,
                    p.attempts
                ));
            }
            let c = &d.connection;
            let mut conn = c.state.to_string();
            if let Some(u) = &c.server_url {
                conn.push_str(&format!(" to {u}"));
            }
            if let Some(r) = &c.reason {
                conn.push_str(&format!(" ({r})"));
            }
            if let Some(n) = c.next_retry_secs {
                conn.push_str(&format!(", retry in {n}s"));
            }
            row("Connection", conn);
            if let Some(e) = &c.last_error {
                row("Last error", e.clone());
            }
            let a = &d.auth;
            let mut auth = if a.logged_in {
                format!(
                    "logged in{}{}",
                    a.username
                        .as_ref()
                        .map_or(String::new(), |u| format!(" as {u}")),
                    a.team_slug
                        .as_ref()
                        .map_or(String::new(), |t| format!(", team {t}"))
                )
            } else {
                "not logged in".to_string()
            };
            if let Some(h) = &a.hint {
                auth.push_str(&format!(" ({h})"));
            }
            row("Auth", auth);
        }
    }
    row(
        "Spool",
        format!(
            "{spool} event file(s) waiting in {}",
            paths.spool_dir().display()
        ),
    );
    match &project {
        Some(p) if opted_out => row(
            "This project",
            format!("{}: {OPTED_OUT}", p["slug"].as_str().unwrap_or("?")),
        ),
        Some(p) => row(
            "This project",
            format!(
                "{}: sync.auto_start true (commands start the daemon when needed)",
                p["slug"].as_str().unwrap_or("?")
            ),
        ),
        None => {}
    }
    if let Some(p) = &ping {
        row(
            "Ping",
            format!("{} ({}): {}", p.state, p.server_url, p.note),
        );
    }
    for w in &warnings {
        out.warn(w);
    }
    if daemon.is_none() && unreachable.is_none() && blocked.is_none() && !opted_out {
        out.line(&out.dim(
            "The daemon starts with the next command that emits an event, or with `spec-kitty sync start`.",
        ));
    }
    Ok(())
}

/// Why the daemon cannot bind `socket`: something other than a socket
/// (a regular file, a directory, a link) sits at that path, and the daemon
/// never removes anything but a stale socket.
fn blocked_socket(socket: &Path) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::symlink_metadata(socket).ok()?;
    let ft = meta.file_type();
    if ft.is_socket() {
        return None;
    }
    let kind = if ft.is_symlink() {
        "a symlink"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "not a socket"
    };
    Some(format!(
        "{} is {kind}, not a socket; the daemon will not remove it, so every command spools until you move it away",
        socket.display()
    ))
}

// -------------------------------------------------------- retry-parked

/// `spec-kitty sync retry-parked`: starts the daemon if needed (parked
/// events live in its store) and asks it to queue every parked event again.
fn retry_parked(out: &Out, paths: &Paths) -> Result<(), CliError> {
    daemon_client::launch::start(paths, START_TIMEOUT).map_err(client_err)?;
    let count = match daemon_client::request(paths, Request::RetryParked, STATUS_TIMEOUT)
        .map_err(client_err)?
    {
        Response::Requeued { count } => count,
        Response::Error { message, .. } => {
            return Err(CliError::io(format!(
                "the sync daemon could not re-queue parked events: {message}"
            )))
        }
        _ => {
            return Err(CliError::io(
                "the sync daemon gave an unexpected answer to retry-parked".to_string(),
            ))
        }
    };
    out.json(&json!({"requeued": count}));
    out.line(&if count == 0 {
        "No parked events.".to_string()
    } else {
        format!("Re-queued {count} parked event(s); the daemon sends them again now.")
    });
    Ok(())
}

// ------------------------------------------------------- start/stop

fn start(out: &Out, paths: &Paths) -> Result<(), CliError> {
    let s = daemon_client::launch::start(paths, START_TIMEOUT).map_err(client_err)?;
    // Anything a fallback left behind goes in now.
    let ingest = if daemon_client::request(paths, Request::IngestSpool, STATUS_TIMEOUT).is_ok() {
        "ok"
    } else {
        "failed"
    };
    out.json(&json!({
        "running": true,
        "started": !s.already,
        "pid": s.welcome.pid,
        "version": s.welcome.version,
        "socket": paths.socket().display().to_string(),
        "spool_ingest": ingest,
    }));
    out.line(&format!(
        "Sync daemon {} (pid {}, spec-kitty-syncd {}, socket {})",
        if s.already {
            "already running"
        } else {
            "started and ready"
        },
        s.welcome.pid,
        s.welcome.version,
        paths.socket().display()
    ));
    Ok(())
}

fn stop(out: &Out, paths: &Paths) -> Result<Option<u32>, CliError> {
    let reason = format!("spec-kitty sync stop (pid {})", std::process::id());
    match daemon_client::launch::stop(paths, &reason, STOP_TIMEOUT) {
        Ok(Some(w)) => {
            out.json(&json!({"stopped": true, "pid": w.pid}));
            out.line(&format!("Sync daemon stopped (pid {})", w.pid));
            Ok(Some(w.pid))
        }
        Ok(None) => {
            out.json(&json!({"stopped": false, "running": false}));
            out.line("Sync daemon was not running");
            Ok(None)
        }
        Err(e @ ClientError::DaemonNewer { .. }) => Err(CliError::io(format!(
            "{e}; this spec-kitty does not stop a newer daemon (use the newer spec-kitty, or kill its pid)"
        ))),
        Err(e) => Err(client_err(e)),
    }
}

// ---------------------------------------------------------------- logs

/// The newest `syncd*` file in the log directory (daily rotation).
pub fn newest_log(paths: &Paths) -> Option<PathBuf> {
    std::fs::read_dir(paths.log_dir())
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("syncd") && e.path().is_file())
        .max_by_key(|e| (e.metadata().and_then(|m| m.modified()).ok(), e.file_name()))
        .map(|e| e.path())
}

fn tail(text: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    let t = text.strip_suffix('\n').unwrap_or(text);
    match t.rmatch_indices('\n').nth(n - 1) {
        Some((i, _)) => &text[i + 1..],
        None => text,
    }
}

fn logs(paths: &Paths, a: LogsArgs) -> Result<(), CliError> {
    let Some(mut file) = newest_log(paths) else {
        return Err(CliError::io(format!(
            "no daemon log files in {} (the daemon writes them once it has run)",
            paths.log_dir().display()
        )));
    };
    let bytes = std::fs::read(&file).map_err(|e| CliError::io_at("read", &file, &e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(tail(&text, a.lines).as_bytes());
    let _ = stdout.flush();
    if !a.follow {
        return Ok(());
    }
    let mut pos = bytes.len() as u64;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        if let Some(newer) = newest_log(paths).filter(|n| *n != file) {
            file = newer;
            pos = 0;
        }
        let Ok(mut f) = std::fs::File::open(&file) else {
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < pos {
            pos = 0; // truncated
        }
        if len > pos && f.seek(SeekFrom::Start(pos)).is_ok() {
            let mut buf = Vec::new();
            if f.read_to_end(&mut buf).is_ok() {
                pos += buf.len() as u64;
                if stdout.write_all(&buf).and_then(|_| stdout.flush()).is_err() {
                    return Ok(()); // reader went away (e.g. `| head`)
                }
            }
        }
    }
}

// ------------------------------------------------------------- service

const SYSTEMD_SERVICE: &str = include_str!("../../../../systemd/spec-kitty-syncd.service");
const SYSTEMD_SOCKET: &str = include_str!("../../../../systemd/spec-kitty-syncd.socket");
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
const LAUNCHD_PLIST: &str =
    include_str!("../../../../packaging/launchd/dev.spec-kitty.syncd.plist");

/// One file `service install` writes.
struct UnitFile {
    path: PathBuf,
    text: String,
}

fn home() -> Result<PathBuf, CliError> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| CliError::io("HOME is not set; cannot find the user service directory"))
}

/// Whether `paths` is the default root (`$HOME/.spec-kitty`); otherwise
/// the unit must carry `SPEC_KITTY_SYNC_HOME`.
fn custom_home(paths: &Paths) -> Option<String> {
    let default = home().ok()?.join(".spec-kitty");
    (paths.root() != default).then(|| paths.root().display().to_string())
}

/// The user unit directory: `$XDG_CONFIG_HOME/systemd/user`, else
/// `~/.config/systemd/user`.
#[cfg(not(target_os = "macos"))]
fn unit_dir() -> Result<PathBuf, CliError> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) if Path::new(&x).is_absolute() => PathBuf::from(x),
        _ => home()?.join(".config"),
    };
    Ok(base.join("systemd").join("user"))
}

#[cfg(target_os = "macos")]
fn unit_dir() -> Result<PathBuf, CliError> {
    Ok(home()?.join("Library").join("LaunchAgents"))
}

#[cfg(not(target_os = "macos"))]
fn unit_names() -> [&'static str; 2] {
    ["spec-kitty-syncd.service", "spec-kitty-syncd.socket"]
}

#[cfg(target_os = "macos")]
fn unit_names() -> [&'static str; 1] {
    ["dev.spec-kitty.syncd.plist"]
}

/// systemd quoting for one word of a command line or an assignment.
#[cfg_attr(target_os = "macos", allow(dead_code))]
fn sd_quote(s: &str) -> String {
    if s.chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s.to_string()
    }
}

#[cfg(not(target_os = "macos"))]
fn render_units(paths: &Paths, syncd: &Path) -> Result<Vec<UnitFile>, CliError> {
    let dir = unit_dir()?;
    let mut service = SYSTEMD_SERVICE.replace("@SYNCD@", &sd_quote(&syncd.display().to_string()));
    if let Some(h) = custom_home(paths) {
        service = service.replace(
            "\nExecStart=",
            &format!(
                "\nEnvironment={}\nExecStart=",
                sd_quote(&format!("SPEC_KITTY_SYNC_HOME={h}"))
            ),
        );
    }
    let socket = SYSTEMD_SOCKET.replace("@SOCKET@", &paths.socket().display().to_string());
    Ok(vec![
        UnitFile {
            path: dir.join("spec-kitty-syncd.service"),
            text: service,
        },
        UnitFile {
            path: dir.join("spec-kitty-syncd.socket"),
            text: socket,
        },
    ])
}

#[cfg(target_os = "macos")]
fn render_units(paths: &Paths, syncd: &Path) -> Result<Vec<UnitFile>, CliError> {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut text = LAUNCHD_PLIST.replace("@SYNCD@", &esc(&syncd.display().to_string()));
    if let Some(h) = custom_home(paths) {
        text = text.replace(
            "  <key>RunAtLoad</key>",
            &format!(
                "  <key>EnvironmentVariables</key>\n  <dict>\n    <key>SPEC_KITTY_SYNC_HOME</key>\n    <string>{}</string>\n  </dict>\n  <key>RunAtLoad</key>",
                esc(&h)
            ),
        );
    }
    Ok(vec![UnitFile {
        path: unit_dir()?.join("dev.spec-kitty.syncd.plist"),
        text,
    }])
}

#[cfg(not(target_os = "macos"))]
const ENABLE_HINT: &str =
    "systemctl --user daemon-reload && systemctl --user enable --now spec-kitty-syncd.socket spec-kitty-syncd.service";
#[cfg(target_os = "macos")]
const ENABLE_HINT: &str =
    "launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/dev.spec-kitty.syncd.plist";
#[cfg(not(target_os = "macos"))]
const DISABLE_HINT: &str =
    "systemctl --user disable --now spec-kitty-syncd.socket spec-kitty-syncd.service";
#[cfg(target_os = "macos")]
const DISABLE_HINT: &str = "launchctl bootout gui/$(id -u)/dev.spec-kitty.syncd";

fn service_install(out: &Out, paths: &Paths) -> Result<(), CliError> {
    let syncd = daemon_client::launch::locate_syncd().map_err(client_err)?;
    let syncd = std::fs::canonicalize(&syncd).unwrap_or(syncd);
    let units = render_units(paths, &syncd)?;
    for u in &units {
        if let Some(dir) = u.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| CliError::io_at("create", dir, &e))?;
        }
        crate::fsutil::write_atomic(&u.path, u.text.as_bytes())
            .map_err(|e| CliError::io_at("write", &u.path, &e))?;
    }
    let files: Vec<String> = units.iter().map(|u| u.path.display().to_string()).collect();
    out.json(&json!({"installed": true, "files": files, "syncd": syncd.display().to_string(), "enable": ENABLE_HINT}));
    for f in &files {
        out.line(&format!("Wrote {f}"));
    }
    out.line(&format!("ExecStart: {} run", syncd.display()));
    out.line(&format!("To enable it now, run:\n  {ENABLE_HINT}"));
    Ok(())
}

fn service_uninstall(out: &Out) -> Result<(), CliError> {
    let dir = unit_dir()?;
    let mut removed = Vec::new();
    for n in unit_names() {
        let p = dir.join(n);
        match std::fs::remove_file(&p) {
            Ok(()) => removed.push(p.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CliError::io_at("remove", &p, &e)),
        }
    }
    out.json(&json!({"removed": removed, "disable": DISABLE_HINT}));
    if removed.is_empty() {
        out.line("No spec-kitty-syncd service unit was installed");
    } else {
        for r in &removed {
            out.line(&format!("Removed {r}"));
        }
        out.line(&format!(
            "If it was enabled, stop it with:\n  {DISABLE_HINT}"
        ));
    }
    Ok(())
}

fn service_status(out: &Out) -> Result<(), CliError> {
    let dir = unit_dir()?;
    let files: Vec<Value> = unit_names()
        .iter()
        .map(|n| {
            let p = dir.join(n);
            let exec = std::fs::read_to_string(&p).ok().and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("ExecStart="))
                    .map(|l| l.trim_start_matches("ExecStart=").to_string())
            });
            json!({"path": p.display().to_string(), "installed": p.is_file(), "exec_start": exec})
        })
        .collect();
    let installed = files.iter().any(|f| f["installed"] == Value::Bool(true));
    out.json(&json!({"installed": installed, "files": files}));
    for f in &files {
        out.line(&format!(
            "{:<13}{}",
            if f["installed"] == Value::Bool(true) {
                "installed"
            } else {
                "not installed"
            },
            f["path"].as_str().unwrap_or("")
        ));
        if let Some(e) = f["exec_start"].as_str() {
            out.line(&format!("{:<13}ExecStart={e}", ""));
        }
    }
    if !installed {
        out.line("Install it with `spec-kitty sync service install`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a\n", 5), "a\n");
        assert_eq!(tail("a\nb\n", 0), "");
    }

    #[test]
    fn ages_read_well() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(125), "2m05s");
        assert_eq!(age(7260), "2h01m");
    }

    #[test]
    fn quoting_for_systemd() {
        assert_eq!(sd_quote("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(sd_quote("/a b/x"), "\"/a b/x\"");
    }
}
