//! `.kittify/.dashboard`: the per-project record of the running dashboard.
//!
//! The format is spec-kitty 2.1.3's (`dashboard/lifecycle.py`): up to four
//! lines, URL, port, token, pid, blank lines ignored. Keeping it lets either
//! CLI find, reuse or stop a dashboard the other started (both answer
//! `/api/health` with `project_path` and `token`, and `/api/shutdown?token=`).
//! A record is a hint, never trusted: a dashboard is "running" only when its
//! health answer names this project and this token.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The record's path for a project root.
pub fn path(root: &Path) -> PathBuf {
    root.join(".kittify").join(".dashboard")
}

/// What the record says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub url: Option<String>,
    pub port: Option<u16>,
    pub token: Option<String>,
    pub pid: Option<u32>,
}

impl Record {
    /// Parses the text leniently, as 2.1.3 does: a field that does not
    /// parse is absent.
    pub fn parse(text: &str) -> Record {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        Record {
            url: lines.first().map(|s| s.to_string()),
            port: lines.get(1).and_then(|s| s.parse().ok()),
            token: lines.get(2).map(|s| s.to_string()),
            pid: lines.get(3).and_then(|s| s.parse().ok()),
        }
    }

    /// The text 2.1.3 writes (token and pid lines only when known).
    pub fn to_text(&self) -> String {
        let mut lines = vec![
            self.url.clone().unwrap_or_default(),
            self.port.map(|p| p.to_string()).unwrap_or_default(),
        ];
        if let Some(t) = &self.token {
            lines.push(t.clone());
        }
        if let Some(p) = self.pid {
            lines.push(p.to_string());
        }
        lines.join("\n") + "\n"
    }
}

/// Reads the record under the repository's link rule; `None` when there is
/// none, or it cannot be read (a record is only a hint).
pub fn read(root: &Path) -> Option<Record> {
    let bytes = crate::fsutil::read_repo_file(root, &path(root)).ok()??;
    Some(Record::parse(&String::from_utf8_lossy(&bytes)))
}

/// Writes the record atomically under the link rule (a record planted as
/// a link out of the repository is refused, never written through).
pub fn write(root: &Path, rec: &Record) -> Result<(), crate::error::CliError> {
    let p = path(root);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::error::CliError::io_at("create", dir, &e))?;
    }
    crate::fsutil::write_repo_file(root, &p, rec.to_text().as_bytes())
}

/// Removes the record; a missing one is fine.
pub fn clear(root: &Path) {
    let _ = std::fs::remove_file(path(root));
}

/// Removes the record only if it still names process `pid` (a server
/// leaving must not erase the record of a newer one).
pub fn clear_if_pid(root: &Path, pid: u32) {
    if read(root).is_some_and(|r| r.pid == Some(pid)) {
        clear(root);
    }
}

/// One small HTTP/1.1 exchange with a loopback server: the status code and
/// body, or `None` when nothing answers in time. Enough for the health and
/// shutdown calls (no redirects, no chunking: our server and 2.1.3's both
/// send a plain body and close).
pub fn http_get(port: u16, path_query: &str, timeout: Duration) -> Option<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    write!(
        s,
        "GET {path_query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).ok()?;
    let code: u16 = status.split_whitespace().nth(1)?.parse().ok()?;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
    }
    let mut body = String::new();
    r.take(1 << 20).read_to_string(&mut body).ok()?;
    Some((code, body))
}

/// Does a dashboard answer on `port` for the project at `root` (and, when
/// the record has one, with its token)? 2.1.3's check, same keys.
pub fn healthy(port: u16, root: &Path, token: Option<&str>) -> bool {
    let Some((200, body)) = http_get(port, "/api/health", Duration::from_millis(500)) else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return false;
    };
    let Some(remote) = v["project_path"].as_str() else {
        return false;
    };
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if canon(Path::new(remote)) != canon(root) {
        return false;
    }
    match token {
        Some(t) => v["token"].as_str() == Some(t),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_reads_and_writes_2_1_3s_four_lines() {
        let text = "http://127.0.0.1:9237\n9237\nabc123\n4242\n";
        let r = Record::parse(text);
        assert_eq!(
            r,
            Record {
                url: Some("http://127.0.0.1:9237".into()),
                port: Some(9237),
                token: Some("abc123".into()),
                pid: Some(4242)
            }
        );
        assert_eq!(r.to_text(), text);
        // 2.1.3 without token/pid, with blank lines and junk.
        let old = Record::parse("\nhttp://127.0.0.1:9300\n\nnot-a-port\n");
        assert_eq!(old.port, None);
        assert_eq!(old.url.as_deref(), Some("http://127.0.0.1:9300"));
        assert_eq!(Record::parse(""), Record::default());
    }
}
