//! The single writer thread: the only owner of the [`Store`].
//!
//! Why one thread: SQLite allows one writer at a time anyway, and funnelling
//! every write through one queue lets us *group commit* — the thread takes
//! every emit waiting in its queue and commits them all in one transaction
//! (one fsync), so 16 clients cost about one commit per round, not 16.
//!
//! Everybody else holds a cheap, cloneable [`Writer`] handle:
//! - [`Writer::emit`] for one event (IPC), awaited until durable;
//! - [`Writer::run`] to run any closure on the store in the writer thread
//!   (spool ingest, status, and the transport's pending/in-flight/results
//!   transactions), so those never race the emits.
//!
//! When every handle is dropped, the thread finishes what is queued and ends.

use crate::store::{Accepted, Origin, Store, StoreError};
use spec_kitty_protocol::envelope::EventEnvelope;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Most emits committed in one transaction. Bounds the latency a single
/// commit can add and the memory of one batch.
pub const MAX_GROUP: usize = 4096;

/// Longest the writer waits for stragglers before committing a group that
/// is smaller than half the previous one (a fraction of one fsync).
const GATHER_WAIT: std::time::Duration = std::time::Duration::from_micros(200);

type EmitReply = oneshot::Sender<Result<Accepted, CommitError>>;
type Job = Box<dyn FnOnce(&mut Store) + Send>;

#[allow(clippy::large_enum_variant)] // emits are the hot path; boxing them costs an allocation each
enum Msg {
    Emit(EventEnvelope, Origin, EmitReply),
    Run(Job),
}

/// Handle to the writer thread. Clone freely.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Msg>,
    commits: tokio::sync::watch::Receiver<u64>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

/// The writer thread is gone (it panicked, or the daemon is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the store writer has stopped")]
pub struct WriterGone;

/// Why the group commit holding an emit failed; nothing of the group was
/// written. Every emit of the group gets the same error, hence the `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The store refused (disk full, I/O error, the file replaced).
    #[error("the daemon could not store the event: {0}")]
    Store(Arc<StoreError>),
    /// A bug panicked inside the commit; the writer carries on.
    #[error("the daemon hit an internal error storing the event")]
    Panicked,
}

/// Why an emit was not committed.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error(transparent)]
    Gone(#[from] WriterGone),
    #[error(transparent)]
    Commit(#[from] CommitError),
}

impl Writer {
    /// Starts the writer thread. With `group_commit` false every emit gets
    /// its own transaction (only for measuring what group commit buys).
    pub fn start(store: Store, group_commit: bool) -> (Writer, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let commits = store.subscribe_commits();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(store, rx, group_commit))
            .expect("spawn the store writer thread");
        (Writer { tx, commits }, handle)
    }

    /// A receiver that changes whenever new sendable events were committed
    /// (value: highest `seq`). The transport awaits `changed()` on it
    /// instead of polling the store.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.clone()
    }

    /// Commits one event (stamped, clock ticked) and returns once durable.
    pub async fn emit(&self, env: EventEnvelope, origin: Origin) -> Result<Accepted, EmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Emit(env, origin, reply))
            .map_err(|_| WriterGone)?;
        Ok(rx.await.map_err(|_| WriterGone)??)
    }

    /// Queues one event for the next group commit without waiting: the
    /// receiver yields the result once durable. Lets a connection pipeline
    /// many emits (answers still go out in request order).
    pub fn submit(
        &self,
        env: EventEnvelope,
        origin: Origin,
    ) -> Result<oneshot::Receiver<Result<Accepted, CommitError>>, WriterGone> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Emit(env, origin, reply))
            .map_err(|_| WriterGone)?;
        Ok(rx)
    }

    /// Runs `f` on the store in the writer thread, between group commits.
    pub async fn run<T, F>(&self, f: F) -> Result<T, WriterGone>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> T + Send + 'static,
    {
        self.queue_job(f)?.await.map_err(|_| WriterGone)
    }

    /// [`Writer::run`] from a thread that is not inside the async runtime.
    pub fn run_blocking<T, F>(&self, f: F) -> Result<T, WriterGone>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> T + Send + 'static,
    {
        self.queue_job(f)?.blocking_recv().map_err(|_| WriterGone)
    }

    /// Queues `f` for the writer thread; the receiver yields its result.
    /// The one place both [`Writer::run`] flavours send a job.
    fn queue_job<T, F>(&self, f: F) -> Result<oneshot::Receiver<T>, WriterGone>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> T + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Run(Box::new(move |s: &mut Store| {
                let _ = reply.send(f(s));
            })))
            .map_err(|_| WriterGone)?;
        Ok(rx)
    }
}

fn writer_loop(mut store: Store, mut rx: mpsc::UnboundedReceiver<Msg>, group_commit: bool) {
    let mut batch: Vec<(EventEnvelope, Origin)> = Vec::new();
    let mut replies: Vec<EmitReply> = Vec::new();
    let mut pending_job: Option<Job> = None;
    let mut last_group = 0usize;
    loop {
        // Nobody waits for the store: the moment for a checkpoint.
        if rx.is_empty() {
            if let Err(e) = store.checkpoint_if_due() {
                tracing::warn!("checkpoint failed (tried again after the next commit): {e}");
            }
        }
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        match first {
            Msg::Run(job) => {
                run_job(job, &mut store);
                continue;
            }
            Msg::Emit(env, origin, reply) => {
                batch.push((env, origin));
                replies.push(reply);
            }
        }
        // Group commit: take every emit already waiting, stopping at a job
        // (which must run after the emits queued before it). When the last
        // group was bigger than what is here now, the other clients are
        // most likely just sending their next emit: wait a moment (at most
        // GATHER_WAIT) for them rather than pay a whole fsync for a few.
        let gather_until = std::time::Instant::now() + GATHER_WAIT;
        while group_commit && batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Msg::Emit(env, origin, reply)) => {
                    batch.push((env, origin));
                    replies.push(reply);
                }
                Ok(Msg::Run(job)) => {
                    pending_job = Some(job);
                    break;
                }
                Err(_) => {
                    if batch.len() * 2 > last_group || std::time::Instant::now() >= gather_until {
                        break;
                    }
                    std::thread::yield_now();
                }
            }
        }
        last_group = batch.len();
        tracing::debug!(events = batch.len(), "group commit");
        // A panic in a group commit is contained like one in a job: the
        // transaction rolls back while unwinding, that group's clients get
        // an error (their CLI spools), and the writer keeps serving rather
        // than leaving a daemon that can never store again.
        let group = std::mem::take(&mut batch);
        // The store file deleted or replaced under us: continue in a fresh
        // one (checked again after the commit, before anyone is told
        // "durable", so a group committed into a deleted file is carried over).
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.ensure_current()?;
            let accepted = store.commit_emits(group)?;
            store.ensure_current()?;
            Ok::<_, StoreError>(accepted)
        }));
        match outcome {
            Ok(Ok(accepted)) => {
                for (reply, acc) in replies.drain(..).zip(accepted) {
                    let _ = reply.send(Ok(acc));
                }
            }
            Ok(Err(e)) => {
                tracing::error!("commit of {} event(s) failed: {e}", replies.len());
                let e = CommitError::Store(Arc::new(e));
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            Err(_) => {
                tracing::error!("a group commit of {} event(s) panicked; they were refused and the writer carries on", replies.len());
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(CommitError::Panicked));
                }
            }
        }
        if let Some(job) = pending_job.take() {
            run_job(job, &mut store);
        }
    }
}

/// Runs one closure; a panic in it is logged and contained, so a bug in one
/// caller (its reply is dropped: it sees `WriterGone`) cannot stop every
/// emit. Store transactions roll back when dropped during the unwind.
fn run_job(job: Job, store: &mut Store) {
    if let Err(e) = store.ensure_current() {
        tracing::error!("{e}");
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(store)));
    if outcome.is_err() {
        tracing::error!("a store job panicked; the writer carries on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Stamp;

    #[test]
    fn a_panicking_job_does_not_stop_the_writer_and_emits_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("s.db"),
            Stamp {
                node_id: "abcdefabcdef".into(),
                team_slug: "local".into(),
            },
        )
        .unwrap();
        let (writer, thread) = Writer::start(store, true);
        assert!(writer
            .run_blocking(|_| -> () { panic!("bug in a caller") })
            .is_err());
        let env = |i: u32| {
            EventEnvelope::from_value(serde_json::json!({
                "event_id": ulid::Ulid::new().to_string(), "event_type": "X",
                "aggregate_id": format!("WP{i:02}"), "aggregate_type": "WorkPackage",
                "payload": {}, "node_id": "000000000000", "lamport_clock": 0,
                "causation_id": null, "timestamp": "2026-02-07T08:34:22.123456+00:00",
                "team_slug": "local", "project_uuid": null, "project_slug": null
            }))
            .unwrap()
        };
        let rxs: Vec<_> = (0..50)
            .map(|i| writer.submit(env(i), Origin::Ipc).unwrap())
            .collect();
        let lamports: Vec<u64> = rxs
            .into_iter()
            .map(|rx| rx.blocking_recv().unwrap().unwrap().lamport_clock)
            .collect();
        assert_eq!(lamports, (1..=50).collect::<Vec<_>>());
        drop(writer);
        thread.join().unwrap();
    }
}
