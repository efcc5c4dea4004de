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
//! sent but not yet acked when the daemon died) are allowed and counted:
//! the server's dedupe by `event_id` turns them into "stored once".
//!
//! Knobs: `SK_CRASH_ROUNDS` (default 20) rounds per test; `SK_CRASH_SEED`
//! replays the random kill points of a failed run (the seed is printed).

mod faults_common;

use faults_common::*;
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
/// random point, then check the store. Returns how many were acked.
fn round(sb: &Sandbox, rng: &mut Rng, acked: &Acked, round_no: u64) -> usize {
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
                    let (id, env) = envelope(PROJECT);
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
        // comes first), so the kill lands anywhere in a group commit.
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
    acked.lock().unwrap().len() - before
}

fn crash_rounds(logged_in: bool) {
    let rounds = knob("SK_CRASH_ROUNDS", 20);
    let mut rng = Rng::new();
    let sb = Sandbox::new();
    let server = logged_in.then(|| {
        let s = RefServer::start(&["--user", "alice:secret:team-a"]);
        login(&sb, &s, "alice", "secret");
        s
    });
    let acked: Acked = Arc::default();
    let mut per_round = Vec::new();
    for n in 0..rounds {
        per_round.push(round(&sb, &mut rng, &acked, n));
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
    let (_, last) = envelope(PROJECT);
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
    // Every stored event reaches the server exactly once.
    let want: HashSet<&String> = by_id.keys().collect();
    let (events, listed) = wait_long(
        "the server to hold every stored event",
        Duration::from_secs(90),
        || {
            let (events, listed) = server_events(&server);
            if want.iter().all(|id| events.contains_key(*id)) {
                Ok((events, listed))
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
        listed,
        events.len(),
        "an event_id is listed twice at the server"
    );
    assert_eq!(
        events.len(),
        want.len(),
        "the server holds events we never stored"
    );
    let redelivered = events.values().filter(|d| **d > 1).count();
    eprintln!(
        "server: {} events stored once each; {redelivered} were delivered more than once on the wire (deduplicated)",
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
    crash_rounds(false);
}

#[test]
fn kill9_at_random_points_while_logged_in_server_stores_each_event_once() {
    crash_rounds(true);
}
