//! The dashboard server: `spec-kitty dashboard --serve`, run in the
//! background by `spec-kitty dashboard`.
//!
//! Plain std networking, no async runtime: a `TcpListener` on 127.0.0.1, a
//! thread per connection (bounded), `Connection: close` answers. One poller
//! thread stats every feature's files every 250 ms ([`board::fingerprint`])
//! and rebuilds only the features whose digest changed; open pages hear of
//! it over server-sent events (`/events`), each changed feature sent whole,
//! so the page patches its board in place instead of reloading. The sync
//! panel comes from the daemon's status over its socket (never starting
//! one), polled only while a page is open.
//!
//! The server reads the repository and takes no lock, so it never stands in
//! a command's way. It leaves by itself after `idle_exit` with no page open
//! and no request, when the project directory is gone, and on
//! `/api/shutdown` with the token of its record; it removes the record if
//! the record still names it.

use super::{board, record, sync_panel};
use crate::project::Project;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// First port tried when none is asked for (2.1.3's default range).
pub const DEFAULT_PORT: u16 = 9237;
const PORT_ATTEMPTS: u16 = 100;
const POLL: Duration = Duration::from_millis(250);
const SYNC_POLL: Duration = Duration::from_secs(2);
const MAX_CONNECTIONS: usize = 64;
const MAX_HEAD: usize = 16 * 1024;

/// What every connection thread shares.
struct Shared {
    project: Project,
    token: String,
    port: u16,
    /// This process's id for its pages (not the token): `/events` refuses
    /// a page served by another dashboard that had this port before.
    instance: String,
    /// The page with `instance` filled in.
    index_html: String,
    board: Mutex<Board>,
    changed: Condvar,
    last_request: Mutex<Instant>,
    open_pages: AtomicUsize,
    connections: AtomicUsize,
}

impl Shared {
    fn board(&self) -> MutexGuard<'_, Board> {
        lock(&self.board)
    }
}

/// A lock that survives a panicked holder: the data is plain values, a
/// half-finished update is replaced by the next poll, and one failed request
/// must not take the server down.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cached board: each feature's digest and JSON, and the sync panel.
#[derive(Default)]
struct Board {
    /// Bumped on every change; `/events` streams wait for it to move.
    version: u64,
    order: Vec<String>,
    features: BTreeMap<String, (u64, Arc<Value>)>,
    sync: Arc<Value>,
    sync_at: Option<Instant>,
}

/// Binds the preferred port, else the first free one from
/// [`DEFAULT_PORT`]. Binding is the test: no probe-then-bind race.
pub fn bind(preferred: Option<u16>) -> std::io::Result<TcpListener> {
    if let Some(p) = preferred {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", p)) {
            return Ok(l);
        }
    }
    for p in DEFAULT_PORT..DEFAULT_PORT + PORT_ATTEMPTS {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", p)) {
            return Ok(l);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!(
            "no free port in {DEFAULT_PORT}-{}",
            DEFAULT_PORT + PORT_ATTEMPTS - 1
        ),
    ))
}

/// Serves until shutdown or idle exit. `ready` is called once the board is
/// built and the port is open (the background start-up line).
pub fn run(
    project: Project,
    listener: TcpListener,
    token: String,
    idle_exit: Duration,
    ready: impl FnOnce(u16),
) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let instance = uuid::Uuid::new_v4().simple().to_string();
    let shared = Arc::new(Shared {
        project,
        token,
        port,
        index_html: INDEX_HTML.replace("{{INSTANCE}}", &instance),
        instance,
        board: Mutex::new(Board::default()),
        changed: Condvar::new(),
        last_request: Mutex::new(Instant::now()),
        open_pages: AtomicUsize::new(0),
        connections: AtomicUsize::new(0),
    });
    refresh(&shared);
    refresh_sync(&shared, true);
    ready(port);
    {
        let s = shared.clone();
        std::thread::spawn(move || poll_loop(&s, idle_exit));
    }
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            let _ = respond(&stream, 503, "text/plain", b"too many connections\n");
            continue;
        }
        let s = shared.clone();
        std::thread::spawn(move || {
            let _slot = CountGuard(&s.connections);
            let _ = handle(&s, stream);
        });
    }
    Ok(())
}

/// Leaves the process, removing our record first.
fn exit_now(shared: &Shared) -> ! {
    record::clear_if_pid(&shared.project.root, std::process::id());
    std::process::exit(0)
}

fn poll_loop(shared: &Shared, idle_exit: Duration) {
    let root = &shared.project.root;
    loop {
        std::thread::sleep(POLL);
        // A project that is gone (deleted, a removed temp dir) has nothing
        // left to show.
        if !root.join(".kittify").is_dir() && !shared.project.specs_dir().is_dir() {
            exit_now(shared);
        }
        refresh(shared);
        if shared.open_pages.load(Ordering::SeqCst) > 0 {
            refresh_sync(shared, false);
        } else if lock(&shared.last_request).elapsed() >= idle_exit {
            exit_now(shared);
        }
    }
}

/// Rebuilds the features whose files changed; wakes the event streams when
/// anything did.
fn refresh(shared: &Shared) {
    let order = board::slugs(&shared.project);
    let digests: Vec<(String, u64)> = order
        .iter()
        .map(|s| (s.clone(), board::fingerprint(&shared.project, s)))
        .collect();
    let stale: Vec<(String, u64)> = {
        let b = shared.board();
        digests
            .into_iter()
            .filter(|(s, d)| b.features.get(s).is_none_or(|(old, _)| old != d))
            .collect()
    };
    // Built outside the lock: a page's request never waits for a rebuild.
    let rebuilt: Vec<(String, u64, Arc<Value>)> = stale
        .into_iter()
        .map(|(s, d)| {
            let v = Arc::new(build_feature(&shared.project, &s));
            (s, d, v)
        })
        .collect();
    let mut b = shared.board();
    let order_changed = b.order != order;
    if rebuilt.is_empty() && !order_changed {
        return;
    }
    for (s, d, v) in rebuilt {
        b.features.insert(s, (d, v));
    }
    if order_changed {
        b.features.retain(|s, _| order.contains(s));
        b.order = order;
    }
    b.version += 1;
    shared.changed.notify_all();
}

/// One feature's JSON; a bug that panics on some file becomes that
/// feature's error card instead of a dead poller.
fn build_feature(project: &Project, slug: &str) -> Value {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        board::feature_json(project, slug)
    }))
    .unwrap_or_else(|p| {
        let why = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        json!({
            "slug": slug, "name": slug, "mission": null, "source": "none", "wps": [],
            "counts": {}, "docs": [], "events": 0,
            "errors": [{"file": format!("kitty-specs/{slug}"), "message": format!("internal error while reading this feature: {why}")}],
        })
    })
}

fn refresh_sync(shared: &Shared, force: bool) {
    {
        let b = shared.board();
        if !force && b.sync_at.is_some_and(|t| t.elapsed() < SYNC_POLL) {
            return;
        }
    }
    let v = sync_panel::status(&shared.project);
    let mut b = shared.board();
    b.sync_at = Some(Instant::now());
    if *b.sync != v {
        b.sync = Arc::new(v);
        b.version += 1;
        shared.changed.notify_all();
    }
}

fn board_json(shared: &Shared) -> Value {
    let b = shared.board();
    let features: Vec<Value> = b
        .order
        .iter()
        .filter_map(|s| b.features.get(s).map(|(_, v)| (**v).clone()))
        .collect();
    json!({
        "project_path": shared.project.root.display().to_string(),
        "project_name": shared.project.root.file_name().map(|n| n.to_string_lossy().into_owned()),
        "version": b.version,
        "features": features,
        "sync": *b.sync,
    })
}

/// 2.1.3's `/api/features` keys (id, name, display_name, path, meta,
/// kanban_stats) for tools written against it.
fn features_2_1_3(shared: &Shared) -> Value {
    let b = shared.board();
    let features: Vec<Value> = b
        .order
        .iter()
        .filter_map(|s| b.features.get(s))
        .map(|(_, f)| {
            let c = |l: &str| f["counts"][l].as_u64().unwrap_or(0);
            let total: u64 = f["counts"]
                .as_object()
                .map(|m| m.values().filter_map(Value::as_u64).sum())
                .unwrap_or(0);
            let slug = f["slug"].as_str().unwrap_or("");
            let name = f["name"].as_str().unwrap_or(slug);
            let display = if name.starts_with(&slug[..3.min(slug.len())]) {
                name.to_string()
            } else {
                format!("{} - {name}", &slug[..3.min(slug.len())])
            };
            json!({
                "id": slug,
                "name": name,
                "display_name": display,
                "path": format!("kitty-specs/{slug}"),
                "meta": {"mission": f["mission"]},
                "kanban_stats": {
                    "total": total,
                    "planned": c("planned") + c("claimed"),
                    "doing": c("in_progress"),
                    "for_review": c("for_review"),
                    "approved": c("approved"),
                    "done": c("done"),
                },
            })
        })
        .collect();
    json!({
        "features": features,
        "project_path": shared.project.root.display().to_string(),
    })
}

// ---------------------------------------------------------------------------
// HTTP

struct Request {
    method: String,
    path: String,
    query: String,
    host: Option<String>,
    body: Vec<u8>,
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut r = BufReader::new(stream.take(MAX_HEAD as u64 + 4096));
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let (mut host, mut length, mut seen) = (None, 0usize, line.len());
    loop {
        let mut h = String::new();
        let n = r.read_line(&mut h).ok()?;
        seen += n;
        if n == 0 || seen > MAX_HEAD {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "host" => host = Some(v.trim().to_string()),
                "content-length" => length = v.trim().parse().ok()?,
                _ => {}
            }
        }
    }
    let mut body = vec![0; length.min(4096)];
    r.read_exact(&mut body).ok()?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Some(Request {
        method,
        path,
        query,
        host,
        body,
    })
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// The page may load only its own script and style and talk only to this
/// server: a document that slipped markup past the renderer still cannot
/// run script or reach the network.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn respond(mut stream: &TcpStream, code: u16, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nContent-Security-Policy: {CSP}\r\nConnection: close\r\n\r\n",
        reason(code),
        body.len()
    );
    let mut all = head.into_bytes();
    all.extend_from_slice(body);
    stream.write_all(&all)?;
    stream.flush()
}

fn respond_json(stream: &TcpStream, code: u16, v: &Value) -> std::io::Result<()> {
    respond(stream, code, "application/json", v.to_string().as_bytes())
}

/// Only requests addressed to this loopback port: a web page that rebinds
/// its own host name to 127.0.0.1 sends its name in `Host` and is refused.
fn host_ok(host: Option<&str>, port: u16) -> bool {
    host.is_some_and(|h| h == format!("127.0.0.1:{port}") || h == format!("localhost:{port}"))
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn handle(shared: &Shared, stream: TcpStream) -> std::io::Result<()> {
    let Some(req) = read_request(&stream) else {
        return respond(&stream, 400, "text/plain", b"bad request\n");
    };
    *lock(&shared.last_request) = Instant::now();
    if !host_ok(req.host.as_deref(), shared.port) {
        return respond(&stream, 403, "text/plain", b"wrong Host header\n");
    }
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), segs.as_slice()) {
        (_, ["api", "shutdown"]) => shutdown(shared, &stream, &req),
        ("GET" | "HEAD", [""]) => respond(
            &stream,
            200,
            "text/html; charset=utf-8",
            shared.index_html.as_bytes(),
        ),
        ("GET", ["static", "app.js"]) => respond(
            &stream,
            200,
            "text/javascript; charset=utf-8",
            APP_JS.as_bytes(),
        ),
        ("GET", ["static", "app.css"]) => {
            respond(&stream, 200, "text/css; charset=utf-8", APP_CSS.as_bytes())
        }
        ("GET", ["api", "health"]) => respond_json(
            &stream,
            200,
            &json!({
                "status": "ok",
                "project_path": shared.project.root.display().to_string(),
                "token": shared.token,
                "pid": std::process::id(),
            }),
        ),
        ("GET", ["api", "board"]) => respond_json(&stream, 200, &board_json(shared)),
        ("GET", ["api", "features"]) => respond_json(&stream, 200, &features_2_1_3(shared)),
        ("GET", ["api", "sync"]) => {
            refresh_sync(shared, false);
            let v = shared.board().sync.clone();
            respond_json(&stream, 200, &v)
        }
        ("GET", ["api", "feature", slug]) if known(shared, slug) => {
            respond_json(&stream, 200, &board::detail_json(&shared.project, slug))
        }
        ("GET", ["api", "doc", slug, doc]) if known(shared, slug) => {
            match board::doc_json(&shared.project, slug, doc) {
                Some(v) => respond_json(&stream, 200, &v),
                None => respond_json(
                    &stream,
                    404,
                    &json!({"error": format!("{slug} has no {doc} document")}),
                ),
            }
        }
        ("GET", ["events"]) => match query_param(&req.query, "instance") {
            Some(i) if i != shared.instance => respond_json(
                &stream,
                409,
                &json!({"error": "this port now serves another dashboard; reload the page"}),
            ),
            _ => events(shared, stream),
        },
        ("GET", _) => respond_json(
            &stream,
            404,
            &json!({"error": format!("no such page: {}", req.path)}),
        ),
        _ => respond_json(&stream, 405, &json!({"error": "method not allowed"})),
    }
}

/// Only slugs the board lists: a URL cannot name a path of its own.
fn known(shared: &Shared, slug: &str) -> bool {
    shared.board().features.contains_key(slug)
}

/// 2.1.3's shutdown: the token as `?token=` (GET) or `{"token": ...}`
/// (POST); a wrong one is 403.
fn shutdown(shared: &Shared, stream: &TcpStream, req: &Request) -> std::io::Result<()> {
    let given = if req.method == "POST" {
        serde_json::from_slice::<Value>(&req.body)
            .ok()
            .and_then(|v| v["token"].as_str().map(str::to_string))
    } else {
        query_param(&req.query, "token").map(str::to_string)
    };
    if given.as_deref() != Some(shared.token.as_str()) {
        return respond_json(stream, 403, &json!({"error": "invalid_token"}));
    }
    respond_json(stream, 200, &json!({"status": "stopping"}))?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    exit_now(shared)
}

/// Decrements a counter when dropped, panic or not (connections, open
/// pages).
struct CountGuard<'a>(&'a AtomicUsize);
impl Drop for CountGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Server-sent events: `feature` (one feature's JSON, whenever its files
/// change), `board` (the whole board, when features appear or vanish) and
/// `sync` (the sync panel). A comment every 15 s keeps the stream alive
/// and notices a closed page.
fn events(shared: &Shared, mut stream: TcpStream) -> std::io::Result<()> {
    shared.open_pages.fetch_add(1, Ordering::SeqCst);
    let _guard = CountGuard(&shared.open_pages);
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nretry: 500\n\n")?;
    let mut seen_version = u64::MAX;
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen_order: Vec<String> = Vec::new();
    let mut seen_sync: Option<Arc<Value>> = None;
    loop {
        let mut out = String::new();
        {
            let mut b = shared.board();
            if b.version == seen_version {
                let (guard, timeout) = shared
                    .changed
                    .wait_timeout(b, Duration::from_secs(15))
                    .unwrap_or_else(|e| e.into_inner());
                b = guard;
                if timeout.timed_out() && b.version == seen_version {
                    drop(b);
                    stream.write_all(b": ping\n\n")?;
                    continue;
                }
            }
            // The first message, and any change of the feature list, is
            // the whole board; after that, only what changed.
            let whole = seen_version == u64::MAX || b.order != seen_order;
            seen_version = b.version;
            if whole {
                seen_order = b.order.clone();
                seen = b
                    .features
                    .iter()
                    .map(|(s, (d, _))| (s.clone(), *d))
                    .collect();
                seen_sync = Some(b.sync.clone());
                drop(b);
                out.push_str(&format!("event: board\ndata: {}\n\n", board_json(shared)));
            } else {
                for (s, (d, v)) in &b.features {
                    if seen.get(s) != Some(d) {
                        out.push_str(&format!("event: feature\ndata: {v}\n\n"));
                        seen.insert(s.clone(), *d);
                    }
                }
                if seen_sync
                    .as_ref()
                    .is_none_or(|old| !Arc::ptr_eq(old, &b.sync))
                {
                    seen_sync = Some(b.sync.clone());
                    out.push_str(&format!("event: sync\ndata: {}\n\n", b.sync));
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(out.as_bytes())?;
            stream.flush()?;
        }
    }
}

/// The address a browser uses.
pub fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}
