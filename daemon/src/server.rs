//! The IPC server: accepts local-socket connections and answers requests.
//!
//! One task per connection. Every connection is checked first: the peer's
//! uid must equal ours (SO_PEERCRED), else it is dropped without a word.
//! Then `Hello` → `HelloReply` (version check, [`ipc::compat`]), then any
//! number of `Request` → `Response`. An undecodable or oversized frame gets
//! a typed error and that connection is closed; the daemon keeps serving
//! everybody else.
//!
//! Version skew (ARCHITECTURE.md): a client whose protocol is *newer* than
//! ours gets `Incompatible`, and may then send exactly one `Shutdown` on the
//! same connection to make this older daemon drain and exit (guarded by a
//! restart cooldown). A client *older* than us gets `Incompatible` and the
//! connection closes: it must not restart a newer daemon.

use crate::spool;
use crate::store::{Origin, StoreCounts};
use crate::writer::{CommitError, Writer, WriterGone};
use interprocess::local_socket::tokio::{prelude::*, Listener, Stream};
use serde::{de::DeserializeOwned, Serialize};
use spec_kitty_protocol::envelope::EventEnvelope;
use spec_kitty_protocol::ipc::{
    self, Compat, DaemonMode, DaemonStatus, ErrorKind, FrameError, Hello, HelloReply, Request,
    Response, SyncSummary, Welcome, PROTOCOL_MAJOR, PROTOCOL_MINOR,
};
use spec_kitty_protocol::Paths;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

/// How long a new connection may take to say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Stamp file of the last version-skew shutdown (restart-loop guard).
pub fn skew_stamp(paths: &Paths) -> PathBuf {
    paths.state_dir().join("skew-shutdown.stamp")
}

/// Re-reads the login (on `Reload` and SIGHUP): the transport takes the
/// new credentials and later events are stamped with its `team_slug`.
/// Returns that team, or [`WriterGone`] when the store has stopped.
pub async fn reload_login(shared: &Shared) -> Result<String, WriterGone> {
    let team = crate::config::read_credentials(&shared.paths).team_slug_or_local();
    shared.transport.reload();
    let t = team.clone();
    shared.writer.run(move |s| s.stamp.team_slug = t).await?;
    Ok(team)
}

/// State every connection task shares.
pub struct Shared {
    pub paths: Paths,
    pub writer: Writer,
    pub started: Instant,
    pub mode: DaemonMode,
    pub socket: PathBuf,
    pub skew_cooldown: Duration,
    /// Set to `Some(reason)` to start draining.
    pub shutdown: watch::Sender<Option<String>>,
    pub active: AtomicUsize,
    pub last_activity: Mutex<Instant>,
    pub refused_peers: AtomicUsize,
    /// The SaaS transport task (status, SyncNow, Reload).
    pub transport: crate::transport::Handle,
}

impl Shared {
    pub fn touch(&self) {
        *self.last_activity.lock().expect("activity lock") = Instant::now();
    }

    /// Asks the daemon to drain and exit (first reason wins).
    pub fn request_shutdown(&self, reason: &str) {
        self.shutdown.send_if_modified(|cur| {
            if cur.is_none() {
                *cur = Some(reason.to_string());
                true
            } else {
                false
            }
        });
    }

    fn draining(&self) -> bool {
        self.shutdown.borrow().is_some()
    }

    fn welcome(&self) -> Welcome {
        Welcome {
            major: PROTOCOL_MAJOR,
            minor: PROTOCOL_MINOR,
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
        }
    }
}

/// Accepts connections until shutdown is requested or the daemon has been
/// idle for `idle_exit` (auto-spawned mode). Returns why it stopped. The
/// caller closes the listener (drops it) right after.
pub async fn accept_loop(
    listener: &Listener,
    shared: Arc<Shared>,
    idle_exit: Option<Duration>,
) -> String {
    let mut shutdown = shared.shutdown.subscribe();
    let tick = idle_exit
        .map(|d| (d / 4).clamp(Duration::from_millis(50), Duration::from_secs(5)))
        .unwrap_or(Duration::from_secs(3600));
    let mut ticker = tokio::time::interval(tick);
    loop {
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok(stream) => {
                    let sh = shared.clone();
                    sh.active.fetch_add(1, Ordering::SeqCst);
                    sh.touch();
                    tokio::spawn(async move {
                        serve(stream, &sh).await;
                        sh.touch();
                        sh.active.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => {
                return shared.shutdown.borrow().clone().unwrap_or_default();
            }
            _ = ticker.tick() => {
                if let Some(idle) = idle_exit {
                    let quiet = shared.last_activity.lock().expect("activity lock").elapsed();
                    if shared.active.load(Ordering::SeqCst) == 0
                        && quiet >= idle
                        && !shared.transport.busy()
                    {
                        // Idle: no client for the whole timeout, and
                        // nothing the transport could still send.
                        return format!("idle for {}s", quiet.as_secs());
                    }
                }
            }
        }
    }
}

async fn read_msg<R: AsyncRead + Unpin, T: DeserializeOwned>(r: &mut R) -> Result<T, FrameError> {
    let mut header = [0u8; 4];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = ipc::frame_len(header)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    ipc::decode_body(&body)
}

async fn write_msg<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    let frame = ipc::encode_frame(msg)?;
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// One connection: [`peer_is_us`], [`handshake`], then [`pipeline`].
async fn serve(stream: Stream, shared: &Shared) {
    if !peer_is_us(&stream, shared) {
        return;
    }
    let mut r = &stream;
    let mut w = &stream;
    if let Some(hello) = handshake(&mut r, &mut w, shared).await {
        pipeline(r, w, shared, &hello).await;
    }
}

/// The peer must run as our uid (SO_PEERCRED); anyone else is dropped
/// without a word, and counted.
fn peer_is_us(stream: &Stream, shared: &Shared) -> bool {
    let me = crate::sockdir::euid();
    match stream.peer_creds().map(|c| c.euid()) {
        Ok(Some(uid)) if uid == me => true,
        Ok(uid) => {
            shared.refused_peers.fetch_add(1, Ordering::SeqCst);
            tracing::warn!("refused a connection from uid {uid:?}: only uid {me} is served");
            false
        }
        Err(e) => {
            tracing::warn!("refused a connection whose peer credentials are unreadable: {e}");
            false
        }
    }
}

/// `Hello` → `HelloReply`. Returns the client's hello when it may go on;
/// `None` when the connection is over (no hello, bad frame, version skew;
/// a newer client may first ask this daemon to shut down).
async fn handshake<R, W>(r: &mut R, w: &mut W, shared: &Shared) -> Option<Hello>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let refuse = |reason: String| HelloReply::Incompatible {
        daemon: shared.welcome(),
        reason,
    };
    let hello: Hello = match tokio::time::timeout(HELLO_TIMEOUT, read_msg(r)).await {
        Err(_) | Ok(Err(FrameError::Closed)) => return None,
        Ok(Err(e)) => {
            tracing::warn!("bad hello frame: {e}; connection closed");
            let _ = write_msg(w, &refuse(format!("expected a Hello frame: {e}"))).await;
            return None;
        }
        Ok(Ok(h)) => h,
    };
    let skew = |advice: &str| {
        format!(
            "this daemon speaks protocol {PROTOCOL_MAJOR}.{PROTOCOL_MINOR} (spec-kitty-syncd {}); client {} speaks {}.{}: {advice}",
            env!("CARGO_PKG_VERSION"), hello.version, hello.major, hello.minor
        )
    };
    match ipc::compat((hello.major, hello.minor), (PROTOCOL_MAJOR, PROTOCOL_MINOR)) {
        Compat::Compatible => {
            let welcome = HelloReply::Welcome(shared.welcome());
            write_msg(w, &welcome).await.ok().map(|()| hello)
        }
        Compat::DaemonOlder => {
            let reason = skew("the client is newer and may ask this daemon to shut down");
            let _ = write_msg(w, &refuse(reason)).await;
            skew_shutdown(r, w, shared, &hello).await;
            None
        }
        Compat::DaemonNewer => {
            let reason = skew("upgrade spec-kitty; events will be spooled");
            let _ = write_msg(w, &refuse(reason)).await;
            None
        }
    }
}

/// Any number of requests after the handshake, answered in order.
async fn pipeline<R, W>(mut r: R, mut w: W, shared: &Shared, hello: &Hello)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Pipelining: the reader keeps taking requests while earlier emits wait
    // for their group commit; the responder answers strictly in request
    // order. A bounded queue between them is the back-pressure.
    let (queue, mut answers) = mpsc::channel::<Answer>(PIPELINE_DEPTH);
    let reader = async move {
        let mut shutdown = shared.shutdown.subscribe();
        loop {
            if shared.draining() {
                return;
            }
            let req: Request = tokio::select! {
                r = read_msg(&mut r) => match r {
                    Ok(req) => req,
                    Err(FrameError::Closed) | Err(FrameError::Io(_)) => return,
                    Err(e) => {
                        tracing::warn!("bad frame from pid {}: {e}; connection closed", hello.pid);
                        let _ = queue.send(Answer::Ready(Response::Error {
                            kind: ErrorKind::BadRequest,
                            message: format!("undecodable request, connection closed: {e}"),
                        })).await;
                        return;
                    }
                },
                _ = shutdown.changed() => return,
            };
            shared.touch();
            let answer = match req {
                Request::Emit { envelope } => submit(&envelope, shared),
                other => Answer::Ready(handle(other, shared).await),
            };
            if queue.send(answer).await.is_err() {
                return;
            }
        }
    };
    let responder = async {
        while let Some(answer) = answers.recv().await {
            let resp = match answer {
                Answer::Ready(resp) => resp,
                Answer::Pending(rx) => committed(rx.await),
            };
            if write_msg(&mut w, &resp).await.is_err() {
                return;
            }
        }
    };
    // When the reader stops (hang-up, bad frame, drain), the responder still
    // answers everything already taken, then the connection closes.
    tokio::join!(reader, responder);
}

/// Most requests one connection may have outstanding.
const PIPELINE_DEPTH: usize = 1024;

/// An answer in request order: ready now, or when its commit is done.
enum Answer {
    Ready(Response),
    Pending(oneshot::Receiver<Result<crate::store::Accepted, CommitError>>),
}

/// After `Incompatible` to a newer client: honour one `Shutdown`, unless a
/// skew shutdown happened within the cooldown (restart-loop guard).
async fn skew_shutdown<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    r: &mut R,
    w: &mut W,
    shared: &Shared,
    hello: &Hello,
) {
    let Ok(Ok(Request::Shutdown { reason })) =
        tokio::time::timeout(HELLO_TIMEOUT, read_msg::<_, Request>(r)).await
    else {
        return;
    };
    let stamp = skew_stamp(&shared.paths);
    let recent = std::fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < shared.skew_cooldown);
    if recent {
        tracing::warn!(
            "refused a version-skew shutdown from spec-kitty {} (pid {}): another one happened less than {}s ago",
            hello.version, hello.pid, shared.skew_cooldown.as_secs()
        );
        let _ = write_msg(
            w,
            &Response::Error {
                kind: ErrorKind::BadRequest,
                message: format!(
                    "restart cooldown: this daemon was already replaced for version skew less than {}s ago; not shutting down again",
                    shared.skew_cooldown.as_secs()
                ),
            },
        )
        .await;
        return;
    }
    let _ = spec_kitty_protocol::fsutil::write_atomic(
        &stamp,
        format!("{}\n", hello.version).as_bytes(),
        Some(0o600),
    );
    tracing::info!(
        "version-skew shutdown requested by spec-kitty {} (pid {}): {reason}",
        hello.version,
        hello.pid
    );
    let _ = write_msg(
        w,
        &Response::Done {
            message: "draining and exiting for a newer spec-kitty".into(),
        },
    )
    .await;
    shared.request_shutdown(&format!("version skew: {reason}"));
}

async fn handle(req: Request, shared: &Shared) -> Response {
    match req {
        Request::Emit { envelope } => match submit(&envelope, shared) {
            Answer::Ready(resp) => resp,
            Answer::Pending(rx) => committed(rx.await),
        },
        Request::Status => match status(shared).await {
            Ok(s) => Response::Status {
                json: serde_json::to_string(&s).expect("status serialises"),
            },
            Err(e) => Response::Error {
                kind: ErrorKind::Internal,
                message: e.to_string(),
            },
        },
        Request::SyncNow { wait } => {
            let summary: SyncSummary = shared
                .transport
                .sync_now(&shared.paths, &shared.writer, wait)
                .await;
            Response::Synced {
                json: serde_json::to_string(&summary).expect("summary serialises"),
            }
        }
        Request::IngestSpool => {
            let paths = shared.paths.clone();
            let writer = shared.writer.clone();
            match tokio::task::spawn_blocking(move || spool::ingest(&paths, &writer)).await {
                Ok(Ok(report)) => Response::Done {
                    message: report.summary(),
                },
                _ => writer_stopped(),
            }
        }
        Request::Reload => match reload_login(shared).await {
            Ok(team) => {
                tracing::info!("reloaded credentials; team_slug is now {team}");
                Response::Done {
                    message: format!("reloaded; events are stamped team_slug={team}"),
                }
            }
            Err(_) => writer_stopped(),
        },
        Request::RetryParked => match shared.writer.run(|s| s.requeue_parked(None)).await {
            Ok(Ok(count)) => {
                tracing::info!("{count} parked event(s) re-queued on request");
                shared.transport.kick();
                Response::Requeued { count }
            }
            Ok(Err(e)) => storage_failed(&e),
            Err(_) => writer_stopped(),
        },
        Request::Shutdown { reason } => {
            tracing::info!("shutdown requested: {reason}");
            shared.request_shutdown(&reason);
            Response::Done {
                message: "draining and exiting".into(),
            }
        }
    }
}

/// The answer when the writer thread is gone (the daemon is stopping).
fn writer_stopped() -> Response {
    Response::Error {
        kind: ErrorKind::ShuttingDown,
        message: "the store writer has stopped".into(),
    }
}

/// The answer when the store refused a write: the client spools.
fn storage_failed(e: &dyn std::fmt::Display) -> Response {
    Response::Error {
        kind: ErrorKind::Storage,
        message: e.to_string(),
    }
}

fn submit(text: &str, shared: &Shared) -> Answer {
    if shared.draining() {
        return Answer::Ready(Response::Error {
            kind: ErrorKind::ShuttingDown,
            message: "the daemon is shutting down; spool the event or retry".into(),
        });
    }
    let env = match EventEnvelope::from_json(text).and_then(|e| e.validate_unstamped().map(|_| e)) {
        Ok(env) => env,
        Err(e) => {
            return Answer::Ready(Response::Error {
                kind: ErrorKind::InvalidEnvelope,
                message: e.to_string(),
            })
        }
    };
    match shared.writer.submit(env, Origin::Ipc) {
        Ok(rx) => Answer::Pending(rx),
        Err(_) => Answer::Ready(writer_stopped()),
    }
}

/// The response for the outcome of one submitted emit.
fn committed(
    r: Result<Result<crate::store::Accepted, CommitError>, oneshot::error::RecvError>,
) -> Response {
    match r {
        Ok(Ok(a)) => Response::Accepted {
            lamport_clock: a.lamport_clock,
            seq: a.seq,
            duplicate: a.duplicate,
        },
        Ok(Err(e)) => storage_failed(&e),
        Err(_) => writer_stopped(),
    }
}

/// Why the status report could not be built; the text is the `Internal`
/// error the client gets.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot open {} to read: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The blocking read panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Gone(#[from] WriterGone),
}

/// Queue counts through a read-only connection of its own (WAL), off the
/// async workers and off the writer thread, so emits never wait for status.
async fn read_counts(shared: &Shared, parked_limit: usize) -> Result<StoreCounts, StatusError> {
    let path = shared.paths.store();
    tokio::task::spawn_blocking(move || {
        let conn = crate::store::open_read_only(&path).map_err(|source| StatusError::Open {
            path: path.clone(),
            source,
        })?;
        crate::store::counts(&conn, parked_limit)
            .map_err(|source| StatusError::Read { path, source })
    })
    .await?
}

/// Builds the full status report.
pub async fn status(shared: &Shared) -> Result<DaemonStatus, StatusError> {
    // Also a barrier: emits submitted before this request are committed
    // before we read, so a pipelining client sees its own events.
    let node_id = shared.writer.run(|s| s.stamp.node_id.clone()).await?;
    let counts = read_counts(shared, 50).await?;
    let now = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now());
    let paths = shared.paths.clone();
    let spool_backlog = tokio::task::spawn_blocking(move || spool::backlog(&paths))
        .await
        .unwrap_or(0);
    let (connection, auth) = shared.transport.status();
    Ok(DaemonStatus {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        protocol: format!("{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}"),
        uptime_secs: shared.started.elapsed().as_secs(),
        socket: shared.socket.display().to_string(),
        mode: shared.mode.clone(),
        node_id,
        lamport_clock: counts.lamport_clock,
        queue_depth: counts.queue_depth,
        oldest_pending_age_secs: counts
            .oldest_pending_micros
            .map(|t| ((now - t).max(0) / 1_000_000) as u64),
        projects: counts.projects,
        held: counts.held,
        parked: counts.parked,
        parked_total: counts.parked_total,
        spool_backlog,
        connection,
        auth,
    })
}
