//! Shared helpers for the refserver's integration tests: spawn the real
//! binary on port 0, parse its `listening on` line, talk HTTP (ureq) and
//! WebSocket (tungstenite) to it, and kill it in `Drop` even when a test
//! panics.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub const DEADLINE: Duration = Duration::from_secs(20);
pub const PROJECT_A: &str = "550e8400-e29b-41d4-a716-446655440000";
pub const PROJECT_B: &str = "6f1c2a4e-9d3b-4c1e-8a7f-0b2d4e6f8a9c";

/// A running `spec-kitty-refserver`, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    pub base: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server with `args` (plus `--port 0` unless they name a port) and waits for its
    /// `listening on` line.
    pub fn start(args: &[&str]) -> Server {
        Self::spawn(args, false)
    }

    /// As [`start`](Self::start), keeping everything the server writes to
    /// stderr for [`stderr`](Self::stderr).
    pub fn start_capturing_stderr(args: &[&str]) -> Server {
        Self::spawn(args, true)
    }

    /// What the server wrote to stderr so far (only when captured).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn spawn(args: &[&str], capture: bool) -> Server {
        let port_args: &[&str] = if args.contains(&"--port") {
            &[]
        } else {
            &["--port", "0"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_spec-kitty-refserver"))
            .args(port_args)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if capture {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("spawn spec-kitty-refserver");
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut s = sink.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(DEADLINE) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("refserver printed no `listening on` line within {DEADLINE:?}");
            }
        };
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let port: u16 = base
            .strip_prefix("http://127.0.0.1:")
            .or_else(|| base.strip_prefix("https://127.0.0.1:"))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Server {
            child,
            port,
            base,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "refserver did not exit within {DEADLINE:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        read(agent().get(&self.url(path)).call())
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        read(agent().post(&self.url(path)).send_json(body))
    }

    pub fn post_auth(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        read(
            agent()
                .post(&self.url(path))
                .header("Authorization", &format!("Bearer {token}"))
                .send_json(body),
        )
    }

    /// `POST /api/v1/events/batch/` with a gzip body.
    pub fn batch_gzip(&self, token: &str, body: &Value) -> (u16, Value) {
        read(
            agent()
                .post(&self.url("/api/v1/events/batch/"))
                .header("Authorization", &format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "gzip")
                .send(&gzip(body.to_string().as_bytes())[..]),
        )
    }

    /// `POST /api/v1/events/batch/` with a plain JSON body.
    pub fn batch_plain(&self, token: &str, body: &Value) -> (u16, Value) {
        self.post_auth("/api/v1/events/batch/", token, body)
    }

    /// Logs in and returns the token response.
    pub fn login(&self, user: &str, password: &str) -> Value {
        let (status, body) = self.post(
            "/api/v1/token/",
            &json!({"username": user, "password": password}),
        );
        assert_eq!(status, 200, "login {user}: {body}");
        body
    }

    /// Logs in and returns the access token.
    pub fn access(&self, user: &str, password: &str) -> String {
        self.login(user, password)["access"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn set_faults(&self, patch: Value) -> Value {
        let (status, body) = self.post("/__control/faults", &patch);
        assert_eq!(status, 200, "faults {patch}: {body}");
        body
    }

    pub fn stats(&self) -> Value {
        let (status, body) = self.get("/__control/stats");
        assert_eq!(status, 200);
        body
    }

    pub fn stat(&self, name: &str) -> u64 {
        self.stats()[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {name}"))
    }

    /// Stored events of one project (or all).
    pub fn events(&self, project: Option<&str>) -> Vec<Value> {
        let path = match project {
            Some(p) => format!("/api/v1/events/?project_uuid={p}"),
            None => "/api/v1/events/".to_string(),
        };
        let (status, body) = self.get(&path);
        assert_eq!(status, 200, "{body}");
        body["events"].as_array().unwrap().clone()
    }

    /// Fetches a ws token and opens the WebSocket with it.
    pub fn ws(&self, access: &str) -> Ws {
        let (status, body) = self.post_auth("/api/v1/ws-token/", access, &json!({}));
        assert_eq!(status, 200, "ws-token: {body}");
        let ws_token = body["ws_token"].as_str().unwrap().to_string();
        self.ws_with_token(&ws_token)
            .unwrap_or_else(|e| panic!("WebSocket connect failed: {e}"))
    }

    pub fn ws_with_token(&self, ws_token: &str) -> Result<Ws, tungstenite::Error> {
        let url = format!("ws://127.0.0.1:{}/ws/v1/events/", self.port);
        let mut req = url.into_client_request()?;
        req.headers_mut().insert(
            "Authorization",
            format!("Bearer {ws_token}").parse().unwrap(),
        );
        let stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let (socket, _) =
            tungstenite::client(req, MaybeTlsStream::Plain(stream)).map_err(|e| match e {
                tungstenite::HandshakeError::Failure(e) => e,
                tungstenite::HandshakeError::Interrupted(_) => {
                    tungstenite::Error::Io(std::io::ErrorKind::WouldBlock.into())
                }
            })?;
        Ok(Ws { socket })
    }

    /// Polls `f` until it returns `Some`, failing with `what` after [`DEADLINE`].
    pub fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        wait_for(what, &mut f)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for<T>(what: &str, f: &mut impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A WebSocket client to the server.
pub struct Ws {
    pub socket: WebSocket<MaybeTlsStream<TcpStream>>,
}

/// What reading the WebSocket gave.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Closed(Option<u16>),
}

impl Ws {
    pub fn send(&mut self, v: &Value) {
        self.socket
            .send(Message::text(v.to_string()))
            .expect("WebSocket send");
    }

    /// Next JSON text frame or the close, within [`DEADLINE`].
    pub fn next(&mut self) -> Frame {
        let start = Instant::now();
        loop {
            match self.socket.read() {
                Ok(Message::Text(t)) => {
                    return Frame::Json(serde_json::from_str(t.as_str()).expect("JSON frame"))
                }
                Ok(Message::Close(c)) => return Frame::Closed(c.map(|c| u16::from(c.code))),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    assert!(
                        start.elapsed() < DEADLINE,
                        "no WebSocket frame within {DEADLINE:?}"
                    );
                }
                Err(_) => return Frame::Closed(None),
            }
        }
    }

    /// Next JSON frame that is not a server ping (pings are answered).
    pub fn next_reply(&mut self) -> Frame {
        loop {
            match self.next() {
                Frame::Json(v) if v["type"] == "ping" => {
                    self.send(&json!({"type": "pong", "timestamp": v["timestamp"]}));
                }
                other => return other,
            }
        }
    }

    pub fn json(&mut self) -> Value {
        match self.next_reply() {
            Frame::Json(v) => v,
            Frame::Closed(c) => panic!("WebSocket closed ({c:?}) while waiting for a frame"),
        }
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(DEADLINE))
        .build()
        .into()
}

fn read(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut resp = r.expect("HTTP request");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("read body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// The batch-api-v2 fixture directory, read in place from `../shared`.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/contract/batch-api-v2")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A valid envelope; `n` makes the event id unique (and is the Lamport value
/// unless overridden by the caller).
pub fn event_id(n: u64) -> String {
    // 26 Crockford chars, first '0': a valid ULID.
    format!("01JTEST{:019}", n)
}

pub fn wp_status(
    n: u64,
    (project, slug): (&str, &str),
    feature: &str,
    wp: &str,
    to: &str,
    lamport: u64,
    node: &str,
) -> Value {
    json!({
        "event_id": event_id(n), "event_type": "WPStatusChanged",
        "aggregate_id": wp, "aggregate_type": "WorkPackage",
        "payload": {"wp_id": wp, "from_lane": null, "to_lane": to, "actor": "user",
                    "feature_slug": feature, "policy_metadata": null},
        "timestamp": "2026-02-12T10:00:00.000000+00:00", "node_id": node,
        "lamport_clock": lamport, "causation_id": null, "team_slug": "team-a",
        "project_uuid": project, "project_slug": slug, "git_branch": "main",
        "head_commit_sha": null, "repo_slug": null
    })
}

pub fn wp_created(
    n: u64,
    project: &str,
    slug: &str,
    feature: &str,
    wp: &str,
    lamport: u64,
) -> Value {
    json!({
        "event_id": event_id(n), "event_type": "WPCreated",
        "aggregate_id": wp, "aggregate_type": "WorkPackage",
        "payload": {"wp_id": wp, "title": format!("Title of {wp}"), "feature_slug": feature,
                    "dependencies": []},
        "timestamp": "2026-02-12T09:00:00.000000+00:00", "node_id": "a1b2c3d4e5f6",
        "lamport_clock": lamport, "causation_id": null, "team_slug": "team-a",
        "project_uuid": project, "project_slug": slug, "git_branch": "main",
        "head_commit_sha": null, "repo_slug": null
    })
}

/// A simple valid event numbered `n` in project A.
pub fn simple(n: u64) -> Value {
    wp_status(
        n,
        (PROJECT_A, "alpha"),
        "001-demo",
        "WP01",
        "in_progress",
        n,
        "a1b2c3d4e5f6",
    )
}
