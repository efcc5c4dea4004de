//! Concurrency soak: many real `spec-kitty` processes (lane moves and
//! history notes) in several projects at once, against one auto-spawned,
//! logged-in daemon and the reference server, for a bounded time.
//!
//! What must hold: one daemon the whole time (same pid); every event a
//! command reported (accepted, or spooled and then ingested) is in the
//! store exactly once, nothing else is; Lamport values are strictly
//! increasing in `seq` order; the server stores every event once and its
//! received order has strictly increasing Lamport values too (delivery
//! order = seq order); the daemon's RSS stays flat (end < 2 × start +
//! 10 MiB, sampled from `/proc/<pid>/status`).
//!
//! Knobs: `SK_SOAK_SECS` (default 45) is how long the CLIs run;
//! `SK_SOAK_WORKERS` (default 8) how many run at once (each owns one work
//! package of one of four projects, so lane moves never race on a file;
//! each project gets as many work packages as it needs).

use crate::faults_common;

use faults_common::*;
use spec_kitty_e2e::sync::{json_out, syncd_pids};
use spec_kitty_e2e::{RefServer, Sandbox};
use spec_kitty_protocol::ipc::{Request, Response};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the commands of one worker reported: (event_id, delivery).
type Reported = Arc<Mutex<Vec<(String, String)>>>;

fn worker(sb: &Sandbox, dir: PathBuf, wp: String, until: Instant, out: Reported) -> usize {
    let mut n = 0;
    let mut lane = "planned";
    while Instant::now() < until {
        let args: Vec<String> = if n % 3 == 2 {
            let note = format!("soak note {n}");
            [
                "agent",
                "tasks",
                "add-history",
                &wp,
                "--note",
                &note,
                "--json",
            ]
            .map(String::from)
            .to_vec()
        } else {
            lane = if lane == "planned" {
                "doing"
            } else {
                "planned"
            };
            ["agent", "tasks", "move-task", &wp, "--to", lane, "--json"]
                .map(String::from)
                .to_vec()
        };
        let o = sb.sk(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
        let v = json_out(&o);
        let events = v["events"]
            .as_array()
            .unwrap_or_else(|| panic!("no events in {v}"));
        assert_eq!(events.len(), 1, "{v}");
        let mut out = out.lock().unwrap();
        for e in events {
            out.push((
                e["event_id"].as_str().unwrap().to_string(),
                e["delivery"].as_str().unwrap().to_string(),
            ));
        }
        n += 1;
    }
    n
}

#[test]
fn many_clis_in_many_projects_for_a_while_every_event_once_in_lamport_order() {
    let secs = knob("SK_SOAK_SECS", 45);
    let workers = knob("SK_SOAK_WORKERS", 8) as usize;
    let sb = Sandbox::new();
    let server = RefServer::start(&["--user", "alice:secret:team-a"]);

    // Log in through the real CLI (password on stdin).
    let o = sb.login(&server.base, "alice", "secret");
    assert!(
        o.status.success(),
        "auth login: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Four projects with enough work packages for each worker to own one;
    // the first command spawns the daemon.
    let per_project = workers.div_ceil(4).max(1);
    let projects: Vec<PathBuf> = (0..4)
        .map(|i| {
            let dir = sb.project(&format!("soak-{i}"), "feat");
            for n in 2..=per_project {
                sb.sk(&dir, &["tasks", "add", &format!("Work package {n}")]);
            }
            dir
        })
        .collect();
    let pid = sb.daemon_pid().expect("the CLI spawned a daemon");
    let setup = rows(&sb).len();
    std::thread::sleep(Duration::from_millis(500));
    let rss_start = rss_kib(pid).expect("daemon RSS");

    let until = Instant::now() + Duration::from_secs(secs);
    let reported: Reported = Arc::default();
    let counts: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let dir = projects[w % projects.len()].clone();
                let wp = format!("WP{:02}", 1 + w / projects.len());
                let out = reported.clone();
                let sb = &sb;
                s.spawn(move || worker(sb, dir, wp, until, out))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let rss_end = rss_kib(pid).expect("daemon still running");
    assert_eq!(sb.daemon_pid(), Some(pid), "one daemon the whole time");
    assert_eq!(syncd_pids(&sb), vec![pid], "exactly one daemon process");

    let reported = reported.lock().unwrap().clone();
    let spooled = reported.iter().filter(|r| r.1 == "spooled").count();
    // Spooled events (a command that missed its budget on a loaded
    // machine) are ingested on request.
    let mut c = Client::connect(&sb.paths()).unwrap();
    assert!(matches!(
        c.request(&Request::IngestSpool).unwrap(),
        Response::Done { .. }
    ));
    for (id, how) in &reported {
        assert!(how == "accepted" || how == "spooled", "{id}: {how}");
    }
    let ids: HashSet<&String> = reported.iter().map(|r| &r.0).collect();
    assert_eq!(
        ids.len(),
        reported.len(),
        "a command reported an event_id twice"
    );

    let rows = rows(&sb);
    let by_id = check_store(&rows);
    for id in &ids {
        assert!(
            by_id.contains_key(*id),
            "reported event {id} is not in the store"
        );
    }
    assert_eq!(
        rows.len(),
        setup + reported.len(),
        "the store holds events no command reported"
    );

    // The server: each event once, Lamport increasing in received order.
    let want: HashSet<&String> = by_id.keys().collect();
    wait_long(
        "the server to hold every stored event",
        Duration::from_secs(60),
        || {
            let (events, _) = server_events(&server);
            let have = want.iter().filter(|id| events.contains_key(**id)).count();
            if have == want.len() {
                Ok(())
            } else {
                Err(format!("{have}/{}", want.len()))
            }
        },
    );
    let (st, body) = server.get("/api/v1/events/");
    assert_eq!(st, 200);
    let list = body["events"].as_array().unwrap();
    assert_eq!(
        list.len(),
        want.len(),
        "the server holds events no command reported"
    );
    // Once on the wire too: re-sends only for what the daemon logged as
    // unconfirmed (none in a run without faults, unless acks were late).
    spec_kitty_e2e::assert_resends_bounded(&sb, &server, 0);
    let lamports: Vec<i64> = list
        .iter()
        .map(|e| e["lamport_clock"].as_i64().unwrap())
        .collect();
    for (i, w) in lamports.windows(2).enumerate() {
        assert!(
            w[1] > w[0],
            "server received Lamport {} after {} (positions {i}, {})",
            w[1],
            w[0],
            i + 1
        );
    }

    eprintln!(
        "soak {secs} s, {workers} workers: {} commands ({counts:?}), {spooled} spooled; daemon RSS {rss_start} KiB -> {rss_end} KiB",
        reported.len()
    );
    assert!(
        rss_end < 2 * rss_start + 10 * 1024,
        "daemon RSS grew from {rss_start} KiB to {rss_end} KiB"
    );
}
