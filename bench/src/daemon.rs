//! Daemon figures over real processes and the real socket: cold start to
//! first durable ack, durable ingest throughput with concurrent clients on
//! persistent connections, and resident memory idle and with a backlog.

use crate::stats::{summarize, Summary};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use spec_kitty_e2e::daemon::Syncd;
use spec_kitty_e2e::Sandbox;
use spec_kitty_protocol::client;
use spec_kitty_protocol::envelope::{EventEnvelope, Origin};
use spec_kitty_protocol::ipc::{Hello, Request, Response};
use spec_kitty_protocol::Paths;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A foreground daemon (`spec-kitty-syncd run EXTRA...`) on a sandbox
/// under the work dir; the end-to-end crate's guard kills it when this is
/// dropped (and the sandbox, dropped later, stops any daemon left on it).
pub struct Daemon {
    syncd: Syncd,
    pub paths: Paths,
}

impl Daemon {
    /// `BIN run EXTRA...` on `sandbox`, once it answers.
    pub fn start(bin: &Path, sandbox: &Sandbox, extra: &[&str]) -> Result<Daemon> {
        let d = Daemon::spawn(bin, sandbox, extra)?;
        Client::connect_within(&d.paths, Duration::from_secs(10))?;
        Ok(d)
    }

    /// `BIN run EXTRA...` on `sandbox`, without waiting for it.
    fn spawn(bin: &Path, sandbox: &Sandbox, extra: &[&str]) -> Result<Daemon> {
        let child = Syncd::command(bin, sandbox, extra)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Daemon {
            syncd: Syncd::from_child(child),
            paths: sandbox.paths(),
        })
    }

    pub fn rss_kib(&self) -> Result<u64> {
        rss_kib(self.syncd.pid)
    }
}

/// Resident set size of a process, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")
}

/// A persistent, handshaken connection (the protocol crate's client) that
/// emits typed envelopes.
pub struct Client(client::Client);

impl Client {
    pub fn connect(paths: &Paths) -> Result<Client> {
        let hello = Hello::current(env!("CARGO_PKG_VERSION"));
        Ok(Client(client::Client::connect(paths, &hello, None)?))
    }

    pub fn connect_within(paths: &Paths, budget: Duration) -> Result<Client> {
        let deadline = Instant::now() + budget;
        loop {
            match Client::connect(paths) {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context("daemon did not answer in time"))
                }
                Err(_) => std::thread::sleep(Duration::from_micros(500)),
            }
        }
    }

    /// Emits one envelope; returns its Lamport value once durable.
    pub fn emit(&mut self, env: &EventEnvelope) -> Result<u64> {
        self.send(env)?;
        self.accepted()
    }

    fn send(&mut self, env: &EventEnvelope) -> Result<()> {
        let req = Request::Emit {
            envelope: env.to_json(),
        };
        Ok(self.0.send(&req)?)
    }

    fn accepted(&mut self) -> Result<u64> {
        match self.0.recv()? {
            Response::Accepted { lamport_clock, .. } => Ok(lamport_clock),
            other => bail!("emit answered {other:?}"),
        }
    }
}

/// A realistic envelope: a lane change in a project with full identity.
pub fn sample_envelope(project: usize) -> EventEnvelope {
    let origin = Origin {
        node_id: spec_kitty_protocol::node_id(),
        team_slug: "local".into(),
        project_uuid: Some(format!("00000000-0000-4000-8000-{project:012}")),
        project_slug: Some(format!("bench-{project}")),
        git_branch: Some("main".into()),
        head_commit_sha: Some("0".repeat(40)),
        repo_slug: None,
    };
    spec_kitty_protocol::sample::lane_change("bench", "001-bench", &origin)
}

/// Cold start: spawn the daemon on an empty home, connect as soon as the
/// socket answers, emit, and stop the clock at the durable ack.
pub fn cold_start(bin: &Path, scratch: &Path, n: usize) -> Result<Summary> {
    let mut samples = Vec::with_capacity(n);
    // Every run's empty home exists before the first, and all are removed
    // after the last: no run pays for cleaning up after another.
    let homes: Vec<Sandbox> = (0..n).map(|_| Sandbox::new_in(scratch)).collect();
    for sandbox in &homes {
        let env = sample_envelope(1);
        let t = Instant::now();
        let d = Daemon::spawn(bin, sandbox, &[])?;
        let mut c = Client::connect_within(&d.paths, Duration::from_secs(10))?;
        c.emit(&env)?;
        samples.push(t.elapsed());
    }
    Ok(summarize(samples))
}

#[derive(Debug, Serialize)]
pub struct Throughput {
    pub clients: usize,
    pub events: usize,
    pub seconds: f64,
    pub events_per_sec: f64,
    /// Per-emit round trip (send → durable ack) as each client saw it.
    pub ack: Summary,
}

/// `clients` threads, one persistent connection each, `per_client` emits
/// each. With `window` 1 every emit waits for its durable ack before the
/// next is sent (a CLI's pattern); a larger window keeps that many emits in
/// flight on the connection (the daemon answers in request order), as a
/// batching client would.
pub fn ingest(
    paths: &Paths,
    clients: usize,
    per_client: usize,
    window: usize,
) -> Result<Throughput> {
    // Envelopes are built before the clock starts: we measure the daemon.
    let batches: Vec<Vec<EventEnvelope>> = (0..clients)
        .map(|c| (0..per_client).map(|_| sample_envelope(c % 8)).collect())
        .collect();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients + 1));
    let handles: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            let paths = paths.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                let mut c = Client::connect(&paths)?;
                barrier.wait();
                let mut acks = Vec::with_capacity(batch.len());
                let mut sent_at = std::collections::VecDeque::with_capacity(window);
                for env in &batch {
                    if sent_at.len() == window.max(1) {
                        c.accepted()?;
                        acks.push(
                            sent_at
                                .pop_front()
                                .map(|t: Instant| t.elapsed())
                                .unwrap_or_default(),
                        );
                    }
                    sent_at.push_back(Instant::now());
                    c.send(env)?;
                }
                while let Some(t) = sent_at.pop_front() {
                    c.accepted()?;
                    acks.push(t.elapsed());
                }
                Ok(acks)
            })
        })
        .collect();
    barrier.wait();
    let t = Instant::now();
    let mut acks = Vec::new();
    for h in handles {
        acks.extend(
            h.join()
                .map_err(|_| anyhow::anyhow!("client thread panicked"))??,
        );
    }
    let seconds = t.elapsed().as_secs_f64();
    let events = clients * per_client;
    Ok(Throughput {
        clients,
        events,
        seconds,
        events_per_sec: events as f64 / seconds,
        ack: summarize(acks),
    })
}

/// Size of the daemon's store on disk (database + WAL).
pub fn store_bytes(paths: &Paths) -> u64 {
    let db: PathBuf = paths.store();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    [db, wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}
