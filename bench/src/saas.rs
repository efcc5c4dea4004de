//! Delivery figures against the reference server on loopback: emit →
//! server-stored latency through the real CLI, the real-time sending rate
//! of a logged-in daemon, and the rate at which a backlog queued while
//! logged out drains through the batch endpoint after login.

use crate::cli::{run, Project};
use crate::daemon::ingest;
use crate::stats::{summarize, Summary};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "bench";
const PASSWORD: &str = "bench-password";

/// A reference server on a free loopback port, killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start(bin: &Path) -> Result<Server> {
        let mut child = Command::new(bin)
            .args([
                "--port",
                "0",
                "--user",
                &format!("{USER}:{PASSWORD}:bench-team"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .context("no `listening on` line")?
            .to_string();
        Ok(Server { child, base })
    }

    fn get(&self, path: &str) -> Result<Value> {
        let mut resp = ureq::get(&format!("{}{path}", self.base)).call()?;
        Ok(resp.body_mut().with_config().limit(1 << 30).read_json()?)
    }

    fn stored(&self) -> Result<u64> {
        self.get("/__control/stats")?["events_stored"]
            .as_u64()
            .context("events_stored")
    }

    /// Waits until the server holds `target` events; returns when it did.
    fn wait_stored(&self, target: u64, limit: Duration) -> Result<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            if self.stored()? >= target {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!("the server did not store {target} events within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// `spec-kitty auth login` for a project's home (which `Reload`s its daemon).
pub fn login(p: &Project, cli: &Path, server: &Server) -> Result<()> {
    let mut child = p
        .command(cli)
        .args([
            "auth",
            "login",
            "--server",
            &server.base,
            "-u",
            USER,
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(format!("{PASSWORD}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "auth login failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// CLI start → the server's `received_at`, for `n` lane changes made one
/// at a time (as a person or agent makes them).
pub fn latency(p: &Project, cli: &Path, server: &Server, n: usize) -> Result<Summary> {
    let state = crate::cli::Wp01State::capture(p)?;
    let mut started = Vec::with_capacity(n);
    for _ in 0..n {
        state.restore()?;
        let t0 = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
        let out = run(p.command(cli).args([
            "agent",
            "tasks",
            "move-task",
            "WP01",
            "--to",
            "doing",
            "--no-auto-commit",
            "--json",
        ]))?;
        let v: Value = serde_json::from_slice(&out.stdout)?;
        let id = v["events"][0]["event_id"]
            .as_str()
            .context("event id in --json output")?
            .to_string();
        started.push((id, t0));
        std::thread::sleep(Duration::from_millis(5));
    }
    // The project's setup (specify, tasks add) sent events of its own: wait
    // for every one of these moves, not for a count that theirs can make up.
    let before = Instant::now();
    let received = loop {
        let events = server.get("/api/v1/events/?limit=100000")?;
        let received: std::collections::HashMap<String, i64> = events["events"]
            .as_array()
            .context("events")?
            .iter()
            .filter_map(|e| {
                Some((
                    e["event_id"].as_str()?.to_string(),
                    spec_kitty_protocol::time::parse_micros(e["received_at"].as_str()?)?,
                ))
            })
            .collect();
        if started.iter().all(|(id, _)| received.contains_key(id))
            || before.elapsed() > Duration::from_secs(60)
        {
            break received;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let samples = started
        .iter()
        .map(|(id, t0)| {
            let at = received
                .get(id)
                .with_context(|| format!("event {id} never reached the server"))?;
            Ok(Duration::from_micros((at - t0).max(0) as u64))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(summarize(samples))
}

/// Events per second from the first emit until the server stored the last,
/// for `n` events emitted by 16 pipelined clients to a connected daemon.
pub fn live_rate(p: &Project, server: &Server, n: usize) -> Result<f64> {
    let paths = p.sandbox.paths();
    let before = server.stored()?;
    let t0 = Instant::now();
    let t = ingest(&paths, 16, n / 16, 32)?;
    let done = server.wait_stored(before + t.events as u64, Duration::from_secs(600))?;
    Ok(t.events as f64 / done.duration_since(t0).as_secs_f64())
}

/// Events per second from `auth login` until the server stored a backlog
/// of `n` events queued while logged out.
pub fn drain_rate(p: &Project, cli: &Path, server: &Server, n: usize) -> Result<f64> {
    let paths = p.sandbox.paths();
    let t = ingest(&paths, 16, n / 16, 32)?;
    let before = server.stored()?;
    let t0 = Instant::now();
    login(p, cli, server)?;
    let done = server.wait_stored(before + t.events as u64, Duration::from_secs(900))?;
    Ok(t.events as f64 / done.duration_since(t0).as_secs_f64())
}
