//! Crash faults: `kill -9` of the daemon at random points of a concurrent
//! burst, many rounds on the same store, with and without a logged-in
//! transport talking to the reference server.
//!
//! What must hold after every round: every event the daemon answered
//! `Accepted` is in the store with the Lamport value and `seq` it was
//! given, no `event_id` is stored twice, and Lamport values are strictly
//! increasing in `seq` order. Logged in, after the last recovery: the
//! server holds every stored event exactly once (`/api/v1/events/` lists
//! each `event_id` once, none missing). Re-deliveries on the wire (an event
//! sent but not yet acked when the daemon died) are allowed, but bounded:
//! no more than the in-flight events the daemons logged putting back to
//! pending, plus the pending events a batch upload may have carried at
//! each kill.
//!
//! The same with a flaky server (20 % HTTP 500s, WebSockets cut after
//! every 40th stored frame) on top of the kills.
//!
//! Also: kill -9 during the ingest of a 3000-file spool (between a chunk's
//! commit and the removal of its files), and real `spec-kitty` processes
//! whose auto-spawned daemon is killed again and again (every event a
//! command reported, accepted or spooled, ends up stored once).
//!
//! Knobs: `SK_CRASH_ROUNDS` (default 20) rounds per test; `SK_CRASH_SEED`
//! replays the random kill points of a failed run (the seed is printed).

use crate::faults_common;

use faults_common::*;
use spec_kitty_e2e::cmdline::add_history;
use spec_kitty_e2e::{RefServer, Sandbox};
use spec_kitty_protocol::ipc::Response;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// xorshift64*: a reproducible source of kill points.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = knob(
            "SK_CRASH_SEED",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1,
        );
        eprintln!("SK_CRASH_SEED={seed}");
        Rng(seed.max(1))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

const CLIENTS: usize = 6;

/// Accepted events of all rounds: event_id → (lamport, seq).
type Acked = Arc<Mutex<HashMap<String, (u64, u64)>>>;

/// One round: start the daemon, burst from `CLIENTS` threads, kill -9 at a
/// random point, then check the store. Returns how many were acked, and
/// how many pending events a batch upload may have had on the wire when
/// the kill landed (a batch does not mark its events in flight).
fn round(sb: &Sandbox, rng: &mut Rng, acked: &Acked, round_no: u64) -> (usize, u64) {
    let mut d;
    let before = acked.lock().unwrap().len();
    // One round in five kills the daemon during start-up (store open,
    // spool ingest, transport connect), before it necessarily answers.
    let early = round_no % 5 == 4;
    if early {
        d = Syncd::spawn(sb);
        std::thread::sleep(Duration::from_millis(rng.below(40)));
    } else {
        d = Syncd::start(sb);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let round_acked = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let paths = sb.paths();
            let acked = acked.clone();
            let stop = stop.clone();
            let round_acked = round_acked.clone();
            std::thread::spawn(move || {
                let Ok(mut c) = Client::connect(&paths) else {
                    return;
                };
                while !stop.load(Ordering::Relaxed) {
                    let (id, env) = envelope(Some(PROJECT));
                    match c.emit(&env) {
                        Ok(Response::Accepted {
                            lamport_clock,
                            seq,
                            duplicate,
                        }) => {
                            assert!(!duplicate, "a fresh event_id answered duplicate");
                            let prev = acked.lock().unwrap().insert(id, (lamport_clock, seq));
                            assert!(prev.is_none());
                            round_acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Response::Error { .. }) | Err(_) => return,
                        Ok(other) => panic!("unexpected answer to Emit: {other:?}"),
                    }
                }
            })
        })
        .collect();
    if !early {
        // Kill after a random number of acks (or a random time, whichever
        // comes first), so the kill lands anywhere in a group commit. The
        // clock starts at the first ack, so a loaded machine still gets a
        // burst going before the kill.
        let first = Instant::now() + Duration::from_secs(10);
        while round_acked.load(Ordering::Relaxed) == 0 && Instant::now() < first {
            std::thread::sleep(Duration::from_micros(200));
        }
        let want = 1 + rng.below(150) as usize;
        let until = Instant::now() + Duration::from_millis(20 + rng.below(300));
        while round_acked.load(Ordering::Relaxed) < want && Instant::now() < until {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    d.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread");
    }
    // The store after the crash (no daemon running: read it as is).
    let rows = rows(sb);
    let by_id = check_store(&rows);
    for (id, (lamport, seq)) in acked.lock().unwrap().iter() {
        let r = by_id
            .get(id)
            .unwrap_or_else(|| panic!("round {round_no}: accepted event {id} lost after kill -9"));
        assert_eq!(
            (r.lamport as u64, r.seq as u64),
            (*lamport, *seq),
            "round {round_no}: event {id} changed after kill -9"
        );
    }
    let pending = rows.iter().filter(|r| r.state == "pending").count() as u64;
    (acked.lock().unwrap().len() - before, pending.min(1000))
}

fn crash_rounds(logged_in: bool, flaky: bool) {
    let rounds = knob("SK_CRASH_ROUNDS", 20);
    let mut rng = Rng::new();
    let sb = Sandbox::new();
    let server = logged_in.then(|| {
        let s = RefServer::start(&["--user", "alice:secret:team-a"]);
        login(&sb, &s, "alice", "secret");
        if flaky {
            // 500s on a fifth of the requests and WebSockets cut after
            // every 40th stored frame, on top of the kills.
            faults(
                &s,
                serde_json::json!({"fail_percent": 20, "ws_drop_after_frames": 40}),
            );
        }
        s
    });
    let acked: Acked = Arc::default();
    let mut per_round = Vec::new();
    let mut batch_at_kill = 0;
    for n in 0..rounds {
        let (got, pending) = round(&sb, &mut rng, &acked, n);
        per_round.push(got);
        batch_at_kill += pending;
    }
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "{} rounds, {} events accepted (per round: {per_round:?})",
        rounds,
        acked.len()
    );
    assert!(
        per_round.iter().filter(|n| **n > 0).count() as u64 >= rounds / 2,
        "too few rounds got any event accepted: {per_round:?}"
    );

    // Recovery: a last daemon comes up on the same store and serves.
    let _d = Syncd::start(&sb);
    let mut c = Client::connect(&sb.paths()).unwrap();
    let (_, last) = envelope(Some(PROJECT));
    let (lamport, _, _) = accepted(c.emit(&last).unwrap());
    let rows = rows(&sb);
    let by_id = check_store(&rows);
    assert!(
        lamport as i64 >= rows.iter().map(|r| r.lamport).max().unwrap(),
        "the clock went backwards after the crashes"
    );
    for id in acked.keys() {
        assert!(by_id.contains_key(id), "accepted event {id} lost");
    }

    let Some(server) = server else { return };
    if flaky {
        // The faults really fired (else this is the plain logged-in run).
        let failures = stat(&server, "injected_failures");
        eprintln!(
            "flaky server: {failures} injected failures, {} sockets cut",
            stat(&server, "ws_dropped_by_fault")
        );
        assert!(failures >= 1, "no injected 500 ever reached the daemon");
        faults(&server, serde_json::json!({"clear": true}));
        // Skip whatever backoff the faults left behind.
        let _ = c.request(&spec_kitty_protocol::ipc::Request::SyncNow { wait: false });
    }
    // Every stored event reaches the server exactly once.
    let want: HashSet<&String> = by_id.keys().collect();
    let events = wait_long(
        "the server to hold every stored event",
        Duration::from_secs(90),
        || {
            let (events, _) = server_events(&server);
            if want.iter().all(|id| events.contains_key(*id)) {
                Ok(events)
            } else {
                let st = status(&sb).map(|s| {
                    format!(
                        "queue_depth {} connection {:?}",
                        s.queue_depth, s.connection
                    )
                });
                Err(format!(
                    "server has {}/{} events; daemon: {st:?}",
                    events.len(),
                    want.len()
                ))
            }
        },
    );
    assert_eq!(
        events.len(),
        want.len(),
        "the server holds events we never stored"
    );
    // Re-sends on the wire: only what was unconfirmed at each drop (in
    // flight when a socket or session ended, or caught in a batch upload by
    // a kill), never everything again.
    let resent = spec_kitty_e2e::assert_resends_bounded(&sb, &server, batch_at_kill);
    eprintln!(
        "server: {} events stored once each; {resent} re-sends reached it (bound: logged unconfirmed sends + {batch_at_kill} pending at the kills)",
        events.len()
    );
    wait_long("the queue to drain", Duration::from_secs(30), || {
        let s = status(&sb)?;
        if s.queue_depth == 0 {
            Ok(())
        } else {
            Err(format!("queue_depth {}", s.queue_depth))
        }
    });
    let sent = rows_in_state(&sb, "sent");
    assert_eq!(sent, want.len(), "every stored event is marked sent");
}

fn rows_in_state(sb: &Sandbox, state: &str) -> usize {
    rows(sb).iter().filter(|r| r.state == state).count()
}

#[test]
fn kill9_at_random_points_of_a_burst_loses_nothing_store_only() {
    crash_rounds(false, false);
}

#[test]
fn kill9_at_random_points_while_logged_in_server_stores_each_event_once() {
    crash_rounds(true, false);
}

#[test]
fn kill9_at_random_points_with_a_flaky_server_still_stores_each_event_once() {
    crash_rounds(true, true);
}

#[test]
fn kill9_during_spool_ingest_reingests_without_duplicates() {
    // Spooled events (a CLI that ran offline for a long time); the daemon
    // ingests them at start in chunks and deletes each file after its
    // commit. Every round adds a fresh batch of files, so each kill has an
    // ingest to interrupt; killing it at random points of that start must
    // neither lose nor duplicate an event, and the files must end up gone.
    const PER_ROUND: usize = 1200;
    let mut rng = Rng::new();
    let sb = Sandbox::new();
    let paths = sb.paths();
    std::fs::create_dir_all(paths.spool_dir()).unwrap();
    let mut ids: Vec<String> = Vec::new();
    let rounds = knob("SK_CRASH_ROUNDS", 20).min(10);
    let mut left = Vec::new();
    for n in 0..rounds {
        // Later ULIDs than any earlier round's: name order stays time order.
        let mut fresh: Vec<String> = (0..PER_ROUND).map(|_| ulid()).collect();
        fresh.sort();
        for id in &fresh {
            std::fs::write(paths.spool_file(id), envelope_with_id(id, Some(PROJECT))).unwrap();
        }
        ids.extend(fresh);
        let before = spool_files(&sb);
        let mut d = Syncd::spawn(&sb);
        if n % 3 == 0 {
            // Anywhere in start-up.
            std::thread::sleep(Duration::from_millis(5 + rng.below(120)));
        } else {
            // Between a chunk's commit and the removal of its files: wait
            // until the spool shrank below a random mark, files remaining.
            let mark = 1 + rng.below(before as u64 - 1) as usize;
            let until = Instant::now() + Duration::from_secs(10);
            while spool_files(&sb) > mark && Instant::now() < until {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
        d.kill9();
        left.push(spool_files(&sb));
        if let Some(rows) = try_rows(&sb) {
            check_store(&rows);
        }
    }
    eprintln!("spool files left after each kill: {left:?}");
    // The kills landed while there was an ingest to interrupt.
    let busy = left.iter().filter(|n| **n > 0).count();
    assert!(
        busy * 2 >= left.len(),
        "most kills must land while spool files remain, not on an idle daemon: {left:?}"
    );
    let _d = Syncd::start(&sb);
    assert_eq!(spool_files(&sb), 0, "every spool file ingested and removed");
    let rows = rows(&sb);
    check_store(&rows);
    let stored: Vec<String> = rows.into_iter().map(|r| r.event_id).collect();
    assert_eq!(stored, ids, "each spooled event once, in event_id order");
}

fn spool_files(sb: &Sandbox) -> usize {
    std::fs::read_dir(sb.paths().spool_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn kill9_under_a_burst_of_real_clis_every_reported_event_survives() {
    // Real `spec-kitty` processes keep emitting while the daemon they
    // auto-spawned is killed -9 again and again; each command must report
    // its event accepted or spooled, and every reported event must end up
    // in the store exactly once (the next command respawns the daemon).
    let kills = knob("SK_CRASH_ROUNDS", 20).min(8);
    let mut rng = Rng::new();
    let sb = Sandbox::new();
    let projects: Vec<std::path::PathBuf> = (0..3)
        .map(|i| sb.project(&format!("crash-{i}"), "feat"))
        .collect();
    let setup = rows(&sb).len();
    let stop = Arc::new(AtomicBool::new(false));
    let reported: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut pids = HashSet::new();
    std::thread::scope(|s| {
        for (w, dir) in projects.iter().enumerate() {
            let stop = stop.clone();
            let reported = reported.clone();
            let sb = &sb;
            s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let note = format!("crash {w} {n}");
                    let o = sb.sk(dir, &add_history("WP01", &note, &["--json"]));
                    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                    for e in v["events"].as_array().unwrap() {
                        reported.lock().unwrap().push((
                            e["event_id"].as_str().unwrap().to_string(),
                            e["delivery"].as_str().unwrap().to_string(),
                        ));
                    }
                    n += 1;
                }
            });
        }
        for _ in 0..kills {
            std::thread::sleep(Duration::from_millis(150 + rng.below(400)));
            if let Some(pid) = sb.daemon_pid() {
                pids.insert(pid);
                spec_kitty_e2e::signal(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
    });
    let reported = reported.lock().unwrap().clone();
    let spooled = reported.iter().filter(|r| r.1 == "spooled").count();
    // Whatever went to the spool is picked up by the (re)started daemon.
    let _d = if sb.daemon_pid().is_none() {
        Some(Syncd::start(&sb))
    } else {
        None
    };
    let mut c = Client::connect(&sb.paths()).unwrap();
    assert!(matches!(
        c.request(&spec_kitty_protocol::ipc::Request::IngestSpool)
            .unwrap(),
        Response::Done { .. }
    ));
    let rows = rows(&sb);
    let by_id = check_store(&rows);
    for (id, how) in &reported {
        assert!(how == "accepted" || how == "spooled", "{id}: {how}");
        assert!(by_id.contains_key(id), "reported ({how}) event {id} lost");
    }
    assert_eq!(rows.len(), setup + reported.len(), "no extra events");
    eprintln!(
        "{} daemons killed, {} commands, {spooled} spooled, all stored once",
        pids.len(),
        reported.len()
    );
    assert!(pids.len() >= 2, "the daemon was respawned and killed again");
}
