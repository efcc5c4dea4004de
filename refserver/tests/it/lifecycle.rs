//! Start-up line, `--help`, clean shutdown on SIGTERM, and state that
//! survives a restart on the same `--db` file.

use crate::common;

use std::process::Command;

use common::{simple, Frame, Server};
use serde_json::json;

#[test]
fn help_documents_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_spec-kitty-refserver"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--port",
        "--db",
        "--user",
        "--users-file",
        "--project",
        "--access-lifetime",
        "--refresh-lifetime",
        "--ws-token-lifetime",
        "--ping-interval-ms",
        "--max-missed-pongs",
        "--legacy-ws",
        "--fail-next",
        "--fail-percent",
        "--fail-status",
        "--delay-ms",
        "--ws-drop-after-frames",
        "--reject-all",
        "--refuse-connections-ms",
        "--verbose",
        "--tls",
        "--ca-out",
        "--cert",
        "--key",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn bad_flags_fail_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_spec-kitty-refserver"))
        .args(["--port", "0", "--user", "just-a-name"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no listening line");
    assert!(String::from_utf8_lossy(&out.stderr).contains("USER:PASSWORD:TEAM"));
}

#[test]
fn sigterm_closes_websockets_cleanly_and_exits_zero() {
    let mut server = Server::start(&["--user", "alice:secret:team-a"]);
    let token = server.access("alice", "secret");
    let mut ws = server.ws(&token);
    assert_eq!(ws.json()["type"], "snapshot");
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    match ws.next() {
        Frame::Closed(code) => assert_eq!(code, Some(1001), "going away"),
        Frame::Json(v) => panic!("unexpected frame {v}"),
    }
}

#[test]
fn users_file_and_db_file_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ref.db");
    let users = dir.path().join("users");
    std::fs::write(&users, "# accounts\nalice:secret:team-a\n\nbob:pw:team-b\n").unwrap();
    let args = [
        "--db",
        db.to_str().unwrap(),
        "--users-file",
        users.to_str().unwrap(),
    ];
    let mut server = Server::start(&args);
    let login = server.login("bob", "pw");
    assert_eq!(login["team_slug"], "team-b");
    let token = login["access"].as_str().unwrap().to_string();
    assert_eq!(
        server.batch_gzip(&token, &json!({"events": [simple(1)]})).0,
        200
    );
    assert!(server.terminate().success());
    // Same port and same file: to a client this is a server restart.
    let port = server.port.to_string();
    drop(server);
    let mut again = args.to_vec();
    again.extend(["--port", port.as_str()]);
    let server = Server::start(&again);
    assert_eq!(server.port.to_string(), port);
    // The session survives the restart, as with a real SaaS.
    let (status, body) = server.batch_gzip(&token, &json!({"events": [simple(1), simple(2)]}));
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["status"], "duplicate");
    assert_eq!(body["results"][1]["status"], "success");
    let (_, projects) = server.get("/api/v1/projects/");
    assert_eq!(
        projects["projects"][0]["event_count"], 2,
        "view rebuilt from the file"
    );
    assert_eq!(projects["projects"][0]["team_slug"], "team-b");
}
