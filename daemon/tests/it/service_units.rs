//! The service units in `systemd/` and `packaging/launchd/`, and the systemd
//! integration they rely on (Type=notify readiness, socket activation),
//! exercised with the real daemon binary.

use crate::common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|f| f.is_file())
    })
}

#[test]
fn systemd_units_verify() {
    let Some(analyze) = which("systemd-analyze") else {
        spec_kitty_e2e::skip(
            "systemd_units_verify",
            "systemd-analyze is not installed (apt-get install systemd)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let service = std::fs::read_to_string(repo().join("systemd/spec-kitty-syncd.service")).unwrap();
    let socket = std::fs::read_to_string(repo().join("systemd/spec-kitty-syncd.socket")).unwrap();
    assert!(service.contains("Type=notify") && service.contains("@SYNCD@ run"));
    assert!(socket.contains("ListenStream=@SOCKET@"));
    let sock_path = dir.path().join("run/syncd.sock");
    std::fs::write(
        dir.path().join("spec-kitty-syncd.service"),
        service.replace("@SYNCD@", BIN),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("spec-kitty-syncd.socket"),
        socket.replace("@SOCKET@", sock_path.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(dir.path().join("spec-kitty-syncd.socket"))
        .arg(dir.path().join("spec-kitty-syncd.service"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn launchd_plist_parses() {
    let path = repo().join("packaging/launchd/dev.spec-kitty.syncd.plist");
    let value = plist::Value::from_file(&path).unwrap();
    let dict = value.as_dictionary().expect("top level is a dict");
    assert_eq!(
        dict.get("Label").and_then(|v| v.as_string()),
        Some("dev.spec-kitty.syncd")
    );
    let args: Vec<&str> = dict
        .get("ProgramArguments")
        .and_then(|v| v.as_array())
        .unwrap()
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    assert_eq!(args, ["@SYNCD@", "run"]);
}

#[test]
fn type_notify_readiness_is_sent() {
    let home = Home::new();
    let notify_path = home.root().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(DEADLINE)).unwrap();
    let child = home
        .cmd()
        .arg("run")
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _d = Daemon {
        pid: child.id(),
        child: Some(child),
    };
    let mut buf = [0u8; 512];
    let n = notify
        .recv(&mut buf)
        .expect("a notification from the daemon");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.contains("READY=1"), "{msg}");
    // READY means serving.
    let mut c = Client::connect(&home.paths).unwrap();
    accepted(c.emit(&envelope(Some(PROJECT)).1).unwrap());
}

#[test]
fn socket_activation_uses_the_passed_listener() {
    let Some(activate) = which("systemd-socket-activate") else {
        spec_kitty_e2e::skip(
            "socket_activation_uses_the_passed_listener",
            "systemd-socket-activate is not installed (apt-get install systemd)",
        );
        return;
    };
    let home = Home::new();
    std::fs::create_dir_all(home.paths.socket_dir()).unwrap();
    let child = Command::new(activate)
        .arg("-l")
        .arg(home.paths.socket())
        .arg("-E")
        .arg(format!("SPEC_KITTY_SYNC_HOME={}", home.root().display()))
        .arg("-E")
        .arg(format!("HOME={}", home.sb.home().display()))
        .arg(BIN)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // systemd-socket-activate execs the daemon in place: same pid.
    let _d = Daemon {
        pid: child.id(),
        child: Some(child),
    };
    wait_until("the activation socket exists", || {
        home.paths.socket().exists()
    });
    let mut c = Client::connect(&home.paths).unwrap();
    let s = c.status();
    assert_eq!(
        s.mode,
        spec_kitty_protocol::ipc::DaemonMode::SocketActivated
    );
    accepted(c.emit(&envelope(Some(PROJECT)).1).unwrap());
}
