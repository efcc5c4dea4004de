//! `spec-kitty sync service install|uninstall|status`: the per-user service
//! unit (systemd `--user` on Linux, a launchd agent on macOS), rendered from
//! the shipped templates to point at this `spec-kitty-syncd`.

use super::lifecycle::client_err;
use crate::daemon_client;
use crate::error::CliError;
use crate::output::Out;
use serde_json::{json, Value};
use spec_kitty_protocol::Paths;
use std::path::{Path, PathBuf};

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

pub(super) fn install(out: &Out, paths: &Paths) -> Result<(), CliError> {
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

pub(super) fn uninstall(out: &Out) -> Result<(), CliError> {
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

pub(super) fn status(out: &Out) -> Result<(), CliError> {
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
    fn quoting_for_systemd() {
        assert_eq!(sd_quote("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(sd_quote("/a b/x"), "\"/a b/x\"");
    }
}
