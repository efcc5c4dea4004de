//! End-to-end tests over the real `spec-kitty-syncd` binary: real processes,
//! real Unix sockets, real SQLite files, each in its own SPEC_KITTY_SYNC_HOME.

use crate::common;

use common::*;
use spec_kitty_protocol::ipc::{
    self, ErrorKind, Hello, HelloReply, Request, Response, SyncSummary, MAX_FRAME,
};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Barrier, Mutex};

#[test]
fn emit_is_durable_and_shows_in_status() {
    let home = Home::new();
    let _d = home.start();
    let mut c = Client::connect(&home.paths).unwrap();
    let (id, env) = envelope(Some(PROJECT));
    let (lamport, seq, dup) = accepted(c.emit(&env).unwrap());
    assert!(lamport >= 1 && seq >= 1 && !dup);
    let (_, held_env) = envelope(None);
    accepted(c.emit(&held_env).unwrap());

    // Durable: the row is in the SQLite file, stamped.
    let db = store(&home.paths);
    let (stored, state): (String, String) = db
        .query_row(
            "SELECT envelope, state FROM events WHERE event_id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(state, "pending");
    let v: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(v["lamport_clock"], lamport);
    assert_eq!(v["node_id"], spec_kitty_protocol::node_id());
    assert_eq!(v["team_slug"], "local");

    let s = c.status();
    assert_eq!(s.pid, c.welcome.pid);
    assert_eq!(s.mode, ipc::DaemonMode::Foreground);
    assert_eq!(s.queue_depth, 1);
    assert_eq!(s.held, 1);
    assert_eq!(s.projects.len(), 1);
    assert_eq!(s.projects[0].project_uuid, PROJECT);
    assert_eq!(s.projects[0].project_slug.as_deref(), Some("demo"));
    assert_eq!(s.projects[0].pending, 1);
    assert!(s.oldest_pending_age_secs.is_some());
    assert_eq!(s.connection.state, ipc::ConnState::Offline);
    assert!(!s.auth.logged_in);
    assert_eq!(s.socket, home.paths.socket().display().to_string());

    // SyncNow says honestly that nothing can be sent while logged out.
    match c.request(&Request::SyncNow { wait: true }).unwrap() {
        Response::Synced { json } => {
            let sum: SyncSummary = serde_json::from_str(&json).unwrap();
            assert_eq!(sum.remaining, 1);
            assert!(sum.stopped_reason.unwrap().contains("not logged in"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_envelope_is_refused_and_connection_stays_usable() {
    let home = Home::new();
    let _d = home.start();
    let mut c = Client::connect(&home.paths).unwrap();
    match c.emit(r#"{"event_id":"nope"}"#).unwrap() {
        Response::Error { kind, message } => {
            assert_eq!(kind, ErrorKind::InvalidEnvelope);
            assert!(
                message.contains("event_type") || message.contains("event_id"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let (_, env) = envelope(Some(PROJECT));
    accepted(c.emit(&env).unwrap());
    assert!(rows(&home.paths).len() == 1);
}

#[test]
fn resent_event_id_returns_the_stored_row() {
    let home = Home::new();
    let _d = home.start();
    let mut c = Client::connect(&home.paths).unwrap();
    let (_, env) = envelope(Some(PROJECT));
    let first = accepted(c.emit(&env).unwrap());
    let mut other = Client::connect(&home.paths).unwrap();
    let again = accepted(other.emit(&env).unwrap());
    assert_eq!((again.0, again.1), (first.0, first.1));
    assert!(!first.2 && again.2, "second emit must say duplicate");
    assert_eq!(rows(&home.paths).len(), 1);
}

#[test]
fn lamport_strictly_increases_in_seq_order_across_restarts() {
    let home = Home::new();
    let mut d = home.start();
    // Concurrent emitters share group commits; values must still be unique
    // and increasing in seq order.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let paths = home.paths.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&paths).unwrap();
                for _ in 0..50 {
                    accepted(c.emit(&envelope(Some(PROJECT)).1).unwrap());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut c = Client::connect(&home.paths).unwrap();
    assert!(matches!(
        c.request(&Request::Shutdown {
            reason: "test restart".into()
        })
        .unwrap(),
        Response::Done { .. }
    ));
    assert_eq!(d.wait_exit(), Some(0));
    assert!(
        !home.paths.socket().exists(),
        "clean exit removes the socket"
    );

    let mut d2 = home.start();
    let mut c = Client::connect(&home.paths).unwrap();
    for _ in 0..10 {
        accepted(c.emit(&envelope(Some(PROJECT)).1).unwrap());
    }
    let rows_now = rows(&home.paths);
    assert_eq!(rows_now.len(), 210);
    assert_lamport_rises(&rows_now);

    // Crash restarts: kill -9 in the middle of concurrent bursts (so the
    // kill lands inside group commits), restart, and the clock must carry
    // on above every value already stored. The clock row is written in the
    // same transaction as the events; a separate one would let a kill
    // between the two hand out old values again.
    d2.kill9();
    for round in 0..8u64 {
        let mut d = home.start();
        let max_before = rows(&home.paths).iter().map(|r| r.2).max().unwrap();
        let mut c = Client::connect(&home.paths).unwrap();
        let (first, _, _) = accepted(c.emit(&envelope(Some(PROJECT)).1).unwrap());
        assert!(
            first as i64 > max_before,
            "round {round}: after kill -9 and restart the clock handed out {first}, not above the stored {max_before}"
        );
        let acks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let paths = home.paths.clone();
                let acks = acks.clone();
                std::thread::spawn(move || {
                    let Ok(mut c) = Client::connect(&paths) else {
                        return;
                    };
                    while let Ok(Response::Accepted { .. }) = c.emit(&envelope(Some(PROJECT)).1) {
                        acks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // A different number of acks each round moves the kill point.
        let want = 10 + (round as usize * 37) % 90;
        wait_until("acks before the kill", || {
            acks.load(std::sync::atomic::Ordering::Relaxed) >= want
        });
        d.kill9();
        for t in threads {
            t.join().unwrap();
        }
        assert_lamport_rises(&rows(&home.paths));
    }
    let _d3 = home.start();
    let max_before = rows(&home.paths).iter().map(|r| r.2).max().unwrap();
    let mut c = Client::connect(&home.paths).unwrap();
    let (last, _, _) = accepted(c.emit(&envelope(Some(PROJECT)).1).unwrap());
    assert!(last as i64 > max_before, "{last} <= {max_before}");
    assert_lamport_rises(&rows(&home.paths));
}

/// Lamport values strictly increasing in `seq` order (hence unique).
fn assert_lamport_rises(rows: &[(i64, String, i64)]) {
    for w in rows.windows(2) {
        assert!(
            w[1].2 > w[0].2,
            "lamport not increasing in seq order: {w:?}"
        );
    }
}

#[test]
fn spawned_mode_reports_ready_and_second_spawn_reports_running() {
    let home = Home::new();
    let (d, line) = home.spawn(&[]);
    let d = d.unwrap_or_else(|| panic!("not ready: {line}"));
    assert!(line.starts_with(&format!("READY pid={} ", d.pid)), "{line}");
    let (none, line2) = home.spawn(&[]);
    assert!(none.is_none());
    assert_eq!(line2, format!("RUNNING pid={}", d.pid));
    let mut c = Client::connect(&home.paths).unwrap();
    assert_eq!(c.status().mode, ipc::DaemonMode::Auto);
}

#[test]
fn a_daemon_whose_lock_file_was_removed_is_not_joined_by_a_second() {
    // Deleting `syncd/` under a running daemon removes its lock file too; a
    // new daemon used to take a fresh lock and replace the live socket, so
    // two daemons ran with two clocks. It now sees the live one and stands
    // back, naming it.
    let home = Home::new();
    let (d, line) = home.spawn(&[]);
    let d = d.unwrap_or_else(|| panic!("not ready: {line}"));
    std::fs::remove_file(home.paths.daemon_lock()).unwrap();
    let (second, line2) = home.spawn(&[]);
    assert!(second.is_none(), "a second daemon started: {line2}");
    assert_eq!(line2, format!("RUNNING pid={}", d.pid));
    let out = home.cmd().arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("though its lock file") && err.contains(&d.pid.to_string()),
        "{err}"
    );
    // The first one still serves, on the same socket.
    let mut c = Client::connect(&home.paths).unwrap();
    assert_eq!(c.status().pid, d.pid);
}

#[test]
fn spawned_daemon_exits_when_idle_and_removes_its_socket() {
    let home = Home::new();
    let (d, line) = home.spawn(&["--idle-exit-secs", "1"]);
    let mut d = d.unwrap_or_else(|| panic!("not ready: {line}"));
    emit_one(&home.paths);
    assert_eq!(d.wait_exit(), Some(0));
    assert!(!home.paths.socket().exists());
    assert_eq!(rows(&home.paths).len(), 1);
}

#[test]
fn thirty_two_clients_racing_a_cold_start_get_one_daemon() {
    // 32 `spec-kitty-syncd run --spawned` at once, with no start lock
    // around them (the CLI's start lock is tested through the CLI in
    // e2e/tests/it/handoff.rs): the daemon lock alone must let exactly one
    // serve; every other reports `RUNNING pid=<winner>` and exits.
    let home = Home::new();
    let n = 32;
    let barrier = Arc::new(Barrier::new(n));
    let daemons: Arc<Mutex<Vec<Daemon>>> = Arc::default();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            let daemons = daemons.clone();
            let paths = home.paths.clone();
            let mut c = home.cmd();
            std::thread::spawn(move || {
                let (id, env) = envelope(Some(PROJECT));
                c.args(["run", "--spawned"])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null());
                barrier.wait();
                let mut child = c.spawn().unwrap();
                let line = read_line_with_deadline(child.stdout.take().unwrap());
                if line.starts_with("READY") {
                    daemons.lock().unwrap().push(Daemon {
                        pid: child.id(),
                        child: Some(child),
                    });
                } else {
                    let _ = child.wait();
                }
                let mut client = None;
                wait_until("the winner to answer", || {
                    client = Client::connect(&paths).ok();
                    client.is_some()
                });
                let mut c = client.unwrap();
                let (_, _, dup) = accepted(c.emit(&env).unwrap());
                assert!(!dup);
                (id, c.welcome.pid, line)
            })
        })
        .collect();
    let results: Vec<(String, u32, String)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    let spawned = daemons.lock().unwrap().len();
    assert_eq!(
        spawned,
        1,
        "exactly one of 32 racing daemons must serve: {:?}",
        results.iter().map(|r| &r.2).collect::<Vec<_>>()
    );
    let pid = daemons.lock().unwrap()[0].pid;
    let running = format!("RUNNING pid={pid}");
    assert_eq!(
        results.iter().filter(|r| r.2 == running).count(),
        n - 1,
        "every loser names the winner: {:?}",
        results.iter().map(|r| &r.2).collect::<Vec<_>>()
    );
    assert!(
        results.iter().all(|(_, p, _)| *p == pid),
        "all served by one daemon"
    );
    let stored = rows(&home.paths);
    assert_eq!(stored.len(), n);
    let mut ids: Vec<_> = stored.iter().map(|r| r.1.clone()).collect();
    ids.sort();
    let mut want: Vec<_> = results.into_iter().map(|r| r.0).collect();
    want.sort();
    assert_eq!(ids, want, "every event accepted exactly once");
}

#[test]
fn kill_dash_nine_mid_burst_loses_and_duplicates_nothing() {
    let home = Home::new();
    let mut d = home.start();
    let acked: Arc<Mutex<Vec<(String, u64, u64)>>> = Arc::default();
    let tried: Arc<Mutex<Vec<String>>> = Arc::default();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let paths = home.paths.clone();
            let acked = acked.clone();
            let tried = tried.clone();
            std::thread::spawn(move || {
                let Ok(mut c) = Client::connect(&paths) else {
                    return;
                };
                loop {
                    let (id, env) = envelope(Some(PROJECT));
                    tried.lock().unwrap().push(id.clone());
                    match c.emit(&env) {
                        Ok(Response::Accepted {
                            lamport_clock, seq, ..
                        }) => acked.lock().unwrap().push((id, lamport_clock, seq)),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    wait_until("some events are acked", || {
        acked.lock().unwrap().len() >= 300
    });
    d.kill9();
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let stored = rows(&home.paths);
    let stored_ids: std::collections::HashMap<_, _> =
        stored.iter().map(|r| (r.1.clone(), (r.2, r.0))).collect();
    // (event_id is UNIQUE in the schema, so "no duplicate row" cannot fail;
    // the re-send below is what shows duplicates are recognised.)
    assert_lamport_rises(&stored);
    for (id, lamport, seq) in &acked {
        let (l, s) = stored_ids
            .get(id)
            .unwrap_or_else(|| panic!("acked event {id} lost after kill -9"));
        assert_eq!((*l as u64, *s as u64), (*lamport, *seq));
    }
    // Stale socket is left behind; a new daemon recovers it, and re-sending
    // every attempted event adds only the ones that were never acked.
    assert!(home.paths.socket().exists());
    let _d2 = home.start();
    let mut c = Client::connect(&home.paths).unwrap();
    let tried = tried.lock().unwrap().clone();
    for id in &tried {
        let (_, seq, dup) = accepted(c.emit(&envelope_with_id(id, Some(PROJECT))).unwrap());
        if let Some((_, s)) = stored_ids.get(id) {
            assert!(dup && seq == *s as u64);
        } else {
            assert!(!dup);
        }
    }
    assert_eq!(rows(&home.paths).len(), tried.len());
}

#[test]
fn stale_socket_file_is_recovered() {
    let home = Home::new();
    std::fs::create_dir_all(home.paths.socket_dir()).unwrap();
    std::fs::set_permissions(
        home.paths.socket_dir(),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    // A socket nobody listens on, as a crashed daemon leaves it.
    drop(std::os::unix::net::UnixListener::bind(home.paths.socket()).unwrap());
    assert!(home.paths.socket().exists());
    assert!(UnixStream::connect(home.paths.socket()).is_err());
    let _d = home.start();
    emit_one(&home.paths);
}

#[test]
fn socket_dir_that_is_a_symlink_is_refused() {
    let home = Home::new();
    let elsewhere = home.root().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, home.paths.socket_dir()).unwrap();
    let (d, line) = home.spawn(&[]);
    assert!(d.is_none());
    assert!(
        line.starts_with("ERROR") && line.contains("symlink"),
        "{line}"
    );
}

#[test]
fn spool_is_ingested_in_event_id_order_and_bad_files_are_rejected() {
    let home = Home::new();
    let spool = home.paths.spool_dir();
    std::fs::create_dir_all(&spool).unwrap();
    let mut ids: Vec<String> = (0..5).map(|_| ulid::Ulid::new().to_string()).collect();
    ids.sort();
    // Written in reverse order: ingestion must still follow event_id order.
    for id in ids.iter().rev() {
        std::fs::write(
            home.paths.spool_file(id),
            envelope_with_id(id, Some(PROJECT)),
        )
        .unwrap();
    }
    std::fs::write(spool.join("01BADBADBADBADBADBADBADBAD.json"), "{not json").unwrap();
    std::fs::write(spool.join(".tmp-in-progress.json"), "partial").unwrap();
    let _d = home.start();
    let stored = rows(&home.paths);
    assert_eq!(
        stored.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        ids,
        "spool ingested in event_id order"
    );
    let rejected = home.paths.spool_rejected_dir();
    assert!(rejected.join("01BADBADBADBADBADBADBADBAD.json").exists());
    let reason =
        std::fs::read_to_string(rejected.join("01BADBADBADBADBADBADBADBAD.json.reason")).unwrap();
    assert!(reason.contains("JSON"), "{reason}");
    assert!(
        spool.join(".tmp-in-progress.json").exists(),
        "temp files untouched"
    );
    for id in &ids {
        assert!(!home.paths.spool_file(id).exists());
    }

    // On request, while running.
    let late = ulid::Ulid::new().to_string();
    std::fs::write(
        home.paths.spool_file(&late),
        envelope_with_id(&late, Some(PROJECT)),
    )
    .unwrap();
    let mut c = Client::connect(&home.paths).unwrap();
    assert_eq!(c.status().spool_backlog, 1);
    match c.request(&Request::IngestSpool).unwrap() {
        Response::Done { message } => assert!(message.contains("1 ingested"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(rows(&home.paths).len(), 6);
}

#[test]
fn python_queue_and_clock_are_adopted_once() {
    let home = Home::new();
    let db = rusqlite::Connection::open(home.paths.legacy_queue_db()).unwrap();
    db.execute_batch(
        "CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL,
            event_type TEXT NOT NULL, data TEXT NOT NULL, timestamp INTEGER NOT NULL,
            retry_count INTEGER DEFAULT 0, coalesce_key TEXT);",
    )
    .unwrap();
    let known = ulid::Ulid::new().to_string();
    let unknown = ulid::Ulid::new().to_string();
    // Python's json.dumps spacing, an unknown type and an extra key: must survive byte for byte.
    let known_data = format!(
        r#"{{"event_id": "{known}", "event_type": "WPStatusChanged", "aggregate_id": "WP02", "aggregate_type": "WorkPackage", "payload": {{"wp_id": "WP02", "from_lane": "planned", "to_lane": "doing"}}, "node_id": "abcdefabcdef", "lamport_clock": 700, "causation_id": null, "timestamp": "2026-02-07T08:34:22.123456+00:00", "team_slug": "local", "project_uuid": "{PROJECT}", "project_slug": "legacy"}}"#
    );
    let unknown_data = format!(
        r#"{{"event_id": "{unknown}", "event_type": "DossierScanned", "lamport_clock": 650, "project_uuid": null, "x_extra": [1, 2]}}"#
    );
    for (id, ty, data) in [
        (&known, "WPStatusChanged", &known_data),
        (&unknown, "DossierScanned", &unknown_data),
    ] {
        db.execute(
            "INSERT INTO queue (event_id, event_type, data, timestamp) VALUES (?1, ?2, ?3, 1)",
            [id, ty, data],
        )
        .unwrap();
    }
    drop(db);
    std::fs::write(
        home.paths.clock_json(),
        r#"{"value": 900, "node_id": "abcdefabcdef", "updated_at": "2026-02-07T08:34:22+00:00"}"#,
    )
    .unwrap();

    let mut d = home.start();
    let conn = store(&home.paths);
    let got: String = conn
        .query_row(
            "SELECT envelope FROM events WHERE event_id = ?1",
            [&known],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(got, known_data, "envelope adopted untouched");
    let got: (String, String) = conn
        .query_row(
            "SELECT envelope, state FROM events WHERE event_id = ?1",
            [&unknown],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(got, (unknown_data.clone(), "held".to_string()));
    drop(conn);
    let mut c = Client::connect(&home.paths).unwrap();
    let (lamport, _, _) = accepted(c.emit(&envelope(Some(PROJECT)).1).unwrap());
    assert_eq!(lamport, 901, "clock continues from clock.json");
    drop(c);
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0));

    // Second start: nothing adopted twice.
    let _d = home.start();
    assert_eq!(rows(&home.paths).len(), 3);
}

#[test]
fn newer_schema_is_refused_with_a_clear_message() {
    let home = Home::new();
    std::fs::create_dir_all(home.paths.state_dir()).unwrap();
    let db = rusqlite::Connection::open(home.paths.store()).unwrap();
    db.execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(db);
    let (d, line) = home.spawn(&[]);
    assert!(d.is_none());
    assert!(
        line.starts_with("ERROR") && line.contains("newer") && line.contains("99"),
        "{line}"
    );
    assert!(home.paths.store().exists(), "the store is left alone");
}

#[test]
fn corrupt_store_is_moved_aside_and_a_fresh_one_started() {
    let home = Home::new();
    std::fs::create_dir_all(home.paths.state_dir()).unwrap();
    std::fs::write(home.paths.store(), vec![0x5a; 8192]).unwrap();
    let _d = home.start();
    let aside: Vec<_> = std::fs::read_dir(home.paths.state_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the corrupt file is kept aside");
    assert_eq!(std::fs::read(aside[0].path()).unwrap(), vec![0x5a; 8192]);
    emit_one(&home.paths);
}

#[test]
fn hostile_frames_do_not_kill_the_daemon() {
    let home = Home::new();
    let _d = home.start();
    // Oversized header after the handshake: typed error, then closed.
    let mut c = Client::connect(&home.paths).unwrap();
    c.stream
        .write_all(&((MAX_FRAME as u32) + 1).to_le_bytes())
        .unwrap();
    match ipc::read_frame::<_, Response>(&mut c.stream).unwrap() {
        Response::Error { kind, .. } => assert_eq!(kind, ErrorKind::BadRequest),
        other => panic!("{other:?}"),
    }
    let mut rest = Vec::new();
    let _ = c.stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "connection closed");

    // Garbage body after the handshake.
    let mut c = Client::connect(&home.paths).unwrap();
    c.stream.write_all(&[3, 0, 0, 0, 0xff, 0xff, 0xff]).unwrap();
    assert!(matches!(
        ipc::read_frame::<_, Response>(&mut c.stream).unwrap(),
        Response::Error {
            kind: ErrorKind::BadRequest,
            ..
        }
    ));

    // Garbage instead of Hello.
    let mut s = UnixStream::connect(home.paths.socket()).unwrap();
    s.write_all(&[2, 0, 0, 0, 0xff, 0xff]).unwrap();
    assert!(matches!(
        ipc::read_frame::<_, HelloReply>(&mut s).unwrap(),
        HelloReply::Incompatible { .. }
    ));

    // Truncated frame, then hang up.
    let mut s = UnixStream::connect(home.paths.socket()).unwrap();
    s.write_all(&[100, 0, 0, 0, 1, 2]).unwrap();
    drop(s);

    // Still serving.
    emit_one(&home.paths);
}

#[test]
fn version_skew_both_ways() {
    let home = Home::new();
    let mut d = home.start();
    // An older client (lower major) never gets to restart a newer daemon.
    let mut old = Hello::current("0.0.1");
    old.major = 0;
    let err = Client::connect_with(&home.paths, old).err().unwrap();
    assert!(err.to_string().contains("upgrade spec-kitty"), "{err}");

    // A newer client may ask this older daemon to drain and exit.
    let mut newer = Hello::current("9.9.9");
    newer.minor += 1;
    let mut s = UnixStream::connect(home.paths.socket()).unwrap();
    ipc::write_frame(&mut s, &newer).unwrap();
    match ipc::read_frame::<_, HelloReply>(&mut s).unwrap() {
        HelloReply::Incompatible { daemon, .. } => assert_eq!(daemon.pid, d.pid),
        other => panic!("{other:?}"),
    }
    ipc::write_frame(
        &mut s,
        &Request::Shutdown {
            reason: "newer CLI".into(),
        },
    )
    .unwrap();
    assert!(matches!(
        ipc::read_frame::<_, Response>(&mut s).unwrap(),
        Response::Done { .. }
    ));
    assert_eq!(d.wait_exit(), Some(0));

    // Restart cooldown: a second skew shutdown right away is refused.
    let _d2 = home.start();
    let mut s = UnixStream::connect(home.paths.socket()).unwrap();
    ipc::write_frame(&mut s, &newer).unwrap();
    let _: HelloReply = ipc::read_frame(&mut s).unwrap();
    ipc::write_frame(
        &mut s,
        &Request::Shutdown {
            reason: "again".into(),
        },
    )
    .unwrap();
    match ipc::read_frame::<_, Response>(&mut s).unwrap() {
        Response::Error { message, .. } => assert!(message.contains("cooldown"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(Client::connect(&home.paths).is_ok(), "still running");
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let home = Home::new();
    let mut d = home.start();
    let mut c = Client::connect(&home.paths).unwrap();
    accepted(c.emit(&envelope(Some(PROJECT)).1).unwrap());
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0));
    assert!(!home.paths.socket().exists());
    // The lock is free again: a new daemon starts.
    let _d2 = home.start();
    assert_eq!(rows(&home.paths).len(), 1);
}

#[test]
fn reload_picks_up_team_slug() {
    let home = Home::new();
    let _d = home.start();
    let mut c = Client::connect(&home.paths).unwrap();
    std::fs::write(
        home.paths.credentials(),
        "[tokens]\naccess = \"secret-access\"\nrefresh = \"secret-refresh\"\n[user]\nusername = \"ann\"\nteam_slug = \"acme\"\n[server]\nurl = \"https://example.invalid\"\n",
    )
    .unwrap();
    assert!(matches!(
        c.request(&Request::Reload).unwrap(),
        Response::Done { .. }
    ));
    let (id, env) = envelope(Some(PROJECT));
    accepted(c.emit(&env).unwrap());
    let stored: String = store(&home.paths)
        .query_row(
            "SELECT envelope FROM events WHERE event_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(stored.contains(r#""team_slug":"acme""#), "{stored}");
    let s = c.status();
    assert!(s.auth.logged_in);
    assert_eq!(s.auth.username.as_deref(), Some("ann"));
    let json = serde_json::to_string(&s).unwrap();
    assert!(!json.contains("secret-"), "no token in status");
}

#[test]
fn peer_with_another_uid_is_refused() {
    if unsafe { libc::geteuid() } != 0 {
        spec_kitty_e2e::skip(
            "peer_with_another_uid_is_refused",
            "needs root to connect as uid 65534",
        );
        return;
    }
    let home = Home::new();
    let _d = home.start();
    // Open the doors at the file-system level so only the daemon's own peer
    // check stands between uid 65534 and the socket.
    for p in [
        home.sb.root().to_path_buf(),
        home.sb.home(),
        home.root(),
        home.paths.socket_dir(),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(home.paths.socket(), std::fs::Permissions::from_mode(0o777)).unwrap();

    // Everything the child needs is prepared before fork (no allocation after).
    let hello = ipc::encode_frame(&Hello::current("intruder")).unwrap();
    let path = home.paths.socket();
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (i, b) in path.as_os_str().as_encoded_bytes().iter().enumerate() {
        addr.sun_path[i] = *b as libc::c_char;
    }
    // SAFETY: the child only makes raw syscalls on memory prepared above, then _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        unsafe {
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                libc::_exit(10);
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if libc::connect(
                fd,
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_un>() as u32,
            ) != 0
            {
                libc::_exit(11); // the OS refused: not what we are testing
            }
            libc::write(fd, hello.as_ptr().cast(), hello.len());
            let mut buf = [0u8; 64];
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::_exit(if n <= 0 { 0 } else { 1 });
        }
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status));
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "uid 65534 must be refused by the daemon (10 = setuid failed, 11 = could not connect, 1 = got an answer)"
    );
    // And we are still served.
    emit_one(&home.paths);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let home = Home::new();
    let _d = home.start();
    let mut c = Client::connect(&home.paths).unwrap();
    let mut writer = c.stream.try_clone().unwrap();
    let envs: Vec<(String, String)> = (0..200).map(|_| envelope(Some(PROJECT))).collect();
    let to_send = envs.clone();
    let sender = std::thread::spawn(move || {
        for (i, (_, env)) in to_send.into_iter().enumerate() {
            ipc::write_frame(&mut writer, &Request::Emit { envelope: env }).unwrap();
            if i == 99 {
                ipc::write_frame(&mut writer, &Request::Status).unwrap();
            }
        }
    });
    let mut seqs = Vec::new();
    for i in 0..201 {
        match ipc::read_frame::<_, Response>(&mut c.stream).unwrap() {
            Response::Accepted { seq, .. } => seqs.push(seq),
            Response::Status { json } => {
                assert_eq!(i, 100, "status answered in request order");
                let s: spec_kitty_protocol::ipc::DaemonStatus =
                    serde_json::from_str(&json).unwrap();
                assert!(s.queue_depth >= 100);
            }
            other => panic!("{other:?}"),
        }
    }
    sender.join().unwrap();
    assert_eq!(seqs.len(), 200);
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "answers in order");
    let ids: Vec<String> = rows(&home.paths).into_iter().map(|r| r.1).collect();
    assert_eq!(ids, envs.into_iter().map(|e| e.0).collect::<Vec<_>>());
}

#[test]
fn second_signal_exits_at_once() {
    let home = Home::new();
    let mut d = home.start();
    // A peer that never says Hello keeps the drain waiting (bounded by the
    // drain deadline); the second SIGTERM must not wait for it.
    let _stuck = UnixStream::connect(home.paths.socket()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    d.signal(libc::SIGTERM);
    wait_until("the socket is gone (draining started)", || {
        !home.paths.socket().exists()
    });
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(130), "second signal: immediate exit");
}

#[test]
fn a_one_shot_connection_is_answered_in_full_then_closed_by_the_daemon() {
    // What the CLI's warm path does: Hello and the requests in one write,
    // the write side shut at once. The daemon must still answer every
    // request, then close its end (so the CLI's exit wakes nobody).
    let home = Home::new();
    let _d = home.start();
    let envs: Vec<(String, String)> = (0..3).map(|_| envelope(Some(PROJECT))).collect();
    let mut buf = ipc::encode_frame(&Hello::current("test")).unwrap();
    for (_, env) in &envs {
        buf.extend(
            ipc::encode_frame(&Request::Emit {
                envelope: env.clone(),
            })
            .unwrap(),
        );
    }
    let mut s = UnixStream::connect(home.paths.socket()).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(&buf).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    match ipc::read_frame::<_, HelloReply>(&mut s).unwrap() {
        HelloReply::Welcome(_) => {}
        other => panic!("{other:?}"),
    }
    for _ in &envs {
        accepted(ipc::read_frame::<_, Response>(&mut s).unwrap());
    }
    let mut rest = Vec::new();
    let n = s
        .read_to_end(&mut rest)
        .expect("the daemon closes the connection (a timeout here means it kept it open)");
    assert_eq!(n, 0, "nothing after the answers: {rest:?}");
    let ids: Vec<String> = rows(&home.paths).into_iter().map(|r| r.1).collect();
    assert_eq!(ids, envs.into_iter().map(|e| e.0).collect::<Vec<_>>());
}
