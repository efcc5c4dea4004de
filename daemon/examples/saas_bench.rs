//! Benchmark of delivery to the SaaS, over the real binaries and the
//! reference server on loopback:
//! - emit → server-stored latency: `spec-kitty agent tasks move-task` start
//!   (wall clock taken just before spawning the CLI) → the refserver's
//!   `received_at` of that event, p50/p99;
//! - real-time sending rate: 16 pipelined IPC clients emit while logged in;
//!   events/s from the first emit until the server stored the last;
//! - drain rate of a 100 000-event backlog: emitted while logged out, then
//!   `auth login`; events/s from the login until the server stored them all.
//!
//! Build and run (release, all three binaries in the same profile dir):
//!   cargo build --release -p spec-kitty -p spec-kitty-syncd -p spec-kitty-refserver --examples
//!   target/release/examples/saas_bench [--latency 200] [--live 20000] [--backlog 100000]

use spec_kitty_protocol::ipc::{self, Hello, HelloReply, Request, Response};
use spec_kitty_protocol::Paths;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROJECT: &str = "3f0b5c1e-9a1d-4c55-9d44-6f1e2a3b4c5d";

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join(name)
}

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn refserver() -> (Guard, String) {
    let mut child = Command::new(bin("spec-kitty-refserver"))
        .args(["--port", "0", "--user", "alice:secret:team-a"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn spec-kitty-refserver (build it in this profile)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    (Guard(child), base)
}

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn paths(&self) -> Paths {
        Paths::new(self.dir.path().join("sk"))
    }
    fn cli(&self, cwd: &Path) -> Command {
        let mut c = Command::new(bin("spec-kitty"));
        c.current_dir(cwd)
            .env("HOME", self.dir.path())
            .env("SPEC_KITTY_HOME", self.dir.path().join("sk"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("SPEC_KITTY_SYNCD_IDLE_EXIT_SECS", "0")
            .stdin(Stdio::null());
        c
    }
    fn run(&self, cwd: &Path, args: &[&str]) -> std::process::Output {
        let o = self.cli(cwd).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "spec-kitty {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }
    fn login(&self, base: &str) {
        let mut c = self.cli(self.dir.path());
        c.args([
            "auth",
            "login",
            "--server",
            base,
            "-u",
            "alice",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"secret\n").unwrap();
        assert!(child.wait().unwrap().success());
    }
    fn stop(&self) {
        let _ = self.cli(self.dir.path()).args(["sync", "stop"]).output();
    }
}

fn get(base: &str, path: &str) -> serde_json::Value {
    ureq::get(&format!("{base}{path}"))
        .call()
        .unwrap()
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_json()
        .unwrap()
}

fn stored(base: &str) -> u64 {
    get(base, "/__control/stats")["events_stored"]
        .as_u64()
        .unwrap()
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
    serde_json::json!({
        "event_id": ulid::Ulid::new().to_string(), "event_type": "WPStatusChanged",
        "aggregate_id": "WP01", "aggregate_type": "WorkPackage",
        "payload": {"wp_id": "WP01", "from_lane": "planned", "to_lane": "in_progress",
                    "actor": "user", "feature_slug": "001-demo", "policy_metadata": null},
        "node_id": "000000000000", "lamport_clock": 0, "causation_id": null,
        "timestamp": spec_kitty_protocol::time::now_utc(), "team_slug": "local",
        "project_uuid": PROJECT, "project_slug": "bench", "git_branch": "main",
        "head_commit_sha": null, "repo_slug": null
    })
    .to_string()
}

/// `events` emits from 16 pipelined clients (window 64 each).
fn emit_many(paths: &Paths, events: usize) {
    let clients = 16;
    let per = events / clients;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let paths = paths.clone();
            std::thread::spawn(move || {
                let envs: Vec<String> = (0..per).map(|_| envelope()).collect();
                let mut s = connect(&paths);
                let mut w = s.try_clone().unwrap();
                let (tx, rx) = std::sync::mpsc::sync_channel::<()>(64);
                let sender = std::thread::spawn(move || {
                    for e in envs {
                        tx.send(()).unwrap();
                        ipc::write_frame(&mut w, &Request::Emit { envelope: e }).unwrap();
                    }
                });
                for _ in 0..per {
                    match ipc::read_frame::<_, Response>(&mut s).unwrap() {
                        Response::Accepted { .. } => {}
                        other => panic!("{other:?}"),
                    }
                    rx.recv().unwrap();
                }
                sender.join().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn wait_stored(base: &str, target: u64, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        if stored(base) >= target {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "server never stored {target} events"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n_lat = arg("--latency", 200);
    let n_live = arg("--live", 20_000);
    let n_backlog = arg("--backlog", 100_000);

    // 1. Latency through the CLI.
    {
        let (_rs, base) = refserver();
        let home = Home {
            dir: tempfile::tempdir().unwrap(),
        };
        home.login(&base);
        let repo = home.dir.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let git = |args: &[&str]| {
            let o = Command::new("git")
                .current_dir(&repo)
                .args(args)
                .env("HOME", home.dir.path())
                .output()
                .unwrap();
            assert!(o.status.success());
        };
        git(&["init", "-q", "-b", "main"]);
        git(&[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "i",
        ]);
        home.run(&repo, &["init", "--here"]);
        home.run(&repo, &["specify", "latency"]);
        home.run(&repo, &["tasks", "add", "Bench"]);
        let mut starts = Vec::new();
        for i in 0..n_lat {
            let to = if i % 2 == 0 { "doing" } else { "planned" };
            let t0 = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
            let o = home.run(
                &repo,
                &["agent", "tasks", "move-task", "WP01", "--to", to, "--json"],
            );
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let id = v["events"][0]["event_id"].as_str().unwrap().to_string();
            let t1 = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
            starts.push((id, t0, t1));
            // Let each event travel alone (a user types; agents pause too).
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(500));
        let events = get(&base, "/api/v1/events/?limit=100000");
        let received: std::collections::HashMap<String, i64> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["event_id"].as_str().unwrap().to_string(),
                    spec_kitty_protocol::time::parse_micros(e["received_at"].as_str().unwrap())
                        .unwrap(),
                )
            })
            .collect();
        let mut lat: Vec<f64> = starts
            .iter()
            .map(|(id, t0, _)| (received[id] - t0) as f64 / 1000.0)
            .collect();
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
        // The part after the CLI exited (the CLI's own run is the rest).
        let mut after: Vec<f64> = starts
            .iter()
            .map(|(id, _, t1)| (received[id] - t1) as f64 / 1000.0)
            .collect();
        after.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mut cli: Vec<f64> = starts
            .iter()
            .map(|(_, t0, t1)| (t1 - t0) as f64 / 1000.0)
            .collect();
        cli.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "  of which the CLI process (spawn to exit): p50={:.2} p99={:.2} ms; CLI exit to server-stored: p50={:.2} p99={:.2} ms (negative = stored before the CLI exited)",
            pct(&cli, 0.5),
            pct(&cli, 0.99),
            pct(&after, 0.5),
            pct(&after, 0.99)
        );
        let via_ws = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["received_via"] == "ws")
            .count();
        println!(
            "latency_cli_start_to_server_stored_ms: n={} p50={:.2} p90={:.2} p99={:.2} max={:.2} (via ws: {via_ws})",
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.9),
            pct(&lat, 0.99),
            lat[lat.len() - 1]
        );
        home.stop();
    }

    // 2. Real-time sending rate while logged in.
    {
        let (_rs, base) = refserver();
        let home = Home {
            dir: tempfile::tempdir().unwrap(),
        };
        home.login(&base);
        home.run(home.dir.path(), &["sync", "start"]);
        let before = stored(&base);
        let t0 = Instant::now();
        emit_many(&home.paths(), n_live);
        let emitted = t0.elapsed();
        let done = wait_stored(&base, before + n_live as u64, Duration::from_secs(600));
        let s = get(&base, "/__control/stats");
        println!(
            "live_send_rate_events_per_s: {:.0} ({} events; emitting took {:.2} s, all stored after {:.2} s; ws frames {}, batch events {})",
            n_live as f64 / (done - t0).as_secs_f64(),
            n_live,
            emitted.as_secs_f64(),
            (done - t0).as_secs_f64(),
            s["ws_frames_received"],
            s["batch_events_success"]
        );
        home.stop();
    }

    // 3. Backlog drain by batch.
    {
        let (_rs, base) = refserver();
        let home = Home {
            dir: tempfile::tempdir().unwrap(),
        };
        home.run(home.dir.path(), &["sync", "start"]);
        emit_many(&home.paths(), n_backlog);
        let before = stored(&base);
        let t0 = Instant::now();
        home.login(&base);
        let done = wait_stored(&base, before + n_backlog as u64, Duration::from_secs(1200));
        let s = get(&base, "/__control/stats");
        println!(
            "backlog_drain_events_per_s: {:.0} ({} events in {:.2} s; {} batch requests)",
            n_backlog as f64 / (done - t0).as_secs_f64(),
            n_backlog,
            (done - t0).as_secs_f64(),
            s["batch_requests"]
        );
        home.stop();
    }
}
