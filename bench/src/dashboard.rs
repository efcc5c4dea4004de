//! The local dashboard (`spec-kitty dashboard`) on the shared corpus: how
//! fast it answers the page and the board, how long a lane change takes to
//! reach an open page, and its idle memory.

use crate::cli::{run, Project};
use crate::stats::{summarize, Summary};
use anyhow::{bail, Context, Result};
use spec_kitty_e2e::cmdline;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The corpus beside the repository (`../shared/corpus/...`), if present.
pub fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/spec-kitty-2026-02-07");
    p.is_dir().then_some(p)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let t = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &t)?;
        } else {
            std::fs::write(&t, std::fs::read(e.path())?)?;
        }
    }
    Ok(())
}

/// A running dashboard over a copy of the corpus (plus one feature of our
/// own whose WP01 the latency run moves); killed on drop (the project's
/// sandbox then stops its daemon).
pub struct Dashboard {
    pub project: Project,
    cli: PathBuf,
    pub port: u16,
    pub pid: u32,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self
            .project
            .command(&self.cli)
            .args(["dashboard", "--kill"])
            .output();
    }
}

impl Dashboard {
    pub fn start(root: &Path, cli: &Path, corpus: &Path) -> Result<Dashboard> {
        let p = crate::cli::our_project(root, cli, "dashboard-corpus")?;
        for e in std::fs::read_dir(corpus)? {
            let e = e?;
            copy_tree(&e.path(), &p.dir.join("kitty-specs").join(e.file_name()))?;
        }
        let out = run(p.command(cli).args(["dashboard", "--json"]))?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        Ok(Dashboard {
            port: v["port"].as_u64().context("port")? as u16,
            pid: v["pid"].as_u64().context("pid")? as u32,
            project: p,
            cli: cli.to_path_buf(),
        })
    }

    /// One GET on a fresh connection, as a browser's first load does; the
    /// body size.
    fn get(&self, path: &str) -> Result<usize> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut all = Vec::new();
        s.read_to_end(&mut all)?;
        if !all.starts_with(b"HTTP/1.1 200") {
            bail!(
                "GET {path}: {}",
                String::from_utf8_lossy(&all[..all.len().min(200)])
            );
        }
        Ok(all.len())
    }

    /// Times `n` GETs of `path`; the summary and the answer's size.
    pub fn time_get(&self, path: &str, n: usize) -> Result<(Summary, usize)> {
        let size = self.get(path)?;
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            self.get(path)?;
            samples.push(t.elapsed());
        }
        Ok((summarize(samples), size))
    }

    /// Times `n` lane changes from the start of `move-task` to the
    /// `feature` event on an open event stream.
    pub fn time_to_page(&self, n: usize) -> Result<Summary> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "GET /events HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        )?;
        let mut r = BufReader::new(s);
        // (event name, data) of the next event on the stream.
        let next_event = |r: &mut BufReader<TcpStream>| -> Result<(String, String)> {
            let mut name = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line)? == 0 {
                    bail!("event stream closed");
                }
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    return Ok((name, d.trim().to_string()));
                }
            }
        };
        while next_event(&mut r)?.0 != "board" {}
        let wp01_lane = |data: &str| -> Option<String> {
            let v: serde_json::Value = serde_json::from_str(data).ok()?;
            (v["slug"] == "001-bench-feature").then_some(())?;
            let wps = v["wps"].as_array()?;
            let wp = wps.iter().find(|w| w["id"] == "WP01")?;
            wp["lane"].as_str().map(str::to_string)
        };
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            let (to, shown) = if i % 2 == 0 {
                ("doing", "in_progress")
            } else {
                ("planned", "planned")
            };
            let t = Instant::now();
            let mut cmd = self.project.command(&self.cli);
            let mut flags = vec!["--feature", "001-bench-feature"];
            if to == "planned" {
                flags.extend(["--force", "--reason", "bench"]);
            }
            cmd.args(cmdline::move_task("WP01", to, &flags));
            run(&mut cmd)?;
            // Only the event that shows this move counts.
            loop {
                let (name, data) = next_event(&mut r)?;
                if name == "feature" && wp01_lane(&data).as_deref() == Some(shown) {
                    break;
                }
            }
            samples.push(t.elapsed());
        }
        Ok(summarize(samples))
    }
}
