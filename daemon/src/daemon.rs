//! The daemon's life: start-up, readiness, serving, draining, exit.
//!
//! Start-up order is chosen so a half-started daemon can never do harm:
//! 1. take the exclusive lock `syncd/syncd.lock` (liveness = lock held, for
//!    the whole life; a second daemon stops here and says so, as it does
//!    when a live daemon answers on the socket though the lock file was
//!    deleted under it);
//! 2. open the store (migrations; newer schema refused; corrupt file moved
//!    aside), adopt the Python CLI's queue and clock (and its new rows every
//!    [`crate::legacy::POLL_EVERY`] while running), requeue in-flight rows,
//!    prune sent rows older than [`SENT_RETENTION`] (again every
//!    [`HOUSEKEEPING_EVERY`] while running);
//! 3. ingest the spool (older events get their Lamport values first);
//! 4. verify the socket directory, remove a stale socket (we hold the lock
//!    and nothing answers on it, so it is stale), bind — or take the socket systemd passed us;
//! 5. report readiness: `READY ...` on stdout for an auto-spawned daemon,
//!    `READY=1` to systemd (`Type=notify`), a log line otherwise.
//!
//! Any failure before 5 is reported the same way (`ERROR <reason>`), so the
//! spawning CLI can print the reason instead of hanging.
//!
//! Exit: SIGTERM/SIGINT, `Shutdown`, or idle timeout (auto-spawned only):
//! remove the socket if it is still ours and close the listener first (a
//! racing client then respawns instead of half-talking to a dying daemon),
//! let open requests finish (bounded), wait for the writer to commit what it
//! has, release the lock. A second signal exits at once; nothing acked is
//! ever only in memory, so that is safe.

use crate::config;
use crate::server::{self, Shared};
use crate::sockdir;
use crate::store::{Stamp, Store};
use crate::writer::Writer;
use interprocess::local_socket::tokio::Listener;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use spec_kitty_protocol::ipc::{DaemonMode, Readiness, PROTOCOL_MAJOR, PROTOCOL_MINOR};
use spec_kitty_protocol::Paths;
use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the daemon was started.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Auto-spawned by the CLI: detach, report readiness on stdout, idle-exit.
    pub spawned: bool,
    /// Idle-exit timeout (auto-spawned only; `None` = never).
    pub idle_exit: Option<Duration>,
    /// Commit each emit on its own (benchmarks only).
    pub group_commit: bool,
}

/// How long open requests may take to finish once draining started.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// Sent rows are kept this long (so a re-sent `event_id` is still known and
/// per-project sent counts mean something), then deleted: the store does
/// not grow forever. The server deduplicates anything sent again later.
pub const SENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often a running daemon prunes sent rows.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);

/// Deletes sent rows older than [`SENT_RETENTION`]; logs what it did.
fn prune_sent(store: &mut Store) {
    let cutoff = spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now())
        - SENT_RETENTION.as_micros() as i64;
    match store.prune_sent(cutoff) {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            "pruned {n} sent event(s) older than {} days",
            SENT_RETENTION.as_secs() / 86400
        ),
        Err(e) => tracing::warn!("pruning sent events failed: {e}"),
    }
}

/// Where readiness and start-up errors go.
#[derive(Clone, Copy)]
struct Reporter {
    spawned: bool,
}

impl Reporter {
    fn line(&self, line: &str) {
        if self.spawned {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    fn fail(&self, message: &str) -> i32 {
        tracing::error!("cannot start: {message}");
        if self.spawned {
            self.line(&Readiness::Error(message.to_string()).to_string());
        } else {
            eprintln!("spec-kitty-syncd: cannot start: {message}");
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&format!(
            "cannot start: {message}"
        ))]);
        1
    }
}

/// Runs the daemon; returns the process exit code.
pub fn run(opts: RunOptions) -> i32 {
    let started = Instant::now();
    let reporter = Reporter {
        spawned: opts.spawned,
    };
    let paths = match Paths::from_env() {
        Ok(p) => p,
        Err(e) => return reporter.fail(&e.to_string()),
    };
    let legacy_notice = paths.legacy_notice();
    if opts.spawned {
        // Own session: no controlling terminal, no SIGHUP/SIGINT from the
        // shell that ran the spawning command.
        let _ = rustix::process::setsid();
    }
    let state = paths.state_dir();
    if let Err(e) = std::fs::create_dir_all(&state) {
        return reporter.fail(&format!("cannot create {}: {e}", state.display()));
    }
    let _ = std::env::set_current_dir(&state);
    let _log_guard = init_logging(&paths, !opts.spawned);
    if let Some(notice) = legacy_notice {
        tracing::warn!("{notice}");
    }
    // The store and logs name projects, branches and work packages: keep
    // them to their owner whatever the umask.
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)) {
            tracing::warn!("cannot make {} private (0700): {e}", state.display());
        }
    }

    // 1. The lock, for life. A daemon that answers on our socket is running
    // even when its lock file is gone (someone deleted `syncd/` under it):
    // taking a fresh lock must not start a second one beside it. (Under
    // systemd the socket is the manager's, so there is nothing to probe.)
    let lock_path = paths.daemon_lock();
    let taken = match take_lock(&lock_path) {
        Ok(Some(mut f)) => match std::env::var_os("LISTEN_FDS")
            .is_none()
            .then(|| sockdir::live_daemon(&paths.socket()))
            .flatten()
        {
            None => Ok(f),
            Some(pid) => Err((
                {
                    // The file names the live daemon, not us, once we let go.
                    let _ = f.set_len(0);
                    let _ = f.rewind();
                    let _ = writeln!(f, "{pid}");
                    Some(pid)
                },
                format!(
                    "answers on {} though its lock file {} was removed",
                    paths.socket().display(),
                    lock_path.display()
                ),
            )),
        },
        Ok(None) => Err((
            holder_pid(&lock_path),
            format!("holds {}", lock_path.display()),
        )),
        Err(e) => return reporter.fail(&e.to_string()),
    };
    let lock = match taken {
        Ok(f) => f,
        Err((holder, why)) => {
            let msg = format!(
                "another spec-kitty-syncd {why} (pid {}); connect to it",
                holder.map_or("unknown".to_string(), |p| p.to_string())
            );
            tracing::info!("{msg}");
            if opts.spawned {
                reporter.line(&Readiness::Running { pid: holder }.to_string());
                return 0;
            }
            eprintln!("spec-kitty-syncd: {msg}");
            return 1;
        }
    };

    // 2. The store.
    let stamp = Stamp {
        node_id: spec_kitty_protocol::node_id(),
        team_slug: config::read_credentials(&paths).team_slug_or_local(),
    };
    let mut store = match Store::open(&paths.store(), stamp) {
        Ok(s) => s,
        Err(e) => return reporter.fail(&e.to_string()),
    };
    if let Some(aside) = &store.moved_aside {
        let msg = format!(
            "THE STORE {} WAS CORRUPT: moved aside to {} (kept, not deleted) and a fresh store was started; events in the old file are not in the queue",
            paths.store().display(),
            aside.display()
        );
        tracing::error!("{msg}");
        if !opts.spawned {
            eprintln!("spec-kitty-syncd: {msg}");
        }
    }
    if let Err(e) = store.use_clock_reservation(paths.root().join("syncd-clock.json")) {
        return reporter.fail(&e.to_string());
    }
    if let Err(e) = crate::legacy::migrate(&paths, &mut store) {
        return reporter.fail(&e.to_string());
    }
    match store.requeue_in_flight() {
        Ok(n) if n > 0 => tracing::info!("{n} in-flight event(s) back to pending"),
        Ok(_) => {}
        Err(e) => return reporter.fail(&e.to_string()),
    }
    prune_sent(&mut store);
    let (writer, writer_thread) = Writer::start(store, opts.group_commit);

    // 3. The spool, before any new emit gets a Lamport value.
    if let Err(e) = crate::spool::ingest(&paths, &writer) {
        return reporter.fail(&e.to_string());
    }

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return reporter.fail(&format!("cannot start the async runtime: {e}")),
    };
    // One thread for every task: the IPC connections and the WebSocket are
    // waits, not work (commits run on the writer thread, HTTP on the
    // blocking pool). A second worker cost each warm command a wake-up
    // of the other worker (a multi-threaded runtime wakes one to steal the
    // work it sees): interleaved A/B over 400 add-history runs, a
    // current-thread runtime was 40–60 µs faster at p50.
    let code = runtime.block_on(async move {
        match tokio::spawn(serve(paths, writer, opts, started, reporter)).await {
            Ok(code) => code,
            Err(e) => reporter.fail(&format!("the server stopped: {e}")),
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    let _ = writer_thread.join();
    drop(lock);
    code
}

async fn serve(
    paths: Paths,
    writer: Writer,
    opts: RunOptions,
    started: Instant,
    reporter: Reporter,
) -> i32 {
    // 4. The listener.
    let socket = paths.socket();
    let activated = activated_listener();
    let (listener, mode, ours) = match activated {
        Some(Ok(l)) => (l, DaemonMode::SocketActivated, None),
        Some(Err(e)) => {
            return reporter.fail(&format!("cannot use the socket systemd passed: {e}"))
        }
        None => match bind(&paths) {
            Ok(l) => {
                let ours = sockdir::identity(&socket);
                let mode = if opts.spawned {
                    DaemonMode::Auto
                } else {
                    DaemonMode::Foreground
                };
                (l, mode, ours)
            }
            Err(e) => return reporter.fail(&e.to_string()),
        },
    };
    let (shutdown, _) = tokio::sync::watch::channel(None);
    let (transport, transport_task) =
        crate::transport::spawn(paths.clone(), writer.clone(), shutdown.subscribe());
    let shared = Arc::new(Shared {
        paths: paths.clone(),
        writer: writer.clone(),
        started,
        mode: mode.clone(),
        socket: socket.clone(),
        skew_cooldown: config::env_secs(config::SKEW_COOLDOWN_ENV)
            .unwrap_or(config::DEFAULT_SKEW_COOLDOWN),
        shutdown,
        active: AtomicUsize::new(0),
        last_activity: Mutex::new(Instant::now()),
        refused_peers: AtomicUsize::new(0),
        transport,
    });
    spawn_signal_task(shared.clone());
    {
        let writer = writer.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HOUSEKEEPING_EVERY);
            every.tick().await; // the first tick is now: start-up pruned already
            loop {
                every.tick().await;
                if writer.run(prune_sent).await.is_err() {
                    return; // the writer stopped: shutting down
                }
            }
        });
    }
    {
        // Rows the Python CLI queues while we run: taken in within about a
        // second, stamped after our own Lamport values, sent once.
        let writer = writer.clone();
        let paths = paths.clone();
        tokio::spawn(async move {
            let mut watcher = crate::legacy::Watcher::default();
            let mut every = tokio::time::interval(crate::legacy::POLL_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await; // the first tick is now: start-up adopted already
            loop {
                every.tick().await;
                let paths = paths.clone();
                let polled = writer
                    .run(move |store| {
                        let r = watcher.poll(&paths, store);
                        (watcher, r)
                    })
                    .await;
                match polled {
                    Ok((w, r)) => {
                        watcher = w;
                        if let Err(e) = r {
                            tracing::warn!("taking in the Python queue: {e}");
                        }
                    }
                    Err(_) => return, // the writer stopped: shutting down
                }
            }
        });
    }

    // 5. Ready.
    let ready = Readiness::Ready {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        protocol: (PROTOCOL_MAJOR, PROTOCOL_MINOR),
        socket: socket.display().to_string(),
    };
    tracing::info!(
        "ready in {:.1} ms: mode {mode}, socket {}",
        started.elapsed().as_secs_f64() * 1000.0,
        socket.display()
    );
    reporter.line(&ready.to_string());
    if opts.spawned {
        detach_stdio();
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    let idle = if opts.spawned { opts.idle_exit } else { None };
    let why = server::accept_loop(&listener, shared.clone(), idle).await;
    tracing::info!("stopping: {why}");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    shared.request_shutdown(&why);
    // Close the door first: unlink (if still ours), then close the listener.
    sockdir::remove_if_ours(&socket, ours);
    drop(listener);
    let deadline = Instant::now() + DRAIN_DEADLINE;
    while shared.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The transport closes its WebSocket and puts in-flight events back.
    let _ = tokio::time::timeout(Duration::from_secs(2), transport_task).await;
    // Barrier: everything queued to the writer before this is committed.
    let _ = writer.run(|_| ()).await;
    tracing::info!("stopped");
    0
}

fn activated_listener() -> Option<std::io::Result<Listener>> {
    let mut fds = sd_notify::listen_fds().ok()?;
    let fd = fds.next()?;
    // SAFETY: systemd passed this descriptor to us (LISTEN_PID matched) and
    // nothing else in the process owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Some(
        interprocess::os::unix::uds_local_socket::tokio::Listener::try_from(owned)
            .map(Listener::from),
    )
}

/// Why the daemon could not take its lock or open its socket (start-up
/// steps 1 and 4); the text is what `cannot start:` reports.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("cannot open the lock file {}: {source}", path.display())]
    LockFile { path: PathBuf, source: io::Error },
    #[error("cannot lock {}: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error(transparent)]
    SockDir(#[from] sockdir::SockDirError),
    #[error("bad socket path {}: {source}", path.display())]
    SocketPath { path: PathBuf, source: io::Error },
    #[error("cannot listen on {}: {source}", path.display())]
    Listen { path: PathBuf, source: io::Error },
}

fn bind(paths: &Paths) -> Result<Listener, StartError> {
    let socket = paths.socket();
    sockdir::prepare(&paths.socket_dir())?;
    if sockdir::remove_stale(&socket)? {
        tracing::info!("removed a stale socket {}", socket.display());
    }
    let name = socket
        .as_path()
        .to_fs_name::<GenericFilePath>()
        .map_err(|source| StartError::SocketPath {
            path: socket.clone(),
            source,
        })?;
    ListenerOptions::new()
        .name(name)
        .reclaim_name(false)
        .create_tokio()
        .map_err(|source| StartError::Listen {
            path: socket.clone(),
            source,
        })
}

fn spawn_signal_task(shared: Arc<Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("cannot install signal handlers");
            return;
        };
        let mut seen = 0;
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = hup.recv() => {
                    if let Ok(team) = crate::server::reload_login(&shared).await {
                        tracing::info!("SIGHUP: credentials reloaded; team_slug is now {team}");
                    }
                    continue;
                }
            };
            seen += 1;
            if seen == 1 {
                tracing::info!("{name}: draining (send again to exit at once)");
                shared.request_shutdown(name);
            } else {
                tracing::warn!("{name} again: exiting at once");
                std::process::exit(130);
            }
        }
    });
}

/// Takes the exclusive daemon lock: `Ok(None)` when another process holds it.
fn take_lock(path: &Path) -> Result<Option<File>, StartError> {
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| StartError::LockFile {
            path: path.to_path_buf(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => {
            // The pid is informational (status, messages); liveness is the lock.
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = writeln!(file, "{}", std::process::id());
            let _ = file.flush();
            Ok(Some(file))
        }
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(StartError::Lock {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The pid of the daemon holding the lock. The winner writes it just after
/// taking the lock, so a loser that lost by a hair may find the file still
/// empty: wait for it briefly (bounded) rather than answer `pid=unknown`.
fn holder_pid(path: &Path) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_millis(250);
    loop {
        match read_pid(path) {
            Some(pid) => return Some(pid),
            None if Instant::now() >= deadline => return None,
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    let mut s = String::new();
    File::open(path).ok()?.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// Points stdin, stdout and stderr at /dev/null (after READY was written):
/// the spawning CLI has gone, and a write to a closed pipe must not kill us.
fn detach_stdio() {
    let Ok(null) = File::options().read(true).write(true).open("/dev/null") else {
        return;
    };
    use std::os::fd::AsRawFd;
    for fd in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors with a valid open fd;
        // Rust's std handles keep working (they now write to /dev/null).
        unsafe {
            libc::dup2(null.as_raw_fd(), fd);
        }
    }
}

/// Logging: a daily-rotated file in `Paths::log_dir()` (`syncd.YYYY-MM-DD.log`,
/// 7 kept) always, plus stderr in foreground mode (journald, terminals).
/// `SPEC_KITTY_SYNCD_LOG` sets the filter (default `info`).
fn init_logging(paths: &Paths, stderr: bool) -> Option<()> {
    use tracing_subscriber::prelude::*;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("SPEC_KITTY_SYNCD_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
            // tungstenite traces the raw upgrade request, Authorization
            // header included: never below debug, whatever the user asks.
            .add_directive(
                "tungstenite::handshake=debug"
                    .parse()
                    .expect("a valid directive"),
            )
    };
    let file = std::fs::create_dir_all(paths.log_dir())
        .ok()
        .and_then(|_| {
            tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix("syncd")
                .filename_suffix("log")
                .max_log_files(7)
                .build(paths.log_dir())
                .ok()
        })
        .map(|appender| {
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(appender)
                .with_filter(filter())
        });
    let err = stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
    });
    tracing_subscriber::registry()
        .with(file)
        .with(err)
        .try_init()
        .ok()
}
