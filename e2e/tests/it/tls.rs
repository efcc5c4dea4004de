//! End to end over TLS, the path real users take: the reference server
//! with `--tls` (a throw-away CA), the real CLI and the real daemon trusting
//! that CA through `SSL_CERT_FILE` — login, real-time delivery over wss, the
//! security checks (0600 credentials, no token in any output) — and a
//! server whose certificate comes from another CA refused by both the
//! CLI's login and the daemon, with the events kept.

use serde_json::Value;
use spec_kitty_e2e::{wait_for, RefServer, Sandbox};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

const USER: &str = "alice:secret:team-a";

fn tls_server(ca: &Path) -> RefServer {
    let ca = ca.to_str().expect("UTF-8 temp path");
    let rs = RefServer::start(&["--user", USER, "--tls", "--ca-out", ca]);
    assert!(rs.base.starts_with("https://127.0.0.1:"), "{}", rs.base);
    rs
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn move_task(sb: &Sandbox, dir: &Path, to: &str) -> Vec<String> {
    let o = sb.sk(
        dir,
        &["agent", "tasks", "move-task", "WP01", "--to", to, "--json"],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect()
}

fn daemon_status(sb: &Sandbox) -> Value {
    let o = sb.sk(sb.root(), &["sync", "status", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["daemon"].clone()
}

fn stored_ids(rs: &RefServer) -> Vec<String> {
    rs.all_events()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn login_and_delivery_over_https_and_wss_with_the_ca_from_ssl_cert_file() {
    let mut sb = Sandbox::new();
    let ca = sb.root().join("ca.pem");
    let rs = tls_server(&ca);
    sb.set_env("SSL_CERT_FILE", &ca);
    let login = sb.login(&rs.base, "alice", "secret");
    assert!(login.status.success(), "login: {}", text(&login));
    let dir = sb.project("alpha", "first-feature");
    let ids = move_task(&sb, &dir, "doing");
    assert_eq!(ids.len(), 1);
    let ev = wait_for("the event stored at the server", || {
        let (_, body) = rs.get("/api/v1/events/?limit=100000");
        body["events"]
            .as_array()?
            .iter()
            .find(|e| e["event_id"] == ids[0].as_str())
            .cloned()
    });
    assert_eq!(ev["received_via"], "ws", "real time goes over wss: {ev}");
    assert_eq!(ev["envelope"]["team_slug"], "team-a", "{ev}");
    let st = daemon_status(&sb);
    assert_eq!(st["connection"]["state"], "connected", "{st}");
    assert!(
        st["connection"]["detail"].to_string().contains("wss://")
            || st["connection"]["reason"].to_string().contains("wss://"),
        "the WebSocket is wss: {st}"
    );

    // The security checks hold over TLS too: 0600 credentials, and no
    // token in the CLI's output or the daemon's log.
    let creds_path = sb.paths().credentials();
    let mode = std::fs::metadata(&creds_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", creds_path.display());
    let creds = spec_kitty_protocol::credentials::read(&sb.paths())
        .unwrap()
        .expect("logged in");
    let tokens = [creds.access.unwrap(), creds.refresh.unwrap()];
    let outputs = format!("{}{}", text(&login), sb.daemon_log());
    for t in &tokens {
        assert!(t.len() > 16, "a real token");
        assert!(
            !outputs.contains(t.as_str()),
            "a token leaked into the output or log"
        );
    }
}

#[test]
fn a_certificate_from_another_ca_is_refused_by_login_and_by_the_daemon() {
    let mut sb = Sandbox::new();
    let ca = sb.root().join("ca.pem");
    let other_ca = sb.root().join("other-ca.pem");
    let rs = tls_server(&ca);
    // A second server only to get a CA that did not sign the first one.
    let other = tls_server(&other_ca);
    drop(other);
    let host = format!("127.0.0.1:{}", rs.port);

    sb.set_env("SSL_CERT_FILE", &other_ca);
    let refused = sb.login(&rs.base, "alice", "secret");
    assert!(!refused.status.success(), "login must be refused");
    let msg = text(&refused);
    assert!(
        msg.contains("unknown authority") && msg.contains(&host),
        "the refusal names the host and the reason: {msg}"
    );
    assert!(!sb.paths().credentials().exists(), "nothing saved");

    // Logged in while trusting the right CA, then the daemon is started
    // trusting the wrong one: it refuses the server and keeps the events.
    sb.set_env("SSL_CERT_FILE", &ca);
    let ok = sb.login(&rs.base, "alice", "secret");
    assert!(ok.status.success(), "login: {}", text(&ok));
    sb.stop_daemon();
    sb.set_env("SSL_CERT_FILE", &other_ca);
    let dir = sb.project("alpha", "first-feature");
    let ids = move_task(&sb, &dir, "doing");
    assert_eq!(ids.len(), 1);
    let st = wait_for("the daemon reports the certificate refusal", || {
        let st = daemon_status(&sb);
        st["connection"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown authority"))
            .then_some(st)
    });
    let err = st["connection"]["last_error"].as_str().unwrap();
    assert!(err.contains(&host), "the error names the host: {err}");
    assert_ne!(st["queue_depth"], 0, "events stay queued: {st}");
    assert!(
        stored_ids(&rs).iter().all(|id| !ids.contains(id)),
        "nothing reached the untrusted server"
    );
}
