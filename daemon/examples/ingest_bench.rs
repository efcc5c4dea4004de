//! Benchmark of the daemon's hand-off path, over the real binary:
//! cold start to first durable ack, warm emit round trips (p50/p99),
//! durable ingest throughput with 1 and N clients on persistent connections
//! (group commit on and off), and daemon RSS idle and after a backlog.
//!
//! Run with a release build (the daemon binary is taken from beside the
//! example, i.e. the same profile):
//!   cargo build --release -p spec-kitty-syncd --examples --bins
//!   target/release/examples/ingest_bench [--clients 16] [--events 20000] [--backlog 200000]
//! Prints one `name: value` line per figure (easy to fold into a harness).

use spec_kitty_protocol::ipc::{self, Hello, HelloReply, Request, Response};
use spec_kitty_protocol::Paths;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROJECT: &str = "3f0b5c1e-9a1d-4c55-9d44-6f1e2a3b4c5d";

fn daemon_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SYNCD_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join("spec-kitty-syncd")
}

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(home: &Path, extra: &[&str]) -> (Guard, Duration) {
    let start = Instant::now();
    let mut child = Command::new(daemon_bin())
        .env("SPEC_KITTY_HOME", home)
        .env("HOME", home)
        .env("SPEC_KITTY_SYNCD_IDLE_EXIT_SECS", "0")
        .env(
            "SPEC_KITTY_SYNCD_LOG",
            "info,spec_kitty_syncd::writer=debug",
        )
        .args(["run", "--spawned"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the daemon (build it first)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("READY"), "daemon did not start: {line}");
    (Guard(child), start.elapsed())
}

fn connect(paths: &Paths) -> UnixStream {
    let mut s = UnixStream::connect(paths.socket()).expect("connect");
    ipc::write_frame(&mut s, &Hello::current("bench")).unwrap();
    match ipc::read_frame::<_, HelloReply>(&mut s).unwrap() {
        HelloReply::Welcome(_) => s,
        other => panic!("{other:?}"),
    }
}

fn envelope() -> String {
    let id = ulid::Ulid::new().to_string();
    serde_json::json!({
        "event_id": id, "event_type": "WPStatusChanged", "aggregate_id": "WP01",
        "aggregate_type": "WorkPackage",
        "payload": {"wp_id": "WP01", "from_lane": "planned", "to_lane": "in_progress",
                    "actor": "user", "feature_slug": "001-demo", "policy_metadata": null},
        "node_id": "000000000000", "lamport_clock": 0, "causation_id": null,
        "timestamp": "2026-02-07T08:34:22.123456+00:00", "team_slug": "local",
        "project_uuid": PROJECT, "project_slug": "demo", "git_branch": "main",
        "head_commit_sha": null, "repo_slug": null
    })
    .to_string()
}

fn emit(s: &mut UnixStream, env: String) {
    ipc::write_frame(s, &Request::Emit { envelope: env }).unwrap();
    match ipc::read_frame::<_, Response>(s).unwrap() {
        Response::Accepted { .. } => {}
        other => panic!("{other:?}"),
    }
}

/// Sends every envelope on one connection: strictly one at a time with
/// `window` 1, else up to `window` emits in flight (answers in order).
fn send_all(s: &mut UnixStream, envs: Vec<String>, window: usize) {
    if window <= 1 {
        for e in envs {
            emit(s, e);
        }
        return;
    }
    let n = envs.len();
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(window);
    let mut w = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        for e in envs {
            tx.send(()).unwrap();
            ipc::write_frame(&mut w, &Request::Emit { envelope: e }).unwrap();
        }
    });
    for _ in 0..n {
        match ipc::read_frame::<_, Response>(s).unwrap() {
            Response::Accepted { .. } => {}
            other => panic!("{other:?}"),
        }
        rx.recv().unwrap();
    }
    sender.join().unwrap();
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Events/s of `clients` persistent connections sending `events` in all.
/// `window` 1 = strict request/response; more = that many emits in flight
/// per connection (pipelined; answers still in order).
fn throughput(clients: usize, events: usize, group_commit: bool, window: usize) -> f64 {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::new(home.path());
    let extra: &[&str] = if group_commit {
        &[]
    } else {
        &["--no-group-commit"]
    };
    let (_g, _) = spawn(home.path(), extra);
    let per = events / clients;
    // Envelopes are built before the clock starts: we measure the daemon.
    let work: Vec<Vec<String>> = (0..clients)
        .map(|_| (0..per).map(|_| envelope()).collect())
        .collect();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients + 1));
    let threads: Vec<_> = work
        .into_iter()
        .map(|envs| {
            let paths = paths.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut s = connect(&paths);
                barrier.wait();
                send_all(&mut s, envs, window);
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for t in threads {
        t.join().unwrap();
    }
    let rate = (per * clients) as f64 / start.elapsed().as_secs_f64();
    // Average group size, from the daemon's debug log of each commit.
    let (mut commits, mut total) = (0u64, 0u64);
    for entry in std::fs::read_dir(paths.log_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains("group commit")) {
            if let Some(n) = line
                .split("events=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
            {
                commits += 1;
                total += n;
            }
        }
    }
    if commits > 0 {
        println!(
            "  ({commits} commits, {:.1} events per commit)",
            total as f64 / commits as f64
        );
    }
    rate
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let clients = arg("--clients", 16);
    let events = arg("--events", 20_000);
    let backlog = arg("--backlog", 200_000);
    println!("daemon: {}", daemon_bin().display());
    store_only(events);

    // Cold start to first durable ack (spawn → READY → connect → Emit → Accepted).
    let mut cold = Vec::new();
    let mut ready = Vec::new();
    for _ in 0..15 {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::new(home.path());
        let env = envelope();
        let start = Instant::now();
        let (_g, to_ready) = spawn(home.path(), &[]);
        let mut s = connect(&paths);
        emit(&mut s, env);
        cold.push(start.elapsed());
        ready.push(to_ready);
    }
    cold.sort();
    ready.sort();
    println!(
        "cold_start_to_first_ack_ms: p50 {:.1} min {:.1} max {:.1}",
        ms(cold[cold.len() / 2]),
        ms(cold[0]),
        ms(cold[cold.len() - 1])
    );
    println!(
        "cold_start_to_ready_ms: p50 {:.1}",
        ms(ready[ready.len() / 2])
    );

    // Warm emit round trips on a fresh connection each (what one CLI command does).
    {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::new(home.path());
        let (_g, _) = spawn(home.path(), &[]);
        let mut lat = Vec::new();
        for _ in 0..2000 {
            let env = envelope();
            let start = Instant::now();
            let mut s = connect(&paths);
            emit(&mut s, env);
            lat.push(start.elapsed());
        }
        lat.sort();
        println!(
            "warm_connect_hello_emit_ack_us: p50 {:.0} p99 {:.0}",
            us(lat[lat.len() / 2]),
            us(lat[lat.len() * 99 / 100])
        );
    }

    for (n, gc, window) in [
        (1, true, 1),
        (clients, true, 1),
        (1, true, 64),
        (clients, true, 64),
        (1, false, 1),
        (clients, false, 1),
    ] {
        let ev = if gc { events } else { events / 4 };
        println!(
            "durable_ingest_events_per_s: clients {n} group_commit {gc} window {window}: {:.0}",
            throughput(n, ev, gc, window)
        );
    }

    // RSS idle and after a backlog.
    {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::new(home.path());
        let (g, _) = spawn(home.path(), &[]);
        std::thread::sleep(Duration::from_millis(200));
        println!("rss_idle_kib: {}", rss_kib(g.0.id()));
        let per = backlog / clients;
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let paths = paths.clone();
                std::thread::spawn(move || {
                    let mut s = connect(&paths);
                    for _ in 0..per / 1000 {
                        send_all(&mut s, (0..1000).map(|_| envelope()).collect(), 64);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut s = connect(&paths);
        let t = Instant::now();
        ipc::write_frame(&mut s, &Request::Status).unwrap();
        let depth = match ipc::read_frame::<_, Response>(&mut s).unwrap() {
            Response::Status { json } => {
                serde_json::from_str::<ipc::DaemonStatus>(&json)
                    .unwrap()
                    .queue_depth
            }
            other => panic!("{other:?}"),
        };
        println!("status_with_backlog_ms: {:.1}", ms(t.elapsed()));
        println!(
            "rss_after_backlog_kib: {} (queue_depth {depth})",
            rss_kib(g.0.id())
        );
        let size = std::fs::metadata(paths.store())
            .map(|m| m.len())
            .unwrap_or(0);
        println!("store_bytes_after_backlog: {size}");
    }
}

/// The store's own ceiling: prebuilt envelopes committed in groups of 1000
/// straight into `Store::commit_emits` (no IPC, no parsing).
fn store_only(events: usize) {
    use spec_kitty_protocol::envelope::EventEnvelope;
    use spec_kitty_syncd::store::{Origin, Stamp, Store};
    let home = tempfile::tempdir().unwrap();
    let mut store = Store::open(
        &home.path().join("store.db"),
        Stamp {
            node_id: "000000000000".into(),
            team_slug: "local".into(),
        },
    )
    .unwrap();
    let envs: Vec<EventEnvelope> = (0..events)
        .map(|_| EventEnvelope::from_json(&envelope()).unwrap())
        .collect();
    let start = Instant::now();
    for chunk in envs.chunks(1000) {
        let batch = chunk.iter().map(|e| (e.clone(), Origin::Ipc)).collect();
        store.commit_emits(batch).unwrap();
    }
    println!(
        "store_only_commit_events_per_s (groups of 1000): {:.0}",
        events as f64 / start.elapsed().as_secs_f64()
    );
    let text = envelope();
    let start = Instant::now();
    for _ in 0..10_000 {
        let e = EventEnvelope::from_json(&text).unwrap();
        e.validate_unstamped().unwrap();
        std::hint::black_box(e.to_json());
    }
    println!(
        "parse_validate_serialise_us_per_event: {:.1}",
        us(start.elapsed()) / 10_000.0
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
