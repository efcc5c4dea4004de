//! Every fault switch, at start (flags) and at runtime (control endpoint),
//! observably doing what it says.

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{simple, wait_for, Frame, Server};
use serde_json::json;

fn login(server: &Server) -> String {
    server.access("alice", "secret")
}

#[test]
fn fail_next_gives_exactly_n_500s_then_service() {
    let server = Server::start(&["--user", "alice:secret:team-a"]);
    let token = login(&server);
    let faults = server.set_faults(json!({"fail_next": 2}));
    assert_eq!(faults["fail_next"], 2);
    for _ in 0..2 {
        let (status, body) = server.batch_gzip(&token, &json!({"events": [simple(1)]}));
        assert_eq!(status, 500);
        assert!(body["error"].as_str().unwrap().contains("injected"));
    }
    let (status, _) = server.batch_gzip(&token, &json!({"events": [simple(1)]}));
    assert_eq!(status, 200);
    assert_eq!(server.stat("injected_failures"), 2);
    assert_eq!(
        server.events(None).len(),
        1,
        "failed requests stored nothing"
    );
}

#[test]
fn fail_next_at_start_also_hits_login_and_views_are_exempt() {
    let server = Server::start(&[
        "--user",
        "alice:secret:team-a",
        "--fail-next",
        "1",
        "--fail-status",
        "503",
    ]);
    let (status, _) = server.post(
        "/api/v1/token/",
        &json!({"username": "alice", "password": "secret"}),
    );
    assert_eq!(status, 503);
    assert_eq!(
        server.get("/api/v1/projects/").0,
        200,
        "views are never failed"
    );
    assert_eq!(
        server
            .post(
                "/api/v1/token/",
                &json!({"username": "alice", "password": "secret"})
            )
            .0,
        200
    );
}

#[test]
fn fail_percent_100_fails_everything_and_0_nothing() {
    let server = Server::start(&["--user", "alice:secret:team-a", "--fail-percent", "100"]);
    for _ in 0..5 {
        let (status, _) = server.post(
            "/api/v1/token/",
            &json!({"username": "alice", "password": "secret"}),
        );
        assert_eq!(status, 500);
    }
    server.set_faults(json!({"fail_percent": 0}));
    let token = login(&server);
    assert_eq!(
        server.batch_gzip(&token, &json!({"events": [simple(1)]})).0,
        200
    );
}

#[test]
fn fail_percent_50_fails_some_and_serves_some() {
    let server = Server::start(&["--user", "alice:secret:team-a", "--fail-percent", "50"]);
    let statuses: Vec<u16> = (0..100)
        .map(|_| {
            server
                .post(
                    "/api/v1/token/",
                    &json!({"username": "alice", "password": "secret"}),
                )
                .0
        })
        .collect();
    // Each outcome missing from 100 fair draws has probability 2^-100.
    assert!(
        statuses.contains(&500) && statuses.contains(&200),
        "{statuses:?}"
    );
    assert!(statuses.iter().all(|s| *s == 500 || *s == 200));
    let failed = statuses.iter().filter(|s| **s == 500).count() as u64;
    assert_eq!(server.stat("injected_failures"), failed);
}

#[test]
fn delay_slows_api_responses_by_at_least_the_delay() {
    let server = Server::start(&["--user", "alice:secret:team-a"]);
    let token = login(&server);
    server.set_faults(json!({"delay_ms": 300}));
    let start = Instant::now();
    let (status, _) = server.batch_gzip(&token, &json!({"events": [simple(1)]}));
    // A lower bound only: the delay is a guarantee of the fault, not a speed claim.
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(status, 200);
    assert_eq!(server.stat("delayed_requests"), 1);
}

#[test]
fn reject_all_rejects_every_event_on_both_paths() {
    let server = Server::start(&["--user", "alice:secret:team-a", "--reject-all"]);
    let token = login(&server);
    let (status, body) = server.batch_gzip(&token, &json!({"events": [simple(1), simple(2)]}));
    assert_eq!(status, 200);
    for r in body["results"].as_array().unwrap() {
        assert_eq!(r["status"], "rejected");
        assert!(r["error"].as_str().unwrap().contains("reject_all"));
    }
    let mut ws = server.ws(&token);
    assert_eq!(ws.json()["type"], "snapshot");
    ws.send(&simple(3));
    let e = ws.json();
    assert_eq!(
        (e["type"].as_str(), e["status"].as_str()),
        (Some("error"), Some("rejected"))
    );
    assert!(server.events(None).is_empty());
    server.set_faults(json!({"reject_all": false}));
    ws.send(&simple(3));
    assert_eq!(ws.json()["status"], "accepted");
}

#[test]
fn ws_ack_can_be_switched_off_and_on_at_runtime() {
    let server = Server::start(&["--user", "alice:secret:team-a", "--max-missed-pongs", "0"]);
    let token = login(&server);
    let mut ws = server.ws(&token);
    assert_eq!(ws.json()["type"], "snapshot");
    server.set_faults(json!({"ws_ack": false}));
    ws.send(&simple(1));
    server.wait_for("event 1 stored", || {
        (server.events(None).len() == 1).then_some(())
    });
    server.set_faults(json!({"ws_ack": true}));
    ws.send(&simple(2));
    // The first reply after switching back is the ack of event 2: event 1 got none.
    let reply = ws.json();
    assert_eq!(reply["event_id"], simple(2)["event_id"]);
    assert_eq!(reply["status"], "accepted");
    assert_eq!(server.stat("ws_acks_sent"), 1);
}

#[test]
fn ws_drop_after_frames_cuts_without_acking_the_last_frame() {
    let server = Server::start(&[
        "--user",
        "alice:secret:team-a",
        "--ws-drop-after-frames",
        "2",
    ]);
    let token = login(&server);
    let mut ws = server.ws(&token);
    assert_eq!(ws.json()["type"], "snapshot");
    ws.send(&simple(1));
    assert_eq!(ws.json()["status"], "accepted");
    ws.send(&simple(2));
    match ws.next_reply() {
        Frame::Closed(code) => assert_eq!(code, None, "abrupt: no close frame"),
        Frame::Json(v) => panic!("expected the connection to drop, got {v}"),
    }
    assert_eq!(server.events(None).len(), 2, "the unacked frame was stored");
    assert_eq!(server.stat("ws_dropped_by_fault"), 1);
    // A new connection re-sends it and learns it is a duplicate; a budget
    // of 0 remaining drops stops further drops.
    server.set_faults(json!({"ws_drop_connections": 0}));
    let mut ws = server.ws(&token);
    assert_eq!(ws.json()["type"], "snapshot");
    ws.send(&simple(2));
    assert_eq!(ws.json()["status"], "duplicate");
    ws.send(&simple(3));
    assert_eq!(ws.json()["status"], "accepted");
}

fn refused(port: u16) -> bool {
    matches!(TcpStream::connect(("127.0.0.1", port)), Err(e) if e.kind() == ErrorKind::ConnectionRefused)
}

#[test]
fn refuse_connections_closes_the_port_cuts_websockets_then_listens_again() {
    let server = Server::start(&["--user", "alice:secret:team-a", "--max-missed-pongs", "0"]);
    let token = login(&server);
    let mut ws = server.ws(&token);
    assert_eq!(ws.json()["type"], "snapshot");
    // An idle keep-alive HTTP connection, as a client's pool holds.
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    idle.set_read_timeout(Some(common::DEADLINE)).unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let faults = server.set_faults(json!({"refuse_connections_ms": 1500}));
    assert_eq!(
        faults["refusing_ms_remaining"], 0,
        "window starts after the reply"
    );
    wait_for("connections refused", &mut || {
        refused(server.port).then_some(())
    });
    match ws.next() {
        Frame::Closed(_) => {}
        Frame::Json(v) => panic!("WebSocket should have been cut, got {v}"),
    }
    // The idle connection is cut too (reset or EOF, never a timeout).
    match idle.read(&mut buf) {
        Ok(0) => {}
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
            "{e}"
        ),
        Ok(n) => panic!("unexpected {n} bytes on a cut connection"),
    }
    wait_for("listening again", &mut || {
        (!refused(server.port)).then_some(())
    });
    assert_eq!(server.stat("refuse_windows"), 1);
    assert!(
        server.stat("connections_killed") >= 2,
        "WebSocket and idle HTTP"
    );
    // Fully working again, same port.
    assert_eq!(
        server.batch_gzip(&token, &json!({"events": [simple(1)]})).0,
        200
    );
}

#[test]
fn refuse_connections_at_start_then_serves() {
    let server = Server::start(&[
        "--user",
        "alice:secret:team-a",
        "--refuse-connections-ms",
        "1000",
    ]);
    // The line is printed while the window is open, so the first tries are refused.
    assert!(
        refused(server.port),
        "connections refused right after start"
    );
    wait_for("listening after the start window", &mut || {
        (!refused(server.port)).then_some(())
    });
    assert_eq!(
        server
            .post(
                "/api/v1/token/",
                &json!({"username": "alice", "password": "secret"})
            )
            .0,
        200
    );
}

#[test]
fn fault_state_reads_back_and_bad_patches_are_refused() {
    let server = Server::start(&[
        "--user",
        "alice:secret:team-a",
        "--legacy-ws",
        "--delay-ms",
        "5",
    ]);
    let (status, f) = server.get("/__control/faults");
    assert_eq!(status, 200);
    assert_eq!(f["ws_ack"], false);
    assert_eq!(f["delay_ms"], 5);
    assert_eq!(
        server.post("/__control/faults", &json!({"nonsense": 1})).0,
        400
    );
    assert_eq!(
        server
            .post("/__control/faults", &json!({"fail_percent": 150}))
            .0,
        400
    );
    let f = server.set_faults(json!({"clear": true, "fail_next": 1}));
    assert_eq!(
        (
            f["ws_ack"].as_bool(),
            f["delay_ms"].as_u64(),
            f["fail_next"].as_u64()
        ),
        (Some(true), Some(0), Some(1))
    );
}
