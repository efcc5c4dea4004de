//! End to end: events reach the SaaS (the real reference server on
//! loopback) through the real CLI and the real daemon — login, real-time
//! WebSocket delivery, queue-only while logged out, opt-out, faults
//! (restart on the same port, 500s, dropped sockets, a server that never
//! acks), token refresh and the end of a session, rejected events, and that
//! no token ever shows up in any output.

use serde_json::Value;
use spec_kitty_e2e::cmdline::move_task;
use spec_kitty_e2e::{bin, wait_for, RefServer, Sandbox};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const USER: &str = "alice:secret:team-a";

/// `spec-kitty auth login` with the password on stdin.
fn login(sb: &Sandbox, rs: &RefServer) -> Output {
    let o = sb.login(&rs.base, "alice", "secret");
    assert!(
        o.status.success(),
        "login failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The server's stored events (`/api/v1/events/`), by event id.
fn server_events(rs: &RefServer) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for e in rs.all_events() {
        // event_id is UNIQUE at the server: re-sends are bounded through
        // `assert_resends_bounded`, not here.
        out.insert(e["event_id"].as_str().unwrap().to_string(), e);
    }
    out
}

/// Event ids of a command run with `--json`.
fn event_ids(o: &Output) -> Vec<String> {
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)));
    v["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["event_id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// `sync status --json` → the daemon part.
fn daemon_status(sb: &Sandbox) -> Value {
    let o = sb.sk(sb.root(), &["sync", "status", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["daemon"].clone()
}

/// Moves WP01 of `dir` back and forth between planned and doing `n`
/// times (one event each); returns the event ids.
fn churn(sb: &Sandbox, dir: &Path, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let mut got = Vec::new();
        for to in ["doing", "planned"] {
            let o = sb.sk(
                dir,
                &["agent", "tasks", "move-task", "WP01", "--to", to, "--json"],
            );
            got = event_ids(&o);
            if !got.is_empty() {
                break; // it was not already in that lane
            }
        }
        assert_eq!(got.len(), 1, "one move, one event");
        ids.extend(got);
    }
    ids
}

fn wait_delivered(rs: &RefServer, ids: &[String]) -> BTreeMap<String, Value> {
    wait_for(
        &format!("{} event(s) stored at the server", ids.len()),
        || {
            let got = server_events(rs);
            ids.iter().all(|id| got.contains_key(id)).then_some(got)
        },
    )
}

fn control(rs: &RefServer, body: Value) {
    let (status, reply) = rs.post("/__control/faults", None, &body);
    assert_eq!(status, 200, "{reply}");
}

#[test]
fn login_then_move_task_arrives_in_real_time_with_the_team() {
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    let out = login(&sb, &rs);
    assert!(String::from_utf8_lossy(&out.stdout).contains("team-a"));
    let dir = sb.project("alpha", "first-feature");
    let ids = event_ids(&sb.sk(&dir, &move_task("WP01", "doing", &["--json"])));
    assert_eq!(ids.len(), 1);
    let got = wait_delivered(&rs, &ids);
    let e = &got[&ids[0]];
    assert_eq!(e["event_type"], "WPStatusChanged");
    assert_eq!(e["envelope"]["team_slug"], "team-a", "{e}");
    assert_eq!(e["envelope"]["payload"]["to_lane"], "in_progress");
    assert_eq!(
        e["received_via"], "ws",
        "real time goes over the WebSocket: {e}"
    );
    let st = daemon_status(&sb);
    assert_eq!(st["connection"]["state"], "connected", "{st}");
    assert_eq!(st["auth"]["logged_in"], true);
    assert_eq!(st["auth"]["team_slug"], "team-a");
    // Every event of the project got there, once.
    wait_for("queue drained", || {
        (daemon_status(&sb)["queue_depth"] == 0).then_some(())
    });
    let view = rs.projects();
    assert_eq!(view["count"], 1, "{view}");
    assert_eq!(view["projects"][0]["project_slug"], "alpha");
    assert_eq!(view["projects"][0]["team_slug"], "team-a");
    // A clean run sends each event once on the wire.
    assert_eq!(
        spec_kitty_e2e::assert_resends_bounded(&sb, &rs, 0),
        0,
        "re-sends on a clean run"
    );
}

#[test]
fn logged_out_events_queue_with_team_local_then_login_drains_them() {
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    let dir = sb.project("beta", "queued-feature");
    let mut ids = churn(&sb, &dir, 3);
    let st = daemon_status(&sb);
    assert_eq!(st["connection"]["state"], "offline", "{st}");
    assert_eq!(st["auth"]["logged_in"], false);
    assert!(st["auth"]["hint"].as_str().unwrap().contains("auth login"));
    assert!(st["queue_depth"].as_u64().unwrap() >= 5, "{st}");
    // The hint was printed once (project set-up), not on every command.
    let o = sb.sk(&dir, &move_task("WP01", "planned", &["--json"]));
    ids.extend(event_ids(&o));
    assert_eq!(ids.len(), 4);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("auth login"),
        "hint repeated within the hour"
    );
    assert!(sb.paths().login_hint_stamp().exists());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server_events(&rs).len(),
        0,
        "nothing is sent while logged out"
    );

    login(&sb, &rs);
    let got = wait_delivered(&rs, &ids);
    for id in &ids {
        assert_eq!(
            got[id]["envelope"]["team_slug"], "local",
            "queued before login"
        );
    }
    wait_for("queue drained", || {
        (daemon_status(&sb)["queue_depth"] == 0).then_some(())
    });
    // After login, new events carry the team.
    let after = churn(&sb, &dir, 1);
    let got = wait_delivered(&rs, &after);
    assert_eq!(got[&after[0]]["envelope"]["team_slug"], "team-a");
    assert_eq!(got.len(), server_events(&rs).len());
    // Logout keeps what is queued, and stamps `local` again.
    sb.sk(sb.root(), &["auth", "logout"]);
    assert!(!sb.paths().credentials().exists());
    let later = churn(&sb, &dir, 1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!server_events(&rs).contains_key(&later[0]));
    let st = daemon_status(&sb);
    assert_eq!(st["queue_depth"], 1, "{st}");
    assert_eq!(st["auth"]["logged_in"], false);
}

#[test]
fn auto_start_false_is_honoured_and_sync_now_sends_the_spool() {
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    sb.stop_daemon(); // login started none (nothing queued), but be sure
    let dir = sb.git_repo("gamma", None);
    sb.sk(&dir, &["init", "--here"]);
    let cfg = dir.join(".kittify/config.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("auto_start: true"), "{text}");
    std::fs::write(&cfg, text.replace("auto_start: true", "auto_start: false")).unwrap();
    sb.sk(&dir, &["specify", "opt-out"]);
    sb.sk(&dir, &["tasks", "add", "Only"]);
    assert_eq!(
        sb.daemon_pid(),
        None,
        "auto_start: false must not spawn a daemon"
    );
    assert_eq!(sb.spooled().len(), 2);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server_events(&rs).len(), 0);
    // An explicit `sync now --wait` starts the daemon, which sends the spool.
    let o = sb.sk(sb.root(), &["sync", "now", "--wait", "--json"]);
    let sum: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sum["remaining"], 0, "{sum}");
    assert_eq!(server_events(&rs).len(), 2);
}

#[test]
fn two_projects_land_as_two_projects_with_their_slugs() {
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    let a = sb.project("proj-one", "feature-one");
    let b = sb.project("proj-two", "feature-two");
    let mut ids = churn(&sb, &a, 1);
    ids.extend(churn(&sb, &b, 1));
    wait_delivered(&rs, &ids);
    wait_for("both projects complete", || {
        let v = rs.projects();
        (v["count"] == 2
            && v["projects"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["event_count"] == 3))
        .then_some(v)
    });
    let v = rs.projects();
    let slugs: Vec<_> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["project_slug"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(slugs, ["proj-one", "proj-two"]);
    for (p, dir) in v["projects"].as_array().unwrap().iter().zip([&a, &b]) {
        let cfg = std::fs::read_to_string(dir.join(".kittify/config.yaml")).unwrap();
        assert!(
            cfg.contains(p["project_uuid"].as_str().unwrap()),
            "project uuid of {dir:?} differs from the server's"
        );
        assert_eq!(p["features"][0]["work_packages"][0]["lane"], "in_progress");
    }
}

/// A refserver on `port` (0 = a free one) storing in the file `db`.
fn refserver_at(port: u16, db: &Path) -> RefServer {
    let port = port.to_string();
    RefServer::start(&[
        "--port",
        &port,
        "--db",
        db.to_str().unwrap(),
        "--user",
        USER,
    ])
}

#[test]
fn flapping_server_ends_with_every_event_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("server.db");
    let mut rs = refserver_at(0, &db);
    let port = rs.port;
    let sb = Sandbox::new();
    login(&sb, &rs);
    let dir = sb.project("flappy", "flap-feature");
    let mut ids = churn(&sb, &dir, 4);

    // 1. 500s on a third of the contract requests, and sockets dropped
    //    after every 3rd frame.
    control(
        &rs,
        serde_json::json!({"fail_percent": 30, "ws_drop_after_frames": 3}),
    );
    ids.extend(churn(&sb, &dir, 10));
    // 2. The server dies and comes back on the same port with its db.
    rs.kill();
    ids.extend(churn(&sb, &dir, 4));
    let rs = refserver_at(port, &db);
    // 3. A 2.x server that never acks: reconciled through batch.
    control(&rs, serde_json::json!({"clear": true, "ws_ack": false}));
    ids.extend(churn(&sb, &dir, 6));
    // Don't wait for the longest backoff: kick while waiting.
    let got = wait_for("every event at the restarted server", || {
        sb.sk(sb.root(), &["sync", "now"]);
        std::thread::sleep(Duration::from_millis(200));
        let got = server_events(&rs);
        ids.iter().all(|id| got.contains_key(id)).then_some(got)
    });
    wait_for("queue drained", || {
        (daemon_status(&sb)["queue_depth"] == 0).then_some(())
    });
    // Every event of the project (set-up included) stored exactly once.
    let all = server_events(&rs);
    assert!(
        all.len() >= ids.len() + 2,
        "{} < {}",
        all.len(),
        ids.len() + 2
    );
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    for id in &ids {
        assert!(got.contains_key(id), "missing {id}");
    }
    let (_, stats) = rs.get("/__control/stats");
    assert!(
        stats["batch_events_duplicate"].as_u64().unwrap() > 0
            || stats["ws_events_duplicate"].as_u64().unwrap() > 0,
        "no re-delivery was ever needed? {stats}"
    );
    spec_kitty_e2e::assert_resends_bounded(&sb, &rs, 0);
    let view = rs.projects();
    let wp = &view["projects"][0]["features"][0]["work_packages"][0];
    assert_eq!(
        wp["lane"], "planned",
        "last of an even number of moves: {wp}"
    );
}

#[test]
fn refresh_on_401_then_a_refused_refresh_logs_out_and_keeps_events() {
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    let creds0 = std::fs::read_to_string(sb.paths().credentials()).unwrap();
    let dir = sb.project("fresh", "token-feature");
    let ids = churn(&sb, &dir, 1);
    wait_delivered(&rs, &ids);

    // Access tokens revoked; the socket dropped on the next frame, so the
    // reconnect must use (and refresh) the access token.
    let (s, _) = rs.post(
        "/__control/revoke-tokens",
        None,
        &serde_json::json!({"access": true}),
    );
    assert_eq!(s, 200);
    control(
        &rs,
        serde_json::json!({"ws_drop_after_frames": 1, "ws_drop_connections": 1}),
    );
    let ids = churn(&sb, &dir, 2);
    wait_delivered(&rs, &ids);
    wait_for("queue drained after the drop", || {
        (daemon_status(&sb)["queue_depth"] == 0).then_some(())
    });
    let (_, stats) = rs.get("/__control/stats");
    assert!(stats["token_refreshed"].as_u64().unwrap() >= 1, "{stats}");
    let creds1 = std::fs::read_to_string(sb.paths().credentials()).unwrap();
    assert_ne!(creds0, creds1, "rotated tokens written back");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sb.paths().credentials())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Now the session is over: refresh refused.
    let (s, _) = rs.post(
        "/__control/revoke-tokens",
        None,
        &serde_json::json!({"access": true, "refresh": true}),
    );
    assert_eq!(s, 200);
    control(
        &rs,
        serde_json::json!({"ws_drop_after_frames": 1, "ws_drop_connections": 1}),
    );
    let kept = churn(&sb, &dir, 2);
    let st = wait_for("the daemon to notice the session ended", || {
        let st = daemon_status(&sb);
        (st["auth"]["logged_in"] == false).then_some(st)
    });
    assert!(
        st["auth"]["hint"]
            .as_str()
            .unwrap()
            .contains("spec-kitty auth login"),
        "{st}"
    );
    assert_eq!(st["connection"]["state"], "offline");
    assert!(
        st["queue_depth"].as_u64().unwrap() >= 1,
        "events kept: {st}"
    );
    let o = sb.sk(sb.root(), &["auth", "status"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("auth login"));
    // The first frame of the pair was stored before the drop; the rest waits.
    let got = server_events(&rs);
    assert!(!got.contains_key(&kept[1]), "sent after the session ended");
    // Logging in again sends what was kept.
    login(&sb, &rs);
    wait_delivered(&rs, &kept);
}

#[test]
fn rejected_events_are_parked_with_the_reason_and_shown() {
    let rs = RefServer::start(&["--user", USER, "--reject-all"]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    let dir = sb.project("rej", "rejected-feature");
    let st = wait_for("events parked", || {
        let st = daemon_status(&sb);
        (st["parked_total"].as_u64().unwrap_or(0) >= 2 && st["queue_depth"] == 0).then_some(st)
    });
    let p = &st["parked"][0];
    assert_eq!(p["attempts"], 3, "{p}");
    assert!(!p["reason"].as_str().unwrap().is_empty());
    let o = sb.sk(&dir, &["sync", "status"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(p["event_id"].as_str().unwrap()), "{text}");
    assert_eq!(server_events(&rs).len(), 0);
}

#[test]
fn wrong_password_unreachable_server_and_plain_http_are_clear_errors() {
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    let o = sb.login(&rs.base, "alice", "wrong");
    assert_eq!(o.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&o.stderr).contains("refused the username or password"));
    assert!(!sb.paths().credentials().exists());
    let o = sb.login("http://127.0.0.1:9", "alice", "secret");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot reach"));
    // https to a server that speaks plain http: a TLS failure, said so.
    let o = sb.login(&rs.base.replace("http://", "https://"), "alice", "secret");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("TLS failure"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = sb.login("http://example.com", "alice", "secret");
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("refusing plain http"));
    // sync server sets what login uses by default.
    sb.sk(sb.root(), &["sync", "server", &rs.base]);
    let o = sb.sk(sb.root(), &["sync", "server"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&rs.base));
    let mut c = sb.cli(sb.root());
    c.args(["auth", "login", "-u", "alice", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"secret\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = sb.sk(sb.root(), &["auth", "status", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["logged_in"], true);
    assert_eq!(v["server_url"], rs.base.as_str());
    assert_eq!(v["team_slug"], "team-a");
}

/// Every token value the run ever held must be absent from every output:
/// CLI stdout/stderr, the daemon's log files and the server's stderr.
#[test]
fn no_token_appears_in_any_output() {
    let tmp = tempfile::tempdir().unwrap();
    let server_log = tmp.path().join("refserver.stderr");
    let mut child = Command::new(bin("spec-kitty-refserver"))
        .args(["--port", "0", "--verbose", "--user", USER])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&server_log).unwrap())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _guard = Kill(child);
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let rs_get = |path: &str| -> Value {
        ureq::get(&format!("{base}{path}"))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    };

    let sb = Sandbox::new();
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut keep = |what: &str, o: &Output| {
        outputs.push((format!("{what} stdout"), o.stdout.clone()));
        outputs.push((format!("{what} stderr"), o.stderr.clone()));
    };
    let mut tokens: HashSet<String> = HashSet::new();
    let grab = |sb: &Sandbox, tokens: &mut HashSet<String>| {
        let text = std::fs::read_to_string(sb.paths().credentials()).unwrap_or_default();
        for line in text.lines() {
            for k in ["access = ", "refresh = "] {
                if let Some(v) = line.strip_prefix(k) {
                    tokens.insert(v.trim().trim_matches('"').to_string());
                }
            }
        }
    };
    let o = sb.login(&base, "alice", "secret");
    assert!(o.status.success());
    keep("login", &o);
    grab(&sb, &mut tokens);
    let dir = sb.project("secret-proj", "secret-feature");
    for args in [
        &move_task("WP01", "doing", &["--json"])[..],
        &["sync", "status", "--json"],
        &["sync", "status"],
        &["auth", "status", "--json"],
        &["auth", "status"],
        &["sync", "now", "--wait", "--json"],
    ] {
        keep(&args.join(" "), &sb.sk(&dir, args));
    }
    // Force a refresh (new tokens to look for), then more commands.
    let agent = ureq::Agent::new_with_defaults();
    agent
        .post(&format!("{base}/__control/revoke-tokens"))
        .send_json(serde_json::json!({"access": true}))
        .unwrap();
    agent
        .post(&format!("{base}/__control/faults"))
        .send_json(serde_json::json!({"ws_drop_after_frames": 1, "ws_drop_connections": 1}))
        .unwrap();
    keep(
        "move",
        &sb.sk(
            &dir,
            &["agent", "tasks", "move-task", "WP01", "--to", "for_review"],
        ),
    );
    keep(
        "move2",
        &sb.sk(
            &dir,
            &move_task(
                "WP01",
                "done",
                &["--done-override-reason", "merged elsewhere"],
            ),
        ),
    );
    wait_for("refresh and delivery", || {
        let s = rs_get("/__control/stats");
        let n = rs_get("/api/v1/events/")["count"].as_u64().unwrap();
        (s["token_refreshed"].as_u64().unwrap() >= 1 && n >= 5).then_some(())
    });
    grab(&sb, &mut tokens);
    keep("logout", &sb.sk(&dir, &["auth", "logout"]));
    keep("status after", &sb.sk(&dir, &["sync", "status", "--json"]));
    sb.stop_daemon();
    assert!(
        tokens.len() >= 3,
        "expected login + refreshed tokens, got {}",
        tokens.len()
    );

    for entry in std::fs::read_dir(sb.paths().log_dir()).unwrap() {
        let p = entry.unwrap().path();
        outputs.push((p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    outputs.push((
        "refserver stderr".into(),
        std::fs::read(&server_log).unwrap(),
    ));
    let daemon_log_bytes: usize = outputs
        .iter()
        .filter(|(n, _)| n.contains("syncd"))
        .map(|(_, b)| b.len())
        .sum();
    assert!(daemon_log_bytes > 0, "the daemon wrote no log to check");
    for (name, bytes) in &outputs {
        let text = String::from_utf8_lossy(bytes);
        for t in &tokens {
            assert!(!text.contains(t.as_str()), "a token appears in {name}");
        }
    }
}

#[test]
fn a_server_that_never_acks_is_reconciled_through_batch() {
    let rs = RefServer::start(&["--user", USER, "--legacy-ws"]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    let dir = sb.project("legacy", "legacy-feature");
    let ids = churn(&sb, &dir, 3);
    wait_delivered(&rs, &ids);
    // Delivered over the socket, but only a batch result may clear the queue.
    wait_for("queue drained by reconciliation", || {
        (daemon_status(&sb)["queue_depth"] == 0).then_some(())
    });
    let (_, stats) = rs.get("/__control/stats");
    assert_eq!(stats["ws_acks_sent"], 0, "{stats}");
    assert!(
        stats["ws_events_accepted"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert!(
        stats["batch_events_duplicate"].as_u64().unwrap() >= 1,
        "reconciled: {stats}"
    );
    let got = server_events(&rs);
    for id in &ids {
        assert_eq!(got[id]["received_via"], "ws");
    }
    // Each reconcile confirms; it does not make the server store again.
    spec_kitty_e2e::assert_resends_bounded(&sb, &rs, 0);
}

#[test]
fn an_access_token_near_expiry_is_refreshed_before_use() {
    // 30 s lifetime: inside the daemon's refresh-ahead window at once.
    let rs = RefServer::start(&["--user", USER, "--access-lifetime", "30"]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    let dir = sb.project("expiring", "expiry-feature");
    let ids = churn(&sb, &dir, 1);
    wait_delivered(&rs, &ids);
    let (_, stats) = rs.get("/__control/stats");
    assert!(stats["token_refreshed"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(
        stats["auth_failures"], 0,
        "refreshed before any 401: {stats}"
    );
}

#[test]
fn events_in_flight_at_logout_are_sent_after_the_next_login() {
    // No acks: events stay in flight until reconciled, so a logout right
    // after emitting catches them in flight.
    let rs = RefServer::start(&["--user", USER, "--legacy-ws"]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    let dir = sb.project("inflight", "inflight-feature");
    let ids = churn(&sb, &dir, 2);
    sb.sk(sb.root(), &["auth", "logout"]);
    let st = daemon_status(&sb);
    assert_eq!(st["auth"]["logged_in"], false, "{st}");
    // Something really was in flight at the logout: the ended session put
    // it back to pending (else this test shows nothing about in-flight).
    let log = wait_for("the logout to end the session", || {
        let log = sb.daemon_log();
        log.contains("in-flight event(s) back to pending")
            .then_some(log)
    });
    assert!(spec_kitty_e2e::unconfirmed_sends(&log) >= 1, "{log}");
    login(&sb, &rs);
    wait_delivered(&rs, &ids);
    wait_for("every event confirmed after the re-login", || {
        (daemon_status(&sb)["queue_depth"] == 0).then_some(())
    });
    spec_kitty_e2e::assert_resends_bounded(&sb, &rs, 0);
}

#[test]
fn credentials_written_by_the_python_cli_are_used_as_they_are() {
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    let (status, tokens) = rs.post(
        "/api/v1/token/",
        None,
        &serde_json::json!({"username": "alice", "password": "secret"}),
    );
    assert_eq!(status, 200, "{tokens}");
    // Exactly what spec-kitty-cli 2.1.3 writes (toml.dumps of its dict).
    let text = format!(
        "[tokens]\naccess = \"{}\"\nrefresh = \"{}\"\naccess_expires_at = \"2099-01-01T00:00:00.000000+00:00\"\nrefresh_expires_at = \"2099-01-07T00:00:00.000000+00:00\"\n\n[user]\nusername = \"alice\"\nteam_slug = \"team-a\"\n\n[server]\nurl = \"{}\"\n",
        tokens["access"].as_str().unwrap(),
        tokens["refresh"].as_str().unwrap(),
        rs.base
    );
    std::fs::create_dir_all(sb.sk_home()).unwrap();
    std::fs::write(sb.paths().credentials(), &text).unwrap();
    let o = sb.sk(sb.root(), &["auth", "status", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["logged_in"], true, "{v}");
    assert_eq!(v["team_slug"], "team-a");
    let dir = sb.project("pyfile", "python-creds");
    let ids = churn(&sb, &dir, 1);
    let got = wait_delivered(&rs, &ids);
    assert_eq!(got[&ids[0]]["envelope"]["team_slug"], "team-a");
    // Nothing needed a rewrite: the file is byte for byte the Python one.
    assert_eq!(
        std::fs::read_to_string(sb.paths().credentials()).unwrap(),
        text
    );
}

#[test]
fn a_refresh_done_by_another_process_is_picked_up_not_repeated() {
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    let dir = sb.project("shared", "shared-creds");
    wait_for("set-up delivered", || {
        (daemon_status(&sb)["queue_depth"] == 0).then_some(())
    });
    // The daemon's access token dies; another process (as the Python CLI
    // would) spends the refresh token and writes the rotated pair.
    let (s, _) = rs.post(
        "/__control/revoke-tokens",
        None,
        &serde_json::json!({"access": true}),
    );
    assert_eq!(s, 200);
    let text = std::fs::read_to_string(sb.paths().credentials()).unwrap();
    let old_refresh = text
        .lines()
        .find_map(|l| l.strip_prefix("refresh = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let (s, fresh) = rs.post(
        "/api/v1/token/refresh/",
        None,
        &serde_json::json!({"refresh": old_refresh}),
    );
    assert_eq!(s, 200, "{fresh}");
    let rewritten = text
        .lines()
        .map(|l| {
            if l.starts_with("access = ") {
                format!("access = \"{}\"", fresh["access"].as_str().unwrap())
            } else if l.starts_with("refresh = ") {
                format!("refresh = \"{}\"", fresh["refresh"].as_str().unwrap())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(sb.paths().credentials(), rewritten + "\n").unwrap();
    // Make the daemon reconnect (and so need its access token).
    control(
        &rs,
        serde_json::json!({"ws_drop_after_frames": 1, "ws_drop_connections": 1}),
    );
    let ids = churn(&sb, &dir, 2);
    wait_delivered(&rs, &ids);
    wait_for("queue drained with the other process's tokens", || {
        (daemon_status(&sb)["queue_depth"] == 0).then_some(())
    });
    let st = daemon_status(&sb);
    assert_eq!(st["auth"]["logged_in"], true, "{st}");
    let (_, stats) = rs.get("/__control/stats");
    assert_eq!(
        stats["token_refreshed"], 1,
        "the daemon used the file's tokens instead of spending a dead refresh token: {stats}"
    );
}

// ---- Partial and whole-request batch answers (CONTRACT.md batch API) ----
//
// These build a backlog the daemon must send by batch: logged in, daemon
// stopped, `auto_start: false`, so each command spools; `sync now --wait`
// then starts the daemon, whose first request is the batch upload.

/// A project whose events are spooled (not sent): `init`, auto-start off,
/// `specify`, then one `tasks add` per title. Returns its directory.
fn spooled_project(sb: &Sandbox, name: &str, feature: &str, wps: &[&str]) -> std::path::PathBuf {
    let dir = sb.git_repo(name, None);
    sb.sk(&dir, &["init", "--here"]);
    spec_kitty_e2e::sync::set_auto_start(&dir, false);
    sb.sk(&dir, &["specify", feature]);
    for wp in wps {
        sb.sk(&dir, &["tasks", "add", wp]);
    }
    dir
}

/// Runs `sync now --wait` until nothing is pending or spooled (each run
/// skips the backoff), at most 12 times; returns the daemon's status.
fn drive_until_drained(sb: &Sandbox) -> Value {
    for _ in 0..12 {
        sb.sk(sb.root(), &["sync", "now", "--wait", "--json"]);
        let st = daemon_status(sb);
        if st["queue_depth"] == 0 && sb.spooled().is_empty() {
            return st;
        }
    }
    panic!("the queue never drained: {}", daemon_status(sb));
}

/// Event ids of the spooled envelopes, with their aggregate ids.
fn spooled_ids(sb: &Sandbox) -> Vec<(String, String)> {
    sb.spooled()
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_string(),
                e["aggregate_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn stats(rs: &RefServer) -> Value {
    rs.get("/__control/stats").1
}

/// Every id stored at the server exactly once, and the server saw no
/// second delivery of any of them (a re-send after a stored result would
/// be a `duplicate`).
fn assert_delivered_once(rs: &RefServer, ids: &[String]) -> BTreeMap<String, Value> {
    let got = server_events(rs);
    for id in ids {
        assert!(got.contains_key(id), "event {id} never reached the server");
    }
    let st = stats(rs);
    assert_eq!(
        st["batch_events_duplicate"].as_u64().unwrap()
            + st["ws_events_duplicate"].as_u64().unwrap(),
        0,
        "an event stored at the server was sent again: {st}"
    );
    got
}

/// The ids of the parked events in a daemon status, checking that each
/// kept the server's reason (which contains `reason`).
fn parked_ids(st: &Value, reason: &str) -> HashSet<String> {
    st["parked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(
                p["reason"].as_str().unwrap().contains(reason),
                "the server's reason is kept: {p}"
            );
            p["event_id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn whole_request_400s_retry_the_batch_and_park_nothing() {
    // Finding 4: a 400 that names no event used to reject every event of
    // the batch; after three, all of them were parked for good.
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    sb.stop_daemon();
    let dir = spooled_project(&sb, "bare400", "bare-400", &["One", "Two"]);
    sb.sk(
        &dir,
        &["agent", "tasks", "move-task", "WP01", "--to", "doing"],
    );
    let ids: Vec<String> = spooled_ids(&sb).into_iter().map(|(id, _)| id).collect();
    assert!(ids.len() >= 4, "{ids:?}");
    // Every contract endpoint fails, so the WebSocket is no way around it.
    control(&rs, serde_json::json!({"fail_next": 5, "fail_status": 400}));
    let st = drive_until_drained(&sb);
    assert_eq!(
        st["parked_total"], 0,
        "a 400 naming no event parks nothing: {st}"
    );
    assert_eq!(stats(&rs)["injected_failures"], 5);
    assert_delivered_once(&rs, &ids);
}

#[test]
fn a_batch_refused_as_too_large_is_split_and_sent() {
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    sb.stop_daemon();
    spooled_project(&sb, "toolarge", "too-large", &["One", "Two", "Three"]);
    let ids: Vec<String> = spooled_ids(&sb).into_iter().map(|(id, _)| id).collect();
    assert!(ids.len() >= 4, "{ids:?}");
    control(&rs, serde_json::json!({"max_batch": 2}));
    let st = drive_until_drained(&sb);
    assert_eq!(st["parked_total"], 0, "{st}");
    let got = assert_delivered_once(&rs, &ids);
    for id in &ids {
        assert_eq!(
            got[id]["received_via"], "batch",
            "split batches, not a detour over the WebSocket after a rejection: {}",
            got[id]
        );
    }
    let s = stats(&rs);
    assert!(s["batch_rejected_requests"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["batch_events_rejected"], 0, "{s}");
}

#[test]
fn an_event_too_large_on_its_own_is_parked_and_the_rest_still_go() {
    // A single event the server refuses for its size used to fail the whole
    // session, so it was retried with backoff forever and the events behind
    // it never went. It is now rejected like a refused event: parked with the
    // server's reason, kept, and sent again after `sync retry-parked`.
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    sb.stop_daemon();
    let huge = vec!["word"; 2000].join(" ");
    spooled_project(&sb, "huge", "huge-event", &["One", &huge, "Three"]);
    let all = spooled_ids(&sb);
    let big: HashSet<String> = sb
        .spooled()
        .iter()
        .filter(|e| e.to_string().len() > 8000)
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(big.len(), 1, "one event carries the long title: {all:?}");
    let small: Vec<String> = all
        .iter()
        .map(|(id, _)| id.clone())
        .filter(|id| !big.contains(id))
        .collect();
    assert!(small.len() >= 3, "{all:?}");
    control(&rs, serde_json::json!({"max_body_bytes": 6000}));
    let st = drive_until_drained(&sb);
    assert_eq!(parked_ids(&st, "too large"), big, "{st}");
    let got = assert_delivered_once(&rs, &small);
    assert!(big.iter().all(|id| !got.contains_key(id)));
    assert!(stats(&rs)["batch_rejected_requests"].as_u64().unwrap() >= 3);
    // The server's limit goes up; the user asks for another try.
    control(&rs, serde_json::json!({"max_body_bytes": null}));
    let o = sb.sk(sb.root(), &["sync", "retry-parked", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["requeued"], 1, "{v}");
    let ids: Vec<String> = all.into_iter().map(|(id, _)| id).collect();
    wait_delivered(&rs, &ids);
    assert_delivered_once(&rs, &ids);
}

#[test]
fn events_left_out_of_a_batch_answer_are_sent_again_not_counted_delivered() {
    // Audit M5: an event with no result in a 200 answer must stay queued.
    // The server neither stores nor answers those events, so counting them
    // delivered loses them.
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    sb.stop_daemon();
    spooled_project(&sb, "omit", "omitted-results", &["One", "Two", "Three"]);
    let ids: Vec<String> = spooled_ids(&sb).into_iter().map(|(id, _)| id).collect();
    assert!(ids.len() >= 4, "{ids:?}");
    control(&rs, serde_json::json!({"omit_results": 2}));
    let st = drive_until_drained(&sb);
    assert_eq!(st["parked_total"], 0, "{st}");
    assert_eq!(stats(&rs)["batch_results_omitted"], 2, "the fault fired");
    let got = wait_delivered(&rs, &ids);
    assert_eq!(got.len(), ids.len());
    assert_delivered_once(&rs, &ids);
}

#[test]
fn a_400_naming_some_events_parks_only_those_with_the_servers_reason() {
    let rs = RefServer::start(&["--user", USER]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    sb.stop_daemon();
    let dir = spooled_project(&sb, "partial", "partial-400", &["One", "Two"]);
    sb.sk(
        &dir,
        &["agent", "tasks", "move-task", "WP02", "--to", "doing"],
    );
    sb.sk(
        &dir,
        &["agent", "tasks", "move-task", "WP01", "--to", "doing"],
    );
    let all = spooled_ids(&sb);
    let named: HashSet<String> = all
        .iter()
        .filter(|(_, agg)| agg == "WP02")
        .map(|(id, _)| id.clone())
        .collect();
    let others: Vec<String> = all
        .iter()
        .filter(|(id, _)| !named.contains(id))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(named.len() >= 2 && others.len() >= 2, "{all:?}");
    control(&rs, serde_json::json!({"partial_400": "WP02"}));
    let st = drive_until_drained(&sb);
    assert!(stats(&rs)["batch_partial_400"].as_u64().unwrap() >= 1);
    let parked = parked_ids(&st, "partial_400");
    assert_eq!(parked, named, "exactly the named events are parked");
    let got = assert_delivered_once(&rs, &others);
    assert!(named.iter().all(|id| !got.contains_key(id)));
}

#[test]
fn a_project_owned_by_another_team_parks_only_that_projects_events() {
    let rs = RefServer::start(&["--user", USER, "--user", "bob:pw:team-b"]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    sb.stop_daemon();
    let theirs = spooled_project(&sb, "theirs", "owned-elsewhere", &["One"]);
    let their_ids: HashSet<String> = spooled_ids(&sb).into_iter().map(|(id, _)| id).collect();
    spooled_project(&sb, "ours", "ours", &["One", "Two"]);
    let our_ids: Vec<String> = spooled_ids(&sb)
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| !their_ids.contains(id))
        .collect();
    let cfg = std::fs::read_to_string(theirs.join(".kittify/config.yaml")).unwrap();
    let uuid = cfg
        .lines()
        .find_map(|l| l.trim().strip_prefix("uuid:"))
        .unwrap()
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_string();
    let (s, body) = rs.post(
        "/__control/projects",
        None,
        &serde_json::json!({"project_uuid": uuid, "team_slug": "team-b"}),
    );
    assert_eq!(s, 200, "{body}");
    let st = drive_until_drained(&sb);
    let parked = parked_ids(&st, "team-a");
    assert_eq!(parked, their_ids, "only the other team's project is parked");
    let got = assert_delivered_once(&rs, &our_ids);
    assert!(their_ids.iter().all(|id| !got.contains_key(id)));
}

#[test]
fn a_team_switch_with_a_pending_backlog_delivers_it_under_the_new_login() {
    let rs = RefServer::start(&["--user", USER, "--user", "carol:pw:team-c"]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    sb.stop_daemon();
    spooled_project(&sb, "switch", "team-switch", &["One", "Two"]);
    let ids: Vec<String> = spooled_ids(&sb).into_iter().map(|(id, _)| id).collect();
    // The backlog waits in the daemon's store, not only in the spool.
    control(
        &rs,
        serde_json::json!({"fail_next": 1000, "fail_status": 503}),
    );
    sb.sk(sb.root(), &["sync", "now", "--wait", "--json"]);
    let st = daemon_status(&sb);
    assert_eq!(st["queue_depth"], ids.len() as u64, "{st}");
    control(&rs, serde_json::json!({"clear": true}));
    let o = sb.login(&rs.base, "carol", "pw");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st = drive_until_drained(&sb);
    assert_eq!(st["parked_total"], 0, "{st}");
    assert_eq!(st["auth"]["team_slug"], "team-c", "{st}");
    assert_delivered_once(&rs, &ids);
    let view = rs.projects();
    let text = view.to_string();
    assert!(
        text.contains("team-c"),
        "the project belongs to the new team: {view}"
    );
    assert!(!text.contains("team-a"), "{view}");
}

#[test]
fn parked_events_are_sent_again_after_retry_parked() {
    let rs = RefServer::start(&["--user", USER, "--reject-all"]);
    let sb = Sandbox::new();
    login(&sb, &rs);
    let dir = sb.project("retry", "retry-parked");
    let st = wait_for("events parked", || {
        let st = daemon_status(&sb);
        (st["parked_total"].as_u64().unwrap_or(0) >= 2 && st["queue_depth"] == 0).then_some(st)
    });
    let parked: Vec<String> = st["parked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["event_id"].as_str().unwrap().to_string())
        .collect();
    let o = sb.sk(&dir, &["sync", "status"]);
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        t.contains("sync retry-parked"),
        "the hint names the command:\n{t}"
    );
    // The server changed its mind; the user asks for another try.
    control(&rs, serde_json::json!({"reject_all": false}));
    let o = sb.sk(sb.root(), &["sync", "retry-parked", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["requeued"], st["parked_total"], "{v}");
    assert_delivered_once(
        &rs,
        &wait_delivered(&rs, &parked).into_keys().collect::<Vec<_>>(),
    );
    let st = wait_for("nothing parked, nothing pending", || {
        let st = daemon_status(&sb);
        (st["parked_total"] == 0 && st["queue_depth"] == 0).then_some(st)
    });
    assert_eq!(st["parked"].as_array().map_or(0, Vec::len), 0);
    let o = sb.sk(sb.root(), &["sync", "retry-parked"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("No parked events"));
}
