//! The one connection to the SaaS: real time over a WebSocket, backlogs
//! and reconciliation over the batch endpoint, token refresh.
//!
//! One task, one loop: `offline` (not logged in, or the session ended) →
//! `connecting` (refresh if due, batch the backlog, ws-token, WebSocket
//! upgrade, snapshot) → `connected` (send each pending event in `seq` order
//! as one text frame, marked in flight; acks and errors applied to the store
//! in one transaction per group) → on any failure `backoff`
//! (`min(0.5 s·2^n, 30 s)`, jitter, reset after a delivery), never a busy loop.
//!
//! Why an event leaves the queue only on a server answer: a WebSocket send
//! proves nothing (the 2.x SaaS never acks). In-flight events that got no
//! ack within [`ACK_GRACE`] are reconciled through the batch endpoint, where
//! `duplicate` confirms the WebSocket delivery. A dropped socket puts every
//! in-flight event back to pending; the server deduplicates by `event_id`,
//! so "at least once" on the wire is "exactly once" at the server.
//!
//! Tokens live only in this task's memory and in the credentials file. The
//! daemon alone refreshes them, under the machine-wide lock, re-reading the
//! file first (another process may have refreshed or logged in). A refresh
//! answered 401 ends the session: nothing more is sent, every event stays
//! queued, status says "run spec-kitty auth login".

use crate::saas::{self, SaasError, BATCH_MAX};
use crate::store::{Outcome, QueuedEvent, Store, StoreError};
use crate::writer::Writer;
use futures_util::{FutureExt, SinkExt, StreamExt};
use spec_kitty_protocol::credentials::{self, Credentials};
use spec_kitty_protocol::ipc::{AuthStatus, ConnState, ConnectionStatus, SyncSummary};
use spec_kitty_protocol::saas::{AckStatus, ErrorStatus, WsFrame, DEFAULT_SERVER_URL};
use spec_kitty_protocol::Paths;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue, Message};

/// Rejections an event gets before it is parked.
pub const MAX_ATTEMPTS: u64 = 3;
/// Events in flight on the WebSocket at once.
const WINDOW: usize = 500;
/// Pending events at or above which a fill goes by batch, not WebSocket.
const BACKLOG_THRESHOLD: usize = 200;
/// How long an in-flight event waits for an ack before the batch endpoint
/// is asked about it (servers that never ack).
pub const ACK_GRACE: Duration = Duration::from_millis(1500);
/// Refresh the access token when it expires within this.
const REFRESH_AHEAD: Duration = Duration::from_secs(60);
/// Longest backoff.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Bound on connecting (TCP + TLS + upgrade + snapshot).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `min(0.5 s · 2^n, 30 s)` with ±20 % jitter; `n` counts failures since
/// the last success (starting at 0).
pub fn backoff_delay(n: u32) -> Duration {
    let base = Duration::from_millis(500)
        .saturating_mul(1u32 << n.min(16))
        .min(BACKOFF_MAX);
    let jitter = 0.8 + fastrand::f64() * 0.4;
    base.mul_f64(jitter).min(BACKOFF_MAX)
}

/// What status shows of the transport (shared with the IPC server).
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub connection: ConnectionStatus,
    pub auth: AuthStatus,
    pub next_retry_at: Option<Instant>,
    /// Events confirmed delivered / duplicate since start.
    pub delivered: u64,
    pub duplicates: u64,
    /// Bumped each time the transport enters backoff or offline (SyncNow
    /// waits for "it tried and stopped").
    pub stops: u64,
    /// Logged in with events still to send: keeps an auto-spawned daemon
    /// from idle-exiting.
    pub busy: bool,
}

enum Ctl {
    Reload,
    Kick,
}

/// The IPC server's handle on the transport task.
#[derive(Clone)]
pub struct Handle {
    live: Arc<Mutex<Live>>,
    ctl: mpsc::UnboundedSender<Ctl>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("transport::Handle")
    }
}

impl Handle {
    /// Status of the connection and the login.
    pub fn status(&self) -> (ConnectionStatus, AuthStatus) {
        let l = self.live.lock().expect("live lock");
        let mut c = l.connection.clone();
        c.next_retry_secs = l
            .next_retry_at
            .map(|t| t.saturating_duration_since(Instant::now()).as_secs());
        (c, l.auth.clone())
    }

    /// Credentials changed (login/logout/SIGHUP): reconnect with them.
    pub fn reload(&self) {
        let _ = self.ctl.send(Ctl::Reload);
    }

    /// Events became sendable outside a commit (re-queued parked events):
    /// try at once.
    pub fn kick(&self) {
        let _ = self.ctl.send(Ctl::Kick);
    }

    /// Whether an idle exit would strand sendable events.
    pub fn busy(&self) -> bool {
        self.live.lock().expect("live lock").busy
    }

    /// `spec-kitty sync now`: retry at once (skipping backoff); with `wait`,
    /// answer when the queue is drained or sending stopped.
    pub async fn sync_now(&self, paths: &Paths, writer: &Writer, wait: bool) -> SyncSummary {
        // Barrier: emits sent before this request are committed first.
        let _ = writer.run(|_| ()).await;
        let (d0, u0, stops0) = {
            let l = self.live.lock().expect("live lock");
            (l.delivered, l.duplicates, l.stops)
        };
        let parked0 = read_counts(paths, 0).await.map_or(0, |c| c.parked_total);
        let _ = self.ctl.send(Ctl::Kick);
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut stopped_reason = None;
        if wait {
            // Let the kick be seen before judging the state.
            tokio::time::sleep(Duration::from_millis(50)).await;
            loop {
                let depth = read_counts(paths, 0).await.map_or(0, |c| c.queue_depth);
                if depth == 0 {
                    break;
                }
                {
                    let l = self.live.lock().expect("live lock");
                    let st = &l.connection.state;
                    if *st == ConnState::Offline || (*st == ConnState::Backoff && l.stops > stops0)
                    {
                        stopped_reason = l
                            .connection
                            .last_error
                            .clone()
                            .or_else(|| l.connection.reason.clone());
                        break;
                    }
                }
                if Instant::now() >= deadline {
                    stopped_reason = Some("gave up waiting after 600 s".into());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        } else {
            let l = self.live.lock().expect("live lock");
            if l.connection.state == ConnState::Offline {
                stopped_reason = l.connection.reason.clone();
            }
        }
        let counts = read_counts(paths, 1000).await;
        let l = self.live.lock().expect("live lock");
        let mut summary = SyncSummary {
            synced: l.delivered - d0,
            duplicates: l.duplicates - u0,
            stopped_reason,
            ..SyncSummary::default()
        };
        if let Some(c) = counts {
            summary.remaining = c.queue_depth;
            summary.held = c.held;
            let new_parked = c.parked_total.saturating_sub(parked0) as usize;
            // The newest parked events are the ones this sync parked.
            summary.rejected = c.parked.into_iter().rev().take(new_parked).collect();
            summary.rejected.reverse();
        }
        summary
    }
}

/// Queue counts through a read-only connection (never blocks emits).
async fn read_counts(paths: &Paths, parked_limit: usize) -> Option<crate::store::StoreCounts> {
    let path = paths.store();
    tokio::task::spawn_blocking(move || {
        let conn = crate::store::open_read_only(&path).ok()?;
        crate::store::counts(&conn, parked_limit).ok()
    })
    .await
    .ok()
    .flatten()
}

/// Starts the transport task. It ends when `shutdown` becomes `Some`,
/// after putting in-flight events back to pending.
pub fn spawn(
    paths: Paths,
    writer: Writer,
    shutdown: watch::Receiver<Option<String>>,
) -> (Handle, tokio::task::JoinHandle<()>) {
    let live = Arc::new(Mutex::new(Live::default()));
    let (ctl, rx) = mpsc::unbounded_channel();
    let handle = Handle {
        live: live.clone(),
        ctl,
    };
    let mut t = Transport {
        paths,
        writer,
        live,
        ctl: rx,
        shutdown,
        creds: Credentials::default(),
        session_over: None,
        agent: saas::agent(),
        failures: 0,
        last_refresh: None,
    };
    // Read the login before the IPC server answers anything, so the first
    // status already says "offline, run auth login" rather than a blank.
    t.reload_creds();
    match t.offline_reason() {
        Some(reason) => t.set(ConnState::Offline, Some(reason), None),
        None => t.set(
            ConnState::Connecting,
            Some(format!("to {}", t.base())),
            None,
        ),
    }
    let task = tokio::spawn(async move {
        t.run().await;
        log_requeued(&t.writer.run(|s| s.requeue_in_flight()).await);
    });
    (handle, task)
}

/// Logs how many in-flight events went back to pending: each may already
/// be at the server and will be sent again (the tests bound re-sends on
/// the wire by these counts).
fn log_requeued<E>(r: &Result<Result<u64, crate::store::StoreError>, E>) {
    if let Ok(Ok(n)) = r {
        if *n > 0 {
            tracing::info!("{n} in-flight event(s) back to pending");
        }
    }
}

/// Why a session ended.
enum End {
    Shutdown,
    Reload,
    /// The refresh token was refused: logged out until the next login.
    SessionOver(String),
    /// Anything transient: back off and retry.
    Failed(String),
}

struct Transport {
    paths: Paths,
    writer: Writer,
    live: Arc<Mutex<Live>>,
    ctl: mpsc::UnboundedReceiver<Ctl>,
    shutdown: watch::Receiver<Option<String>>,
    creds: Credentials,
    /// Set when the refresh token was refused for these credentials.
    session_over: Option<String>,
    agent: ureq::Agent,
    failures: u32,
    last_refresh: Option<Instant>,
}

impl Transport {
    fn set(&self, state: ConnState, reason: Option<String>, error: Option<String>) {
        let mut l = self.live.lock().expect("live lock");
        let stopped = matches!(state, ConnState::Backoff | ConnState::Offline);
        if stopped && l.connection.state != state {
            l.stops += 1;
        }
        if error.is_some() || state == ConnState::Connected {
            l.connection.last_error = error;
        }
        if state != ConnState::Backoff {
            l.next_retry_at = None;
        }
        l.connection.state = state;
        l.connection.reason = reason;
        l.connection.server_url = self.creds.server_url.clone();
        let logged_in = self.creds.logged_in() && self.session_over.is_none();
        l.auth = AuthStatus {
            logged_in,
            username: self.creds.username.clone(),
            team_slug: self.creds.team_slug.clone(),
            hint: (!logged_in).then(|| {
                self.session_over
                    .as_ref()
                    .map(|r| format!("{r}; run spec-kitty auth login"))
                    .unwrap_or_else(|| "run spec-kitty auth login".to_string())
            }),
        };
        if !logged_in {
            l.busy = false;
        }
    }

    fn delivered(&self, delivered: u64, duplicates: u64) {
        let mut l = self.live.lock().expect("live lock");
        l.delivered += delivered;
        l.duplicates += duplicates;
    }

    fn set_busy(&self, busy: bool) {
        self.live.lock().expect("live lock").busy = busy;
    }

    fn reload_creds(&mut self) {
        self.creds = crate::config::read_credentials(&self.paths);
        self.session_over = None;
        self.failures = 0;
    }

    fn base(&self) -> String {
        self.creds
            .server_url
            .clone()
            .unwrap_or_else(|| DEFAULT_SERVER_URL.to_string())
    }

    /// Why nothing can be sent with the current login, if so.
    fn offline_reason(&self) -> Option<String> {
        if !self.creds.logged_in() {
            Some("not logged in; events stay queued".to_string())
        } else if let Some(r) = &self.session_over {
            Some(format!("{r}; events stay queued"))
        } else {
            credentials::check_server_url(&self.base(), self.creds.insecure).err()
        }
    }

    async fn run(&mut self) {
        loop {
            if self.shutdown.borrow().is_some() {
                return;
            }
            if let Some(reason) = self.offline_reason() {
                self.set(ConnState::Offline, Some(reason), None);
                match self.wait(None).await {
                    Wake::Shutdown => return,
                    Wake::Reload => self.reload_creds(),
                    Wake::Kick | Wake::Timer => {}
                }
                continue;
            }
            self.set(
                ConnState::Connecting,
                Some(format!("to {}", self.base())),
                None,
            );
            let end = self.session().await;
            // Whatever ended the session, unconfirmed events go back to
            // pending (the next session re-sends; the server deduplicates).
            log_requeued(&self.writer.run(|s| s.requeue_in_flight()).await);
            match end {
                End::Shutdown => return,
                End::Reload => self.reload_creds(),
                End::SessionOver(reason) => {
                    tracing::warn!("{reason}: not sending until the next login");
                    self.session_over = Some(reason);
                }
                End::Failed(error) => {
                    let delay = backoff_delay(self.failures);
                    self.failures = self.failures.saturating_add(1);
                    tracing::info!(
                        "transport: {error}; retrying in {:.1} s",
                        delay.as_secs_f64()
                    );
                    self.set(
                        ConnState::Backoff,
                        Some(format!("retrying in {:.1} s", delay.as_secs_f64())),
                        Some(error),
                    );
                    self.live.lock().expect("live lock").next_retry_at =
                        Some(Instant::now() + delay);
                    match self.wait(Some(delay)).await {
                        Wake::Shutdown => return,
                        Wake::Reload => self.reload_creds(),
                        Wake::Kick | Wake::Timer => {}
                    }
                }
            }
        }
    }

    /// Waits for a control message, shutdown, or `timeout`.
    async fn wait(&mut self, timeout: Option<Duration>) -> Wake {
        let sleep = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(86_400 * 365)));
        tokio::select! {
            _ = self.shutdown.changed() => Wake::Shutdown,
            c = self.ctl.recv() => match c {
                Some(Ctl::Reload) => Wake::Reload,
                Some(Ctl::Kick) => Wake::Kick,
                None => Wake::Shutdown,
            },
            _ = sleep => Wake::Timer,
        }
    }

    /// Runs a blocking SaaS call off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ureq::Agent) -> T + Send + 'static,
    ) -> T {
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || f(&agent))
            .await
            .expect("SaaS call panicked")
    }

    /// Refreshes the tokens (forced, or when the access token expires soon).
    async fn refresh(&mut self, force: bool) -> Result<(), End> {
        let now = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
        let due = self.creds.access.is_none()
            || self
                .creds
                .access_expires_at
                .is_some_and(|t| t - now < REFRESH_AHEAD.as_micros() as i64);
        // A server issuing very short lifetimes must not make us refresh in
        // a loop: proactive refreshes are at least 5 s apart.
        let recent = self
            .last_refresh
            .is_some_and(|t| t.elapsed() < Duration::from_secs(5));
        if !force && (!due || recent) {
            return Ok(());
        }
        let paths = self.paths.clone();
        let used = self.creds.refresh.clone();
        let base = self.base();
        let r = self
            .blocking(move |agent| refresh_locked(&paths, agent, &base, used.as_deref()))
            .await;
        self.last_refresh = Some(Instant::now());
        match r {
            Ok(c) => {
                let team_changed = c.team_slug != self.creds.team_slug;
                self.creds = c;
                if team_changed {
                    let team = self.creds.team_slug_or_local();
                    let _ = self.writer.run(move |s| s.stamp.team_slug = team).await;
                }
                Ok(())
            }
            Err(RefreshError::SessionOver(r)) => Err(End::SessionOver(r)),
            Err(RefreshError::Transient(e)) => Err(End::Failed(e)),
        }
    }

    /// A call that needs the access token: 401 → refresh and retry once.
    async fn with_access<T: Send + 'static>(
        &mut self,
        f: impl Fn(&ureq::Agent, &str, &str) -> Result<T, SaasError> + Send + Sync + Clone + 'static,
    ) -> Result<T, End> {
        self.refresh(false).await?;
        for attempt in 0..2 {
            let access = self.creds.access.clone().unwrap_or_default();
            let base = self.base();
            let g = f.clone();
            match self.blocking(move |a| g(a, &base, &access)).await {
                Ok(v) => return Ok(v),
                Err(SaasError::Unauthorized { .. }) if attempt == 0 => {
                    tracing::info!("access token refused (401); refreshing");
                    self.refresh(true).await?;
                }
                Err(e) => return Err(End::Failed(e.to_string())),
            }
        }
        Err(End::Failed("unauthorized after a token refresh".into()))
    }

    /// Uploads `events` through the batch endpoint and applies the results
    /// in one transaction per request. A batch the server refuses as too
    /// large is split in halves (in `seq` order) until it fits; a single
    /// event refused for its size is rejected (and parked after
    /// `MAX_ATTEMPTS`) so the events behind it still go.
    async fn upload(&mut self, events: Vec<(String, String)>) -> Result<(), End> {
        let mut chunks = vec![events];
        while let Some(chunk) = chunks.pop() {
            if chunk.is_empty() {
                continue;
            }
            let n = chunk.len();
            let chunk = Arc::new(chunk);
            let ev = chunk.clone();
            let reply = self
                .with_access(
                    move |a, base, access| match saas::batch(a, base, access, &ev) {
                        Err(SaasError::TooLarge { .. }) if ev.len() > 1 => Ok(None),
                        // One event too large on its own can never be sent
                        // as it is: a rejection (parked after MAX_ATTEMPTS,
                        // kept, and re-queued by `sync retry-parked`), not a
                        // failure that would stall the queue behind it.
                        Err(e @ SaasError::TooLarge { .. }) => Ok(Some(
                            ev.iter()
                                .map(|(id, _)| (id.clone(), Outcome::Rejected(e.to_string())))
                                .collect(),
                        )),
                        other => other.map(Some),
                    },
                )
                .await
                .inspect_err(|_| {
                    // The server may hold them all the same: a later session
                    // re-sends them (the tests bound re-sends by these counts).
                    tracing::info!("{n} event(s) of a batch upload unconfirmed");
                })?;
            match reply {
                Some(results) => self.apply(results).await.inspect_err(|_| {
                    // The server answered but the store could not record
                    // it (e.g. a full disk): a later session sends them again.
                    tracing::info!("{n} event(s) of a batch upload unconfirmed");
                })?,
                None => {
                    let mut first = Arc::try_unwrap(chunk).unwrap_or_else(|c| (*c).clone());
                    tracing::info!(
                        "the server refused a batch of {} events as too large; splitting it",
                        first.len()
                    );
                    let second = first.split_off(first.len() / 2);
                    chunks.push(second);
                    chunks.push(first);
                }
            }
        }
        Ok(())
    }

    /// Runs a store job in the writer thread; a stopped writer or a store
    /// error fails the session (it backs off and retries).
    async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, End> {
        self.writer
            .run(f)
            .await
            .map_err(|_| End::Failed("the store writer is unavailable".into()))?
            .map_err(|e| End::Failed(e.to_string()))
    }

    async fn apply(&mut self, results: Vec<(String, Outcome)>) -> Result<(), End> {
        let sum = self
            .store(move |s| s.apply_results(&results, MAX_ATTEMPTS))
            .await?;
        if sum.parked > 0 {
            tracing::warn!("{} event(s) rejected by the server and parked", sum.parked);
        }
        if sum.delivered + sum.duplicates > 0 {
            self.failures = 0;
            self.delivered(sum.delivered, sum.duplicates);
        }
        Ok(())
    }

    async fn pending(&self, limit: usize) -> Result<Vec<QueuedEvent>, End> {
        self.store(move |s| s.pending_batch(0, limit)).await
    }

    /// Sends the whole backlog by batch. Returns once fewer than a full
    /// batch remained.
    async fn drain_by_batch(&mut self) -> Result<(), End> {
        loop {
            if self.shutdown.borrow().is_some() {
                return Err(End::Shutdown);
            }
            let batch = self.pending(BATCH_MAX).await?;
            if batch.is_empty() {
                return Ok(());
            }
            self.set_busy(true);
            let full = batch.len() == BATCH_MAX;
            let events = batch
                .into_iter()
                .map(|e| (e.event_id, e.envelope))
                .collect();
            self.upload(events).await?;
            if !full {
                return Ok(());
            }
        }
    }

    async fn session(&mut self) -> End {
        match self.session_steps().await {
            Ok(end) | Err(end) => end,
        }
    }

    /// One session, step by step: [`Self::prepare`] (requeue, refresh, the
    /// backlog by batch), [`Self::open_websocket`] (ws-token, upgrade,
    /// snapshot), then [`Self::connected`] until something ends it.
    async fn session_steps(&mut self) -> Result<End, End> {
        // The WebSocket's trust list (Mozilla + SSL_CERT_FILE, as HTTP's);
        // first, so a bad SSL_CERT_FILE is what the status names rather
        // than the unknown authority it causes.
        let tls = spec_kitty_protocol::tls::client_config()
            .map_err(|e| End::Failed(format!("TLS setup: {e}")))?;
        self.prepare().await?;
        let (mut ws, ws_url) = self
            .open_websocket(tokio_tungstenite::Connector::Rustls(tls))
            .await?;
        self.set(
            ConnState::Connected,
            Some(format!("WebSocket {ws_url}")),
            None,
        );
        let end = self.connected(&mut ws).await;
        // Close politely where we can; a dead socket just errors.
        let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
        end
    }

    /// Before the WebSocket: rows left in flight, the access token, the
    /// backlog (by batch).
    async fn prepare(&mut self) -> Result<(), End> {
        // Rows left in flight by an earlier session (whose requeue may have
        // failed, e.g. on a full disk) belong to no session now: back to
        // pending before anything is selected, or they would never be sent.
        let requeued = self.writer.run(|s| s.requeue_in_flight()).await;
        log_requeued(&requeued);
        requeued
            .map_err(|_| End::Failed("the store writer is unavailable".into()))?
            .map_err(|e| End::Failed(e.to_string()))?;
        self.refresh(false).await?;
        self.drain_by_batch().await
    }

    /// Where the WebSocket is opened: a single-use ws-token, the upgrade
    /// (bounded by [`CONNECT_TIMEOUT`]), then the snapshot the server sends
    /// first. Returns the socket and its URL.
    async fn open_websocket(
        &mut self,
        tls: tokio_tungstenite::Connector,
    ) -> Result<(WsStream, String), End> {
        let ws_token = self.with_access(saas::ws_token).await?;
        let ws_url = ws_url(&self.base()).map_err(|e| End::Failed(e.to_string()))?;
        let mut req = ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| End::Failed(format!("bad WebSocket URL {ws_url}: {e}")))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {ws_token}"))
            .map_err(|_| End::Failed("the ws-token is not a valid header value".into()))?;
        req.headers_mut().insert("Authorization", bearer);
        let (mut ws, _) = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::connect_async_tls_with_config(req, None, false, Some(tls)),
        )
        .await
        {
            Err(_) => return Err(End::Failed("WebSocket connect timed out".into())),
            Ok(Err(e)) => {
                let msg = e.to_string();
                return Err(End::Failed(
                    if spec_kitty_protocol::tls::explain_certificate_error(&msg).is_some() {
                        format!(
                            "WebSocket TLS failure: {}",
                            saas::tls_message(&self.base(), &msg)
                        )
                    } else {
                        format!("WebSocket connect: {msg}")
                    },
                ));
            }
            Ok(Ok(s)) => s,
        };
        // The snapshot comes first; nothing else is expected before it.
        match tokio::time::timeout(CONNECT_TIMEOUT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => match WsFrame::parse(t.as_str()) {
                Some(WsFrame::Snapshot(snap)) => tracing::info!(
                    "connected to {ws_url}: snapshot of {} project(s) for team {}",
                    snap.projects.len(),
                    snap.team_slug.as_deref().unwrap_or("?")
                ),
                _ => tracing::info!("connected to {ws_url}; first frame was not a snapshot"),
            },
            Ok(Some(Ok(other))) => {
                tracing::info!("connected; first frame was not a snapshot: {other:?}")
            }
            Ok(Some(Err(e))) => return Err(End::Failed(format!("WebSocket: {e}"))),
            Ok(None) => return Err(End::Failed("WebSocket closed before the snapshot".into())),
            Err(_) => return Err(End::Failed("no snapshot within 10 s".into())),
        }
        Ok((ws, ws_url))
    }

    /// Serves an open WebSocket until something ends the session: fills
    /// the window on every commit, reconciles unacked events on a tick,
    /// applies the server's answers.
    async fn connected(&mut self, ws: &mut WsStream) -> Result<End, End> {
        let mut commits = self.writer.commits();
        commits.mark_changed(); // fill once at start
        let mut in_flight = InFlight::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fill = true;
        loop {
            if fill {
                if self.fill_window(ws, &mut in_flight).await? {
                    continue; // a backlog went by batch: look again at once
                }
                self.set_busy(!in_flight.is_empty());
            }
            tokio::select! {
                _ = self.shutdown.changed() => return Ok(End::Shutdown),
                c = self.ctl.recv() => match c {
                    Some(Ctl::Reload) | None => return Ok(End::Reload),
                    Some(Ctl::Kick) => fill = true,
                },
                r = commits.changed() => {
                    if r.is_err() { return Ok(End::Shutdown); }
                    fill = true;
                }
                _ = tick.tick() => {
                    self.refresh(false).await?;
                    fill = self.reconcile_stale(&mut in_flight).await?;
                }
                msg = ws.next() => fill = self.take_frames(ws, msg, &mut in_flight).await?,
            }
        }
    }

    /// Sends pending events as frames, up to [`WINDOW`] in flight. A
    /// backlog of [`BACKLOG_THRESHOLD`] or more goes by batch instead (one
    /// request beats hundreds of frames); returns true then, as more may
    /// be pending.
    async fn fill_window(
        &mut self,
        ws: &mut WsStream,
        in_flight: &mut InFlight,
    ) -> Result<bool, End> {
        let room = WINDOW.saturating_sub(in_flight.len());
        if room == 0 {
            return Ok(false);
        }
        let batch = self
            .pending(BATCH_MAX.min(room.max(BACKLOG_THRESHOLD)))
            .await?;
        if batch.len() >= BACKLOG_THRESHOLD {
            self.set_busy(true);
            let events = batch
                .into_iter()
                .map(|e| (e.event_id, e.envelope))
                .collect();
            self.upload(events).await?;
            return Ok(true);
        }
        let batch: Vec<_> = batch.into_iter().take(room).collect();
        if batch.is_empty() {
            return Ok(false);
        }
        let seqs: Vec<u64> = batch.iter().map(|e| e.seq).collect();
        self.store(move |s| s.mark_in_flight(&seqs)).await?;
        let at = Instant::now();
        for e in batch {
            ws.feed(Message::text(e.envelope.clone()))
                .await
                .map_err(|e| End::Failed(format!("WebSocket send: {e}")))?;
            in_flight.insert(
                e.event_id,
                Sent {
                    at,
                    envelope: e.envelope,
                },
            );
        }
        ws.flush()
            .await
            .map_err(|e| End::Failed(format!("WebSocket send: {e}")))?;
        Ok(false)
    }

    /// Servers that never ack: events in flight for [`ACK_GRACE`] are asked
    /// about through the batch endpoint. Returns whether any were.
    async fn reconcile_stale(&mut self, in_flight: &mut InFlight) -> Result<bool, End> {
        let stale: Vec<(String, String)> = in_flight
            .iter()
            .filter(|(_, sent)| sent.at.elapsed() >= ACK_GRACE)
            .take(BATCH_MAX)
            .map(|(id, sent)| (id.clone(), sent.envelope.clone()))
            .collect();
        if stale.is_empty() {
            return Ok(false);
        }
        tracing::info!("reconciling {} unacked event(s) by batch", stale.len());
        for (id, _) in &stale {
            in_flight.remove(id);
        }
        self.upload(stale).await?;
        Ok(true)
    }

    /// Handles `first` and every frame already here after it, then applies
    /// their outcomes in one transaction. Returns whether any were applied.
    async fn take_frames(
        &mut self,
        ws: &mut WsStream,
        first: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        in_flight: &mut InFlight,
    ) -> Result<bool, End> {
        let mut results = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                None => return Err(End::Failed("the server closed the WebSocket".into())),
                Some(Err(e)) => return Err(End::Failed(format!("WebSocket: {e}"))),
                Some(Ok(Message::Close(f))) => {
                    return Err(End::Failed(format!(
                        "the server closed the WebSocket{}",
                        f.map(|f| format!(" ({} {})", f.code, f.reason))
                            .unwrap_or_default()
                    )))
                }
                Some(Ok(Message::Text(t))) => {
                    if let Some(reply) = self.on_frame(t.as_str(), in_flight, &mut results) {
                        ws.send(Message::text(reply))
                            .await
                            .map_err(|e| End::Failed(format!("WebSocket send: {e}")))?;
                    }
                }
                Some(Ok(_)) => {} // protocol pings are answered by tungstenite
            }
            next = ws.next().now_or_never();
        }
        if results.is_empty() {
            return Ok(false);
        }
        self.apply(results).await?;
        Ok(true)
    }

    /// Handles one text frame from the server; returns a reply to send.
    fn on_frame(
        &self,
        text: &str,
        in_flight: &mut InFlight,
        results: &mut Vec<(String, Outcome)>,
    ) -> Option<String> {
        match WsFrame::parse(text)? {
            WsFrame::Ping { timestamp } => return Some(WsFrame::Pong { timestamp }.to_text()),
            WsFrame::Ack { event_id, status } => {
                in_flight.remove(&event_id);
                let o = match status {
                    AckStatus::Duplicate => Outcome::Duplicate,
                    AckStatus::Accepted | AckStatus::Other => Outcome::Delivered,
                };
                results.push((event_id, o));
            }
            WsFrame::Error(e) => {
                let reason = e.reason().unwrap_or("rejected by the server").to_string();
                let Some(id) = e.event_id else {
                    tracing::warn!("server error without event_id: {reason}");
                    return None;
                };
                in_flight.remove(&id);
                let o = if e.status == ErrorStatus::Rejected {
                    Outcome::Rejected(reason)
                } else {
                    Outcome::Retry(reason)
                };
                results.push((id, o));
            }
            WsFrame::Snapshot(_) | WsFrame::Pong { .. } => {}
            WsFrame::Unknown => tracing::debug!("ignored a server frame of an unknown type"),
        }
        None
    }
}

/// The WebSocket to the server.
type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An event sent as a frame and not yet answered.
struct Sent {
    at: Instant,
    envelope: String,
}

/// Events in flight on the WebSocket, by `event_id`.
type InFlight = HashMap<String, Sent>;

enum Wake {
    Shutdown,
    Reload,
    Kick,
    Timer,
}

/// A server URL that is neither `https://` nor `http://` (the URL, without
/// its trailing slashes).
#[derive(Debug, thiserror::Error)]
#[error("server URL {0:?} is not http(s)")]
pub struct NotHttp(pub String);

/// `https://h/...` → `wss://h/ws/v1/events/`; `http` → `ws` (loopback or
/// `--insecure` only: checked before we get here).
pub fn ws_url(base: &str) -> Result<String, NotHttp> {
    let base = base.trim_end_matches('/');
    let rest = if let Some(r) = base.strip_prefix("https://") {
        format!("wss://{r}")
    } else if let Some(r) = base.strip_prefix("http://") {
        format!("ws://{r}")
    } else {
        return Err(NotHttp(base.to_string()));
    };
    Ok(format!("{rest}/ws/v1/events/"))
}

enum RefreshError {
    SessionOver(String),
    Transient(String),
}

/// Refresh under the machine-wide lock. Re-reads the file first: when it
/// holds a refresh token other than the one we used, another process
/// refreshed (or the user logged in again) — take that instead of spending
/// a rotated token. Writes rotated tokens back atomically. A 401 ends the
/// session: the tokens are removed from the file (user and server kept).
fn refresh_locked(
    paths: &Paths,
    agent: &ureq::Agent,
    base: &str,
    used: Option<&str>,
) -> Result<Credentials, RefreshError> {
    let _lock = credentials::lock(paths, Duration::from_secs(10))
        .map_err(|e| RefreshError::Transient(e.to_string()))?;
    let cur = credentials::read(paths)
        .map_err(|e| RefreshError::Transient(e.to_string()))?
        .unwrap_or_default();
    let now = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
    if cur.refresh.is_some() && cur.refresh.as_deref() != used {
        let fresh = cur
            .access_expires_at
            .is_some_and(|t| t - now >= REFRESH_AHEAD.as_micros() as i64);
        if fresh {
            tracing::info!("credentials were refreshed by another process; using them");
            return Ok(cur);
        }
    }
    let Some(refresh) = cur.refresh.clone() else {
        return Err(RefreshError::SessionOver("not logged in".into()));
    };
    if cur.refresh_expires_at.is_some_and(|t| t <= now) {
        end_session(paths, &cur);
        return Err(RefreshError::SessionOver("the session expired".into()));
    }
    let base = cur.server_url.clone().unwrap_or_else(|| base.to_string());
    match saas::refresh(agent, &base, &refresh) {
        Ok(t) => {
            let mut next = cur.clone();
            let (access_expires_at, refresh_expires_at) = t.expiries(now);
            next.access = Some(t.access);
            next.refresh = Some(t.refresh);
            next.access_expires_at = Some(access_expires_at);
            next.refresh_expires_at = Some(refresh_expires_at);
            if t.team_slug.is_some() {
                next.team_slug = t.team_slug;
            }
            credentials::write(paths, &next).map_err(|e| {
                // The rotated token is only in memory now; keep using it.
                tracing::error!("{e}: the refreshed tokens could not be saved");
                RefreshError::Transient(e.to_string())
            })?;
            tracing::info!("access token refreshed");
            Ok(next)
        }
        Err(SaasError::Unauthorized { .. }) => {
            end_session(paths, &cur);
            Err(RefreshError::SessionOver(
                "the server ended the session (refresh refused)".into(),
            ))
        }
        Err(e) => Err(RefreshError::Transient(e.to_string())),
    }
}

/// Removes the tokens from the file (the user and server stay, so status
/// can say who should log in again).
fn end_session(paths: &Paths, cur: &Credentials) {
    let mut next = cur.clone();
    next.access = None;
    next.refresh = None;
    next.access_expires_at = None;
    next.refresh_expires_at = None;
    if let Err(e) = credentials::write(paths, &next) {
        tracing::warn!("{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        for n in 0..40 {
            let d = backoff_delay(n);
            let nominal = (0.5 * 2f64.powi(n.min(16) as i32)).min(30.0);
            assert!(d.as_secs_f64() <= 30.0, "capped: {d:?}");
            assert!(d.as_secs_f64() >= nominal * 0.8 - 1e-9, "{n}: {d:?}");
        }
        assert!(backoff_delay(0) < Duration::from_millis(700));
    }

    #[test]
    fn ws_url_maps_schemes() {
        assert_eq!(
            ws_url("https://x.example/").ok().unwrap(),
            "wss://x.example/ws/v1/events/"
        );
        assert_eq!(
            ws_url("http://127.0.0.1:5").ok().unwrap(),
            "ws://127.0.0.1:5/ws/v1/events/"
        );
        assert_eq!(
            ws_url("ftp://x/").unwrap_err().to_string(),
            r#"server URL "ftp://x" is not http(s)"#
        );
    }
}
