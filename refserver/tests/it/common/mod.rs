//! Shared helpers for the refserver's integration tests: the server
//! process itself is the shared test layer's [`RefServer`] (spawned on port
//! 0, its `listening on` line parsed, killed in `Drop` even when a test
//! panics); this module adds the calls these tests make to its API over
//! HTTP (ureq) and WebSocket (tungstenite), and sample events.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
pub use spec_kitty_e2e::{assert_batch_stored, http_agent, wait_for, RefServer, DEADLINE};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub const PROJECT_A: &str = "550e8400-e29b-41d4-a716-446655440000";
pub const PROJECT_B: &str = "6f1c2a4e-9d3b-4c1e-8a7f-0b2d4e6f8a9c";

/// A running `spec-kitty-refserver` ([`RefServer`]: `base`, `port`, `get`,
/// `stats`, `terminate`, `stderr`… through `Deref`) with the API calls
/// these tests make.
pub struct Server(RefServer);

impl std::ops::Deref for Server {
    type Target = RefServer;
    fn deref(&self) -> &RefServer {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut RefServer {
        &mut self.0
    }
}

impl Server {
    /// Starts the server with `args` (plus `--port 0` unless they name a port) and waits for its
    /// `listening on` line.
    pub fn start(args: &[&str]) -> Server {
        Server(RefServer::start(args))
    }

    /// As [`start`](Self::start), keeping everything the server writes to
    /// stderr for [`RefServer::stderr`].
    pub fn start_capturing_stderr(args: &[&str]) -> Server {
        Server(RefServer::start_capturing_stderr(args))
    }

    /// `POST path` with a JSON body and no token.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.0.post(path, None, body)
    }

    pub fn post_auth(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.0.post(path, Some(token), body)
    }

    /// `POST /api/v1/events/batch/` with a gzip body.
    pub fn batch_gzip(&self, token: &str, body: &Value) -> (u16, Value) {
        spec_kitty_e2e::http_read(
            http_agent(None)
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
        self.access_token(user, password)
    }

    pub fn set_faults(&self, patch: Value) -> Value {
        let (status, body) = self.post("/__control/faults", &patch);
        assert_eq!(status, 200, "faults {patch}: {body}");
        body
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
    pub fn wait_for<T>(&self, what: &str, f: impl FnMut() -> Option<T>) -> T {
        wait_for(what, f)
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

/// An HTTP client bounded by [`DEADLINE`] that answers every status.
pub fn agent() -> ureq::Agent {
    http_agent(None)
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
