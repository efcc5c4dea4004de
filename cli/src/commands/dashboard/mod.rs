//! `spec-kitty dashboard [--port N] [--open] [--kill] [--json]`: the
//! project's kanban in a browser, live, with what sync is doing.
//!
//! The command finds the project's running dashboard through its record
//! ([`record`], 2.1.3's `.kittify/.dashboard`) and a health check, or starts
//! one: the same binary as `spec-kitty dashboard --serve`, detached in its
//! own session, which prints one `READY port=N pid=P` line once its board is
//! built and then serves in the background ([`server`]). `--kill` asks it to
//! stop with the record's token (falling back to SIGTERM of the recorded
//! pid, only when the health check proved that pid is this dashboard) and
//! clears the record. Starting and stopping hold a lock on the record file
//! only, so two commands never start two dashboards and no other command
//! waits.
//!
//! - [`board`]: the features, lanes and error cards read from the files;
//! - [`markdown`]: spec/plan/tasks rendered readable, escaped;
//! - [`sync_panel`]: the daemon's status for this project;
//! - `assets/`: the page (HTML, JS, CSS, embedded; no network).

pub mod board;
pub mod markdown;
pub mod record;
pub mod server;
pub mod sync_panel;

use crate::cli::DashboardArgs;
use crate::error::CliError;
use crate::output::Out;
use crate::project::{self, Project};
use record::Record;
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(20);

pub fn run(out: &Out, a: DashboardArgs) -> Result<(), CliError> {
    let project = project::locate(&project::cwd()?)?;
    if a.serve {
        return serve(&project, &a);
    }
    let _lock = lock_record(&project)?;
    if a.kill {
        let (stopped, message) = stop(&project);
        out.json(&json!({"stopped": stopped, "message": message}));
        if stopped {
            out.line(&out.green(&message));
        } else {
            out.warn(&message);
        }
        return Ok(());
    }
    let running = ensure_running(&project, a.port)?;
    let url = server::url(running.port);
    out.json(&json!({
        "url": url,
        "port": running.port,
        "pid": running.pid,
        "started": running.started,
        "project_root": project.root.display().to_string(),
    }));
    out.line(&out.bold("Spec Kitty Dashboard"));
    out.line(&format!("  Project Root: {}", project.root.display()));
    out.line(&format!("  URL: {}", out.cyan(&url)));
    out.line(&format!("  Port: {}", running.port));
    if let Some(p) = a.port.filter(|p| *p != running.port) {
        out.line(&format!(
            "  Requested port {p} was unavailable; using {} instead.",
            running.port
        ));
    }
    out.line(&if running.started {
        format!("  Status: started a new dashboard on port {}", running.port)
    } else {
        format!(
            "  Status: dashboard already running on port {}",
            running.port
        )
    });
    if a.open {
        match open_browser(&url) {
            Ok(()) => out.line("Opening the dashboard in your browser..."),
            Err(e) => out.warn(&format!(
                "could not open a browser ({e}); open {url} yourself"
            )),
        }
    } else {
        out.line(&out.dim(&format!("Open {url} in a browser (or use --open).")));
    }
    Ok(())
}

/// Takes a lock on the record file (created empty when missing; an empty
/// record is no record). Both start and stop run under it. The link rule
/// applies: a record planted as a link out of the repository is refused
/// before anything is created or opened through it.
fn lock_record(project: &Project) -> Result<crate::fsutil::Lock, CliError> {
    let path = record::path(&project.root);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| CliError::io_at("create", dir, &e))?;
    }
    let real = crate::fsutil::resolve_in_repo(&project.root, &path)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&real)
        .map_err(|e| CliError::io_at("open", &path, &e))?;
    crate::fsutil::lock_path(&real).map_err(|e| CliError::io_at("lock", &path, &e))
}

struct Running {
    port: u16,
    pid: Option<u32>,
    started: bool,
}

/// The recorded dashboard if it answers for this project with its token,
/// else a new one (the stale record replaced).
fn ensure_running(project: &Project, preferred: Option<u16>) -> Result<Running, CliError> {
    if let Some(rec) = record::read(&project.root) {
        if let Some(port) = rec.port {
            if record::healthy(port, &project.root, rec.token.as_deref()) {
                return Ok(Running {
                    port,
                    pid: rec.pid,
                    started: false,
                });
            }
        }
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    let (port, pid) = start(project, preferred, &token)?;
    let rec = Record {
        url: Some(server::url(port)),
        port: Some(port),
        token: Some(token),
        pid: Some(pid),
    };
    record::write(&project.root, &rec)?;
    Ok(Running {
        port,
        pid: Some(pid),
        started: true,
    })
}

/// Runs `spec-kitty dashboard --serve` detached and reads its start-up
/// line within [`START_TIMEOUT`].
fn start(project: &Project, preferred: Option<u16>, token: &str) -> Result<(u16, u32), CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::io(format!("cannot find the spec-kitty executable: {e}")))?;
    let mut cmd = Command::new(&exe);
    cmd.args(["dashboard", "--serve", "--token", token])
        .current_dir(&project.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group: Ctrl-C in this terminal does not stop it.
        .process_group(0);
    if let Some(p) = preferred {
        cmd.args(["--port", &p.to_string()]);
    }
    if let Ok(idle) = std::env::var("SPEC_KITTY_DASHBOARD_IDLE_SECS") {
        cmd.args(["--idle-exit-secs", idle.trim()]);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| CliError::io(format!("cannot run {}: {e}", exe.display())))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let t0 = Instant::now();
    let line = match crate::daemon_client::launch::first_line_within(stdout, START_TIMEOUT) {
        Some(Ok(line)) => line,
        Some(Err(e)) => return Err(CliError::io(format!("dashboard start-up: {e}"))),
        None => {
            let _ = child.kill();
            return Err(CliError::io(format!(
                "the dashboard did not start within {:?}",
                t0.elapsed()
            )));
        }
    };
    let line = line.trim();
    if let Some(reason) = line.strip_prefix("ERROR") {
        let _ = child.wait();
        return Err(CliError::io(format!(
            "the dashboard could not start: {}",
            reason.trim()
        )));
    }
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
            .and_then(|v| v.parse::<u32>().ok())
    };
    match (line.starts_with("READY"), field("port"), field("pid")) {
        (true, Some(port), Some(pid)) if port <= u16::MAX as u32 => Ok((port as u16, pid)),
        _ => {
            let status = child.try_wait().ok().flatten();
            Err(CliError::io(format!(
                "the dashboard exited during start-up{}",
                status.map_or(String::new(), |s| format!(" ({s})"))
            )))
        }
    }
}

/// The background process: detach, bind, build the board, say READY, serve.
fn serve(project: &Project, a: &DashboardArgs) -> Result<(), CliError> {
    // Its own session: closing the terminal does not hang it up.
    let _ = rustix::process::setsid();
    let token = a
        .token
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let listener = match server::bind(a.port) {
        Ok(l) => l,
        Err(e) => {
            crate::output::print_line(&format!("ERROR {e}"));
            return Err(CliError::io(format!("cannot open a port: {e}")));
        }
    };
    server::run(
        project.clone(),
        listener,
        token,
        Duration::from_secs(a.idle_exit_secs),
        |port| crate::output::print_line(&format!("READY port={port} pid={}", std::process::id())),
    )
    .map_err(|e| CliError::io(format!("dashboard server: {e}")))
}

/// Stops the recorded dashboard; 2.1.3's outcomes and messages.
fn stop(project: &Project) -> (bool, String) {
    let root = &project.root;
    let Some(rec) = record::read(root).filter(|r| *r != Record::default()) else {
        record::clear(root);
        return (false, "No dashboard metadata found.".into());
    };
    let Some(port) = rec.port else {
        record::clear(root);
        return (
            false,
            "Dashboard metadata was invalid and has been cleared.".into(),
        );
    };
    if !record::healthy(port, root, rec.token.as_deref()) {
        record::clear(root);
        return (
            false,
            "Dashboard was already stopped. Metadata has been cleared.".into(),
        );
    }
    let query = rec
        .token
        .as_deref()
        .map_or(String::new(), |t| format!("?token={t}"));
    let asked = matches!(
        record::http_get(
            port,
            &format!("/api/shutdown{query}"),
            Duration::from_secs(1)
        ),
        Some((200, _))
    );
    if !asked {
        // It answered the health check with our token, so the pid of the
        // record is that process.
        if let Some(pid) = rec.pid {
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let gone = rec
            .pid
            .is_none_or(|p| !crate::daemon_client::launch::alive(p));
        if gone && !record::healthy(port, root, rec.token.as_deref()) {
            record::clear(root);
            return (
                true,
                format!("Dashboard stopped and metadata cleared (port {port})."),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (
        false,
        format!("Dashboard did not stop within 5 seconds (port {port})."),
    )
}

/// Hands the URL to the desktop's opener, without waiting for it.
fn open_browser(url: &str) -> std::io::Result<()> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(|_| ())
}
