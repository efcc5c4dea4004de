//! HTTP and WebSocket handlers: the endpoints of CONTRACT.md, the views,
//! and the `/__control/*` endpoints tests use to inject faults.
//!
//! Routes:
//! - `POST /api/v1/token/`, `POST /api/v1/token/refresh/`, `POST /api/v1/ws-token/`
//! - `GET /ws/v1/events/` (WebSocket), `POST /api/v1/events/batch/`
//! - `GET /api/v1/projects/`, `GET /api/v1/events/` (views, no auth: a dev server)
//! - `GET /` and `GET /dashboard/fragment` (HTML dashboard)
//! - `GET|POST /__control/faults`, `GET /__control/stats`,
//!   `POST /__control/revoke-tokens`, `POST /__control/projects`, `GET /healthz`
//!
//! Fault injection (500s, delays) applies to the contract endpoints only,
//! never to views or control, so a test can always observe and steer.
//! The server binds 127.0.0.1 only, so the control endpoints are
//! reachable from loopback only by construction.

// Helpers return the early `Response` of a handler as their error: it is
// moved once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use spec_kitty_protocol::saas::{
    wire_json, AckStatus, BatchReply, BatchResult, ErrorFrame, ErrorStatus, Snapshot,
    SnapshotProject, SnapshotWorkPackage, TokenReply, WsFrame, WsTokenReply,
};
use tokio::sync::watch;

use crate::config::{Config, User};
use crate::faults::{bump, FaultPatch, Faults, Stats};
use crate::listener::{RefuseSwitch, RefusingListener};
use crate::store::{Outcome, Store, TokenKind, Via};
use crate::view::{sorted_projects, ProjectView};

/// Most events one batch request may carry.
pub const MAX_BATCH: usize = 1000;
/// Largest request body, compressed or not.
const MAX_BODY: usize = 64 << 20;

/// Everything the handlers share.
pub struct Shared {
    pub config: Config,
    pub users: BTreeMap<String, User>,
    pub store: Mutex<Store>,
    pub faults: Mutex<Faults>,
    pub stats: Arc<Stats>,
    pub refuse: Arc<RefuseSwitch>,
    shutdown: watch::Receiver<bool>,
}

type AppState = Arc<Shared>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }
    fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }
    fn log(&self, msg: impl FnOnce() -> String) {
        if self.config.verbose {
            eprintln!("refserver: {}", msg());
        }
    }
}

/// Binds 127.0.0.1:`config.port`, calls `on_ready` with the bound address,
/// and serves until `shutdown` completes (then closes WebSockets cleanly).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let users = config.load_users()?;
    let claims = config.project_claims()?;
    let tls = crate::tls::server_config(&config)?;
    let store = Store::open(config.db.as_deref())?;
    for (uuid, team) in &claims {
        store.claim(uuid, team)?;
    }
    let mut faults = Faults::default();
    faults
        .apply(&FaultPatch {
            fail_next: Some(config.fail_next),
            fail_percent: Some(config.fail_percent),
            fail_status: Some(config.fail_status),
            delay_ms: Some(config.delay_ms),
            ws_drop_after_frames: Some(config.ws_drop_after_frames),
            ws_ack: Some(!config.legacy_ws),
            reject_all: Some(config.reject_all),
            ..FaultPatch::default()
        })
        .map_err(anyhow::Error::msg)?;
    if users.is_empty() {
        eprintln!(
            "refserver: no users configured (--user USER:PASSWORD:TEAM); every login will fail"
        );
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let stats = Arc::new(Stats::default());
    let refuse = Arc::new(RefuseSwitch::default());
    let state = Arc::new(Shared {
        users,
        store: Mutex::new(store),
        faults: Mutex::new(faults),
        stats: stats.clone(),
        refuse: refuse.clone(),
        shutdown: shutdown_rx,
        config,
    });
    let tcp = tokio::net::TcpListener::bind(("127.0.0.1", state.config.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", state.config.port))?;
    let mut listener = RefusingListener::new(tcp, refuse.clone(), stats, tls)?;
    let addr = axum::serve::Listener::local_addr(&listener)?;
    refuse.refuse_for(state.config.refuse_connections_ms, &state.stats);
    listener.apply_refuse_window();
    on_ready(addr);
    let state_for_exit = state.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = shutdown_tx.send(true);
        })
        .await?;
    // Upgraded WebSockets are not tracked by the HTTP server: give their
    // sessions a moment to send their close frames before the runtime ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while state_for_exit
        .stats
        .ws_connections_open
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The whole application, routes and layers.
pub fn router(state: AppState) -> Router {
    let contract = Router::new()
        .route("/api/v1/token/", post(token))
        .route("/api/v1/token/refresh/", post(refresh))
        .route("/api/v1/ws-token/", post(ws_token))
        .route("/api/v1/events/batch/", post(batch))
        .route("/ws/v1/events/", get(ws))
        .layer(middleware::from_fn_with_state(state.clone(), fault_layer));
    let rest = Router::new()
        .route("/api/v1/projects/", get(projects))
        .route("/api/v1/events/", get(events))
        .route("/", get(dashboard_page))
        .route("/dashboard/fragment", get(dashboard_fragment))
        .route("/healthz", get(|| async { Json(json!({"ok": true})) }))
        .route("/__control/faults", get(get_faults).post(post_faults))
        .route("/__control/stats", get(stats))
        .route("/__control/revoke-tokens", post(revoke_tokens))
        .route("/__control/projects", post(claim_project));
    contract
        .merge(rest)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("server error: {e}"),
    )
}

async fn fault_layer(State(s): State<AppState>, req: Request, next: Next) -> Response {
    bump(&s.stats.http_requests);
    let (delay, fail) = {
        let mut f = s.faults();
        (f.delay_ms, f.take_failure())
    };
    if delay > 0 {
        bump(&s.stats.delayed_requests);
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if let Some(code) = fail {
        bump(&s.stats.injected_failures);
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, "injected failure (fault injection)");
    }
    next.run(req).await
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The user and team of a valid access token, or the 401 to send.
fn authenticate(s: &Shared, headers: &HeaderMap) -> Result<(String, String), Response> {
    let unauthorized = || {
        bump(&s.stats.auth_failures);
        error(StatusCode::UNAUTHORIZED, "Invalid or expired access token")
    };
    let Some(token) = bearer(headers) else {
        return Err(unauthorized());
    };
    let user = s
        .store()
        .check_token(TokenKind::Access, token)
        .map_err(internal)?;
    match user.and_then(|u| s.users.get(&u)) {
        Some(u) => Ok((u.username.clone(), u.team_slug.clone())),
        None => Err(unauthorized()),
    }
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("Invalid request body: {e}"),
        )
    })
}

/// A fresh access/refresh pair in the login/refresh response shape.
fn token_pair(s: &Shared, user: &User) -> Response {
    let store = s.store();
    let pair = store
        .issue_token(TokenKind::Access, &user.username, s.config.access_lifetime)
        .and_then(|a| {
            store
                .issue_token(
                    TokenKind::Refresh,
                    &user.username,
                    s.config.refresh_lifetime,
                )
                .map(|r| (a, r))
        });
    match pair {
        Ok((access, refresh)) => Json(wire_json(&TokenReply {
            access,
            access_lifetime: s.config.access_lifetime,
            refresh,
            refresh_lifetime: s.config.refresh_lifetime,
            team_slug: Some(user.team_slug.clone()),
        }))
        .into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn token(State(s): State<AppState>, body: Bytes) -> Response {
    let login: Login = match json_body(&body) {
        Ok(l) => l,
        Err(r) => return r,
    };
    match s.users.get(&login.username) {
        Some(u) if u.password == login.password => {
            bump(&s.stats.token_issued);
            s.log(|| format!("login {}", u.username));
            token_pair(&s, u)
        }
        _ => {
            bump(&s.stats.auth_failures);
            error(StatusCode::UNAUTHORIZED, "Invalid username or password")
        }
    }
}

#[derive(Deserialize)]
struct Refresh {
    refresh: String,
}

async fn refresh(State(s): State<AppState>, body: Bytes) -> Response {
    let req: Refresh = match json_body(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let user = match s.store().take_token(TokenKind::Refresh, &req.refresh) {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    match user.and_then(|u| s.users.get(&u)) {
        Some(u) => {
            bump(&s.stats.token_refreshed);
            token_pair(&s, u)
        }
        None => {
            bump(&s.stats.auth_failures);
            error(StatusCode::UNAUTHORIZED, "Invalid or expired refresh token")
        }
    }
}

async fn ws_token(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let (user, _) = match authenticate(&s, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    match s
        .store()
        .issue_token(TokenKind::Ws, &user, s.config.ws_token_lifetime)
    {
        Ok(t) => {
            bump(&s.stats.ws_tokens_issued);
            Json(wire_json(&WsTokenReply {
                expires_in: s.config.ws_token_lifetime,
                ws_token: t,
            }))
            .into_response()
        }
        Err(e) => internal(e),
    }
}

/// The reason the `partial_400` fault gives for each event it names.
fn partial_400_reason(aggregate: &str) -> String {
    format!("Invalid payload: aggregate {aggregate} refused (fault injection partial_400)")
}

fn bad_request(error: &str, details: Value) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "details": details})),
    )
        .into_response()
}

/// Decodes a possibly gzip-compressed body, refusing more than [`MAX_BODY`] bytes.
fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, String> {
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(body.to_vec()),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip body could not be decoded: {e}"))?;
            if out.len() > MAX_BODY {
                return Err(format!("decoded body exceeds {MAX_BODY} bytes"));
            }
            Ok(out)
        }
        other => Err(format!(
            "unsupported Content-Encoding '{other}' (gzip or none)"
        )),
    }
}

async fn batch(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    bump(&s.stats.batch_requests);
    let (user, team) = match authenticate(&s, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let reject = |error: &str, details: Value| {
        bump(&s.stats.batch_rejected_requests);
        bad_request(error, details)
    };
    let batch_failure = s.faults().take_batch_failure();
    if let Some(code) = batch_failure {
        bump(&s.stats.injected_failures);
        bump(&s.stats.batch_rejected_requests);
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, "injected batch failure (fault injection)");
    }
    let text = match decode_body(&headers, &body) {
        Ok(t) => t,
        Err(e) => return reject("Invalid request body", json!(e)),
    };
    if let Some(max) = s.faults().max_body_bytes {
        if text.len() as u64 > max {
            bump(&s.stats.batch_rejected_requests);
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Batch too large: the request has {} bytes, at most {max} are accepted (fault injection)",
                    text.len()
                ),
            );
        }
    }
    let mut parsed: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => {
            return reject(
                "Invalid request body",
                json!(format!("not valid JSON: {e}")),
            )
        }
    };
    let Some(Value::Array(events)) = parsed.get_mut("events").map(Value::take) else {
        return reject(
            "Invalid request body",
            json!("body must be a JSON object with an 'events' list"),
        );
    };
    if events.len() > MAX_BATCH {
        return reject(
            "Batch too large",
            json!(format!(
                "batch has {} events; at most {MAX_BATCH} events are accepted per request",
                events.len()
            )),
        );
    }
    let (reject_all, max_batch, partial_400) = {
        let f = s.faults();
        (f.reject_all, f.max_batch, f.partial_400.clone())
    };
    if let Some(max) = max_batch.filter(|m| events.len() as u64 > *m) {
        return reject(
            "Batch too large",
            json!(format!(
                "batch has {} events; at most {max} events are accepted per request (fault injection)",
                events.len()
            )),
        );
    }
    if let Some(aggregate) = partial_400 {
        let details: Vec<Value> = events
            .iter()
            .filter(|e| e.get("aggregate_id").and_then(Value::as_str) == Some(&aggregate))
            .map(|e| {
                json!({
                    "event_id": e.get("event_id").cloned().unwrap_or(Value::Null),
                    "error": partial_400_reason(&aggregate),
                })
            })
            .collect();
        if !details.is_empty() {
            bump(&s.stats.batch_partial_400);
            return reject("Batch validation failed", Value::Array(details));
        }
    }
    // Omitted events are dropped before anything is stored: the client
    // gets no result for them and must send them again.
    let omitted = s.faults().take_omitted(events.len());
    let events: Vec<Value> = events
        .into_iter()
        .zip(&omitted)
        .filter(|(_, omit)| {
            if **omit {
                bump(&s.stats.batch_results_omitted);
            }
            !**omit
        })
        .map(|(e, _)| e)
        .collect();
    // Up to 1000 validations and inserts in one transaction: off the async
    // workers, so WebSocket sessions keep answering meanwhile.
    let work = {
        let s = s.clone();
        let team = team.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = s.store();
            let details = store.unauthorized(&events, &team)?;
            if !details.is_empty() {
                return Ok((events, Err(details)));
            }
            let outcomes = store.ingest(&events, &team, Via::Batch, reject_all)?;
            Ok::<_, crate::store::StoreError>((events, Ok(outcomes)))
        })
    };
    let (events, outcomes) = match work.await {
        Ok(Ok((events, Ok(outcomes)))) => (events, outcomes),
        Ok(Ok((_, Err(details)))) => {
            return reject("Batch validation failed", Value::Array(details))
        }
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e),
    };
    let results = events
        .iter()
        .zip(outcomes)
        .map(|(ev, outcome)| {
            let event_id = ev
                .get("event_id")
                .and_then(Value::as_str)
                .map(str::to_string);
            let (status, error) = match outcome {
                Outcome::Accepted => {
                    bump(&s.stats.batch_events_success);
                    ("success", None)
                }
                Outcome::Duplicate => {
                    bump(&s.stats.batch_events_duplicate);
                    ("duplicate", None)
                }
                Outcome::Rejected(reason) => {
                    bump(&s.stats.batch_events_rejected);
                    ("rejected", Some(reason))
                }
            };
            BatchResult {
                event_id,
                status: status.to_string(),
                error,
                error_message: None,
            }
        })
        .collect();
    s.log(|| format!("batch from {user}: {} events", events.len()));
    Json(wire_json(&BatchReply { results })).into_response()
}

async fn ws(
    State(s): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Some(token) = bearer(&headers) else {
        bump(&s.stats.auth_failures);
        return error(StatusCode::UNAUTHORIZED, "missing Bearer ws token");
    };
    let user = match s.store().take_token(TokenKind::Ws, token) {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let Some(user) = user.and_then(|u| s.users.get(&u)).cloned() else {
        bump(&s.stats.auth_failures);
        return error(StatusCode::UNAUTHORIZED, "Invalid or expired ws token");
    };
    match upgrade {
        Ok(up) => up.on_upgrade(move |socket| session(s, socket, user)),
        Err(rejection) => rejection.into_response(),
    }
}

fn snapshot(s: &Shared, user: &User) -> WsFrame {
    let store = s.store();
    let mut projects = Vec::new();
    let mut work_packages = Vec::new();
    for p in store
        .view
        .projects
        .values()
        .filter(|p| p.team_slug == user.team_slug)
    {
        projects.push(SnapshotProject {
            project_uuid: p.project_uuid.clone(),
            project_slug: p.project_slug.clone(),
            event_count: p.event_count,
            last_event_at: p.last_event_at.clone(),
        });
        for f in p.features.values() {
            for w in f.work_packages.values() {
                work_packages.push(SnapshotWorkPackage {
                    project_uuid: p.project_uuid.clone(),
                    feature_slug: f.feature_slug.clone(),
                    wp_id: w.wp_id.clone(),
                    lane: w.lane.clone(),
                });
            }
        }
    }
    WsFrame::Snapshot(Snapshot {
        team_slug: Some(user.team_slug.clone()),
        server_time: Some(spec_kitty_protocol::time::now_utc()),
        projects,
        work_packages,
    })
}

/// Decrements the open-connection gauge however the session ends.
struct OpenGauge(Arc<Stats>);
impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0
            .ws_connections_open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn send_frame(socket: &mut WebSocket, frame: &WsFrame) -> bool {
    socket.send(Message::text(frame.to_text())).await.is_ok()
}

/// An error frame refusing an event (or, without `event_id`, a frame).
fn refusal(status: ErrorStatus, event_id: Option<String>, error: String) -> WsFrame {
    WsFrame::Error(ErrorFrame {
        status,
        event_id,
        error: Some(error),
        message: None,
    })
}

async fn session(s: AppState, mut socket: WebSocket, user: User) {
    bump(&s.stats.ws_connections_total);
    bump(&s.stats.ws_connections_open);
    let _gauge = OpenGauge(s.stats.clone());
    s.log(|| format!("ws open for {}", user.username));
    if !send_frame(&mut socket, &snapshot(&s, &user)).await {
        return;
    }
    let mut kill = s.refuse.kill_watch();
    kill.mark_unchanged();
    let mut shutdown = s.shutdown.clone();
    let period = Duration::from_millis(s.config.ping_interval_ms.max(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut missed: u64 = 0;
    let mut frames: u64 = 0;
    loop {
        let msg = tokio::select! {
            _ = ticker.tick() => {
                if s.config.max_missed_pongs > 0 && missed >= s.config.max_missed_pongs {
                    bump(&s.stats.ws_closed_missed_pongs);
                    let _ = socket.send(Message::Close(Some(CloseFrame {
                        code: 1008, reason: "no pong to server pings".into(),
                    }))).await;
                    return;
                }
                let ping = WsFrame::Ping { timestamp: Value::String(spec_kitty_protocol::time::now_utc()) };
                if !send_frame(&mut socket, &ping).await {
                    return;
                }
                missed += 1;
                bump(&s.stats.ws_pings_sent);
                continue;
            }
            _ = kill.changed() => {
                bump(&s.stats.connections_killed);
                return;
            }
            _ = shutdown.changed() => {
                let _ = socket.send(Message::Close(Some(CloseFrame {
                    code: 1001, reason: "server shutting down".into(),
                }))).await;
                return;
            }
            msg = socket.recv() => msg,
        };
        let text = match msg {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
            Some(Ok(Message::Text(t))) => t.as_str().to_string(),
            Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                Ok(t) => t,
                Err(_) => {
                    let e = refusal(
                        ErrorStatus::Rejected,
                        None,
                        "binary frame is not UTF-8 JSON".into(),
                    );
                    if !send_frame(&mut socket, &e).await {
                        return;
                    }
                    continue;
                }
            },
            Some(Ok(_)) => continue, // protocol-level ping/pong
        };
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                let e = refusal(ErrorStatus::Rejected, None, format!("Invalid JSON: {e}"));
                if !send_frame(&mut socket, &e).await {
                    return;
                }
                continue;
            }
        };
        if value.get("event_id").is_none() {
            if let Some(kind) = value.get("type").and_then(Value::as_str) {
                if kind == "pong" {
                    missed = 0;
                    bump(&s.stats.ws_pongs_received);
                }
                continue;
            }
        }
        frames += 1;
        bump(&s.stats.ws_frames_received);
        let (reject_all, partial_400, max_bytes) = {
            let f = s.faults();
            (f.reject_all, f.partial_400.clone(), f.max_body_bytes)
        };
        let named = partial_400
            .filter(|a| value.get("aggregate_id").and_then(Value::as_str) == Some(a.as_str()));
        let too_large = max_bytes.filter(|m| text.len() as u64 > *m);
        let outcome = match (named, too_large) {
            (Some(aggregate), _) => Ok(Outcome::Rejected(partial_400_reason(&aggregate))),
            (None, Some(max)) => Ok(Outcome::Rejected(format!(
                "Event too large: {} bytes, at most {max} are accepted (fault injection max_body_bytes)",
                text.len()
            ))),
            (None, None) => s
                .store()
                .ingest(
                    std::slice::from_ref(&value),
                    &user.team_slug,
                    Via::Ws,
                    reject_all,
                )
                .map(|mut o| o.remove(0)),
        };
        // A string `event_id` is echoed; any other is null (no client
        // could match it to an event anyway).
        let event_id = value
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let reply = match outcome {
            Ok(Outcome::Accepted) => {
                bump(&s.stats.ws_events_accepted);
                WsFrame::Ack {
                    event_id: event_id.unwrap_or_default(),
                    status: AckStatus::Accepted,
                }
            }
            Ok(Outcome::Duplicate) => {
                bump(&s.stats.ws_events_duplicate);
                WsFrame::Ack {
                    event_id: event_id.unwrap_or_default(),
                    status: AckStatus::Duplicate,
                }
            }
            Ok(Outcome::Rejected(reason)) => {
                bump(&s.stats.ws_events_rejected);
                refusal(ErrorStatus::Rejected, event_id, reason)
            }
            Err(e) => refusal(ErrorStatus::Error, event_id, format!("server error: {e}")),
        };
        let (drop_now, ack, delay) = {
            let mut f = s.faults();
            let drop_now = match (f.ws_drop_after_frames, f.ws_drop_connections) {
                (Some(n), budget) if frames >= n && budget != Some(0) => {
                    f.ws_drop_connections = budget.map(|b| b - 1);
                    true
                }
                _ => false,
            };
            (drop_now, f.ws_ack, f.delay_ms)
        };
        if drop_now {
            // Abrupt: no close frame, no ack for the frame just stored.
            bump(&s.stats.ws_dropped_by_fault);
            return;
        }
        if !ack {
            continue;
        }
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if matches!(reply, WsFrame::Ack { .. }) {
            bump(&s.stats.ws_acks_sent);
        } else {
            bump(&s.stats.ws_errors_sent);
        }
        if !send_frame(&mut socket, &reply).await {
            return;
        }
    }
}

/// One project as the JSON views show it: features and WPs as lists.
pub fn project_json(p: &ProjectView) -> Value {
    let features: Vec<Value> = p
        .features
        .values()
        .map(|f| {
            json!({
                "feature_slug": f.feature_slug,
                "wp_count": f.wp_count,
                "target_branch": f.target_branch,
                "completed": f.completed,
                "work_packages": f.work_packages.values().collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "project_uuid": p.project_uuid,
        "project_slug": p.project_slug,
        "team_slug": p.team_slug,
        "repo_slug": p.repo_slug,
        "last_event_at": p.last_event_at,
        "last_received_at": p.last_received_at,
        "event_count": p.event_count,
        "event_counts": p.event_counts,
        "features": features,
    })
}

#[derive(Deserialize)]
struct ProjectsQuery {
    team: Option<String>,
    project_uuid: Option<String>,
}

async fn projects(State(s): State<AppState>, Query(q): Query<ProjectsQuery>) -> Response {
    let store = s.store();
    let list: Vec<Value> =
        sorted_projects(&store.view, q.team.as_deref(), q.project_uuid.as_deref())
            .into_iter()
            .map(project_json)
            .collect();
    Json(json!({"count": list.len(), "projects": list})).into_response()
}

#[derive(Deserialize)]
struct EventsQuery {
    project_uuid: Option<String>,
    after_seq: Option<i64>,
    limit: Option<i64>,
}

async fn events(State(s): State<AppState>, Query(q): Query<EventsQuery>) -> Response {
    let project = q.project_uuid.as_deref().filter(|p| !p.is_empty());
    let store = s.store();
    match store.events(
        project,
        q.after_seq.unwrap_or(0),
        q.limit.unwrap_or(i64::MAX),
    ) {
        Ok(list) => Json(json!({"count": list.len(), "events": list})).into_response(),
        Err(e) => internal(e),
    }
}

async fn dashboard_page(State(s): State<AppState>) -> Html<String> {
    let fragment = crate::dashboard::fragment(&s.store().view);
    Html(crate::dashboard::page(&fragment))
}

async fn dashboard_fragment(State(s): State<AppState>) -> Html<String> {
    Html(crate::dashboard::fragment(&s.store().view))
}

fn faults_json(s: &Shared) -> Value {
    let mut f = s.faults().clone();
    f.refusing_ms_remaining = s.refuse.remaining_ms();
    serde_json::to_value(f).unwrap_or(Value::Null)
}

async fn get_faults(State(s): State<AppState>) -> Json<Value> {
    Json(faults_json(&s))
}

async fn post_faults(State(s): State<AppState>, body: Bytes) -> Response {
    let patch: FaultPatch = match json_body(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(e) = s.faults().apply(&patch) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    s.log(|| format!("faults now {}", faults_json(&s)));
    let reply = Json(faults_json(&s)).into_response();
    if let Some(ms) = patch.refuse_connections_ms {
        // After this reply is on its way: the window cuts this connection too.
        let s = s.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            s.refuse.refuse_for(ms, &s.stats);
        });
    }
    reply
}

async fn stats(State(s): State<AppState>) -> Json<Value> {
    let mut v = s.stats.to_json();
    let store = s.store();
    v["events_stored"] = json!(store.event_total().unwrap_or(0));
    v["event_receipts"] = json!(store.receipt_total().unwrap_or(0));
    v["projects"] = json!(store.view.projects.len());
    Json(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    #[serde(default = "yes")]
    access: bool,
    #[serde(default)]
    refresh: bool,
    #[serde(default)]
    ws: bool,
}

fn yes() -> bool {
    true
}

async fn revoke_tokens(State(s): State<AppState>, body: Bytes) -> Response {
    let req: Revoke = if body.is_empty() {
        Revoke {
            access: true,
            refresh: false,
            ws: false,
        }
    } else {
        match json_body(&body) {
            Ok(r) => r,
            Err(r) => return r,
        }
    };
    let store = s.store();
    let mut out = serde_json::Map::new();
    for (on, kind, name) in [
        (req.access, TokenKind::Access, "access"),
        (req.refresh, TokenKind::Refresh, "refresh"),
        (req.ws, TokenKind::Ws, "ws"),
    ] {
        if on {
            match store.revoke(kind) {
                Ok(n) => {
                    out.insert(name.into(), json!(n));
                }
                Err(e) => return internal(e),
            }
        }
    }
    Json(json!({"revoked": out})).into_response()
}

#[derive(Deserialize)]
struct Claim {
    project_uuid: String,
    team_slug: String,
}

async fn claim_project(State(s): State<AppState>, body: Bytes) -> Response {
    let c: Claim = match json_body(&body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !spec_kitty_protocol::envelope::is_uuid(&c.project_uuid) {
        return error(
            StatusCode::BAD_REQUEST,
            "project_uuid: must be a hyphenated UUID",
        );
    }
    match s.store().claim(&c.project_uuid, &c.team_slug) {
        Ok(()) => {
            Json(json!({"project_uuid": c.project_uuid, "team_slug": c.team_slug})).into_response()
        }
        Err(e) => internal(e),
    }
}
