//! The durable queue and the Lamport clock: one SQLite file, owned by the daemon.
//!
//! Why one file: an `Accepted` reply must mean "survives kill -9 and power
//! loss", and the clock must never go backwards. Both hold only if the event
//! row and the clock tick are written in the *same* transaction, so they live
//! in one database (WAL, `synchronous=FULL`, `BEGIN IMMEDIATE`).
//!
//! Only the writer thread ([`crate::writer`]) holds a [`Store`]; everything
//! else (IPC, spool, legacy import, the transport) reaches it through that
//! thread, which is what makes group commit possible.
//!
//! Row states (`events.state`):
//! - `pending`: stored, waiting to be sent, in `seq` order;
//! - `in_flight`: handed to the transport, not yet confirmed;
//! - `sent`: confirmed by the server (ack or batch result); kept so a re-sent
//!   `event_id` is still recognised and per-project sent counts are real;
//! - `held`: no `project_uuid`; never sent by any path (FR-005);
//! - `parked`: rejected by the server `attempts` times; `last_error` says why.
//!
//! Losing the file while the daemon runs (a user "resetting" the state dir,
//! a cleaner): before and after each group commit the writer checks that
//! the file at the path is still the open one (device and inode,
//! [`Store::ensure_current`]). When it is not, a fresh store is opened at
//! the path and every row not yet sent (including the group just
//! committed) is carried into it from the still-open old file, so no
//! acknowledged event is lost.
//!
//! Checkpoints (copying the WAL back into the database file) run when the
//! writer is idle ([`Store::checkpoint_if_due`]), not inside a commit as
//! SQLite's auto-checkpoint does: the copy and its fsync then delay no
//! reply, and the WAL stays small and is rewritten from its start over
//! blocks the file system already holds. Appending to a growing WAL cost
//! each commit about 0.13 ms more on this VM (the file's size and block
//! map change with every fsync). The WAL's next generation is started
//! there too (its header is fsynced once per generation), so a client's
//! commit makes exactly one fsync. SQLite's own rule stays as the backstop
//! for a writer that is never idle ([`CHECKPOINT_FRAMES_INLINE`]).
//!
//! The clock never goes backwards for a node, even when the store is lost:
//! its high-water mark is also kept outside the store, in a reservation file
//! (`$SPEC_KITTY_SYNC_HOME/syncd-clock.json`, [`Store::use_clock_reservation`]),
//! rewritten atomically only when the clock passes the reserved value, then
//! reserving [`CLOCK_RESERVE_STEP`] values ahead. A store opened with another
//! `store_id`, or whose clock is below what was already handed out, starts
//! above the reservation.

use rusqlite::{
    params, Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use serde_json::Value;
use spec_kitty_protocol::envelope::EventEnvelope;
use spec_kitty_protocol::ipc::{ParkedEvent, ProjectCounts};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

/// The schema version this build writes. `PRAGMA user_version` holds it.
pub const SCHEMA_VERSION: i64 = 1;

/// Migrations: entry `i` takes the schema from version `i` to `i + 1`.
/// Append only; never edit a shipped entry.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the first schema.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE clock (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
     INSERT INTO clock (id, value) VALUES (1, 0);
     CREATE TABLE events (
         seq           INTEGER PRIMARY KEY AUTOINCREMENT,
         event_id      TEXT NOT NULL UNIQUE,
         lamport_clock INTEGER NOT NULL,
         event_type    TEXT NOT NULL,
         project_uuid  TEXT,
         project_slug  TEXT,
         envelope      TEXT NOT NULL,
         state         TEXT NOT NULL
                       CHECK (state IN ('pending', 'in_flight', 'sent', 'held', 'parked')),
         attempts      INTEGER NOT NULL DEFAULT 0,
         last_error    TEXT,
         origin        TEXT NOT NULL,
         created_at    INTEGER NOT NULL,
         updated_at    INTEGER NOT NULL
     );
     CREATE INDEX events_state_seq ON events (state, seq);
     CREATE INDEX events_project_state ON events (project_uuid, state);",
];

/// WAL frames (pages) from which the idle writer checkpoints: about 30
/// single-event commits, a WAL of about 1 MiB.
pub const CHECKPOINT_FRAMES: i32 = 256;

/// WAL frames from which a commit checkpoints at once, before its reply
/// (SQLite's default auto-checkpoint): only reached by a writer that was
/// never idle in between.
pub const CHECKPOINT_FRAMES_INLINE: i32 = 1000;

/// Lamport values reserved ahead each time the reservation file is
/// rewritten: one small atomic write per this many ticks.
pub const CLOCK_RESERVE_STEP: u64 = 1024;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store {path} was written by a newer spec-kitty-syncd (schema version {found}; this build understands up to {supported}); upgrade spec-kitty-syncd or move the file aside")]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot create the store directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the store {path} is corrupt and could not be moved aside: {source}")]
    MoveAside {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot save the Lamport clock reservation {path}: {source}")]
    Reservation {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// Where a row came from (kept for diagnosis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Ipc,
    Spool,
    Legacy,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Ipc => "ipc",
            Origin::Spool => "spool",
            Origin::Legacy => "legacy",
        }
    }
}

/// The answer for one committed (or recognised) event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub lamport_clock: u64,
    pub seq: u64,
    pub duplicate: bool,
}

/// One event as the transport sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedEvent {
    pub seq: u64,
    pub event_id: String,
    pub lamport_clock: u64,
    pub project_uuid: Option<String>,
    /// The stamped envelope, exactly the JSON text to put on the wire.
    pub envelope: String,
    pub attempts: u64,
}

/// What the server said about one event (from a WebSocket ack or a batch result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `success`, `accepted`, `warning`, `skipped` or an ack: delivered.
    Delivered,
    /// The server already had it: delivered too.
    Duplicate,
    /// The server refused it; parked once attempts reach the limit, else
    /// pending again.
    Rejected(String),
    /// Not delivered, for a reason worth keeping (5xx for the event...): back
    /// to pending, attempts unchanged.
    Retry(String),
}

/// Counts of what [`Store::apply_results`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplySummary {
    pub delivered: u64,
    pub duplicates: u64,
    pub parked: u64,
    pub requeued: u64,
    /// Results naming an event_id the store does not have.
    pub unknown: u64,
}

/// What status shows of the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreCounts {
    pub lamport_clock: u64,
    pub queue_depth: u64,
    pub oldest_pending_micros: Option<i64>,
    pub projects: Vec<ProjectCounts>,
    pub held: u64,
    pub parked: Vec<ParkedEvent>,
    pub parked_total: u64,
}

/// An envelope taken in from another queue (the Python CLI's), already read
/// and classified by its reader ([`crate::legacy`]); the store only numbers
/// and inserts it ([`Store::insert_adopted`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AdoptedRow {
    pub event_id: String,
    pub event_type: String,
    /// The envelope text as found: stored byte for byte unless restamped.
    pub text: String,
    /// `text` parsed, when it is a JSON object; `None` stores `text` as is,
    /// with Lamport value 0 (such a row must be [`AdoptedState::Parked`]).
    pub object: Option<Value>,
    /// The Lamport value the row brings, when its reader accepts it.
    pub lamport: Option<i64>,
    pub project_uuid: Option<String>,
    pub project_slug: Option<String>,
    pub state: AdoptedState,
}

/// The state an adopted row starts in (see the module docs' row states).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdoptedState {
    Pending,
    Held,
    /// Never sent; the text says why (`last_error`).
    Parked(String),
}

/// Who stamps events: identity the daemon adds to every envelope it stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub node_id: String,
    pub team_slug: String,
}

/// The clock's high-water mark outside the store (see the module docs).
#[derive(Debug)]
struct Reservation {
    path: PathBuf,
    /// Values up to this one may be handed out without rewriting the file.
    reserved: u64,
}

/// The reservation file's content.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ReservationFile {
    /// The store that wrote it (`meta.store_id`).
    store_id: String,
    /// The clock when it was written: values up to this one were handed out.
    handed_out: u64,
    /// Values above `handed_out` up to this one may have been handed out.
    reserved: u64,
}

/// The open store. Not `Sync`: one thread owns it.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// (device, inode) of the file opened at `path`.
    file_id: (u64, u64),
    /// Random id of this store file (`meta.store_id`).
    store_id: String,
    reservation: Option<Reservation>,
    pub stamp: Stamp,
    /// Set when a corrupt file was moved aside while opening.
    pub moved_aside: Option<PathBuf>,
    /// The highest `seq` committed as pending; bumped after every commit
    /// that added sendable events, so the transport wakes without polling.
    committed: tokio::sync::watch::Sender<u64>,
    /// Frames in the WAL after the last commit (SQLite's WAL hook), or 0
    /// once checkpointed.
    wal_frames: Arc<AtomicI32>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn now_micros() -> i64 {
    spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now())
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

/// The clock row's value. The statement is cached: every commit reads it,
/// and parsing it anew (with the clock's update) cost about 40 µs of every
/// emit's round trip.
fn read_clock(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT value FROM clock WHERE id = 1")?
        .query_row([], |r| r.get(0))
}

/// Runs `f` in one `BEGIN IMMEDIATE` transaction on `conn`: committed when
/// `f` succeeds, rolled back (dropped) when it fails. A SQLite error from
/// begin, `f` or commit becomes [`StoreError::Sqlite`] naming `path`.
/// Takes the connection and path, not the [`Store`], so `f` may still read
/// the store's other fields (e.g. [`Store::stamp`]).
fn write_tx<T>(
    conn: &mut Connection,
    path: &Path,
    f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    let err = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let out = f(&tx).map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(out)
}

impl Store {
    /// Opens (creating or migrating) the store at `path`. A file that SQLite
    /// says is not a database or is corrupt is renamed to
    /// `<path>.corrupt-<micros>` (with its -wal/-shm) and a fresh store is
    /// started; [`Store::moved_aside`] then says where the old one went.
    pub fn open(path: &Path, stamp: Stamp) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        match Self::open_inner(path, stamp.clone()) {
            Err(StoreError::Sqlite { source, .. }) if is_corruption(&source) => {
                let aside = PathBuf::from(format!("{}.corrupt-{}", path.display(), now_micros()));
                std::fs::rename(path, &aside).map_err(|source| StoreError::MoveAside {
                    path: path.to_path_buf(),
                    source,
                })?;
                for ext in ["-wal", "-shm"] {
                    let side = PathBuf::from(format!("{}{ext}", path.display()));
                    if side.exists() {
                        let _ = std::fs::rename(&side, format!("{}{ext}", aside.display()));
                    }
                }
                let mut store = Self::open_inner(path, stamp)?;
                store.moved_aside = Some(aside);
                Ok(store)
            }
            other => other,
        }
    }

    fn open_inner(path: &Path, stamp: Stamp) -> Result<Store, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        let file_id = file_id(path).map_err(|e| {
            err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("cannot stat the store file: {e}")),
            ))
        })?;
        // journal_mode reads the header: a garbage file fails here.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.set_prepared_statement_cache_capacity(64);
        // Replaces SQLite's auto-checkpoint hook (see the module docs).
        let wal_frames = Arc::new(AtomicI32::new(0));
        let frames = wal_frames.clone();
        conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages| {
            frames.store(pages, Ordering::Relaxed);
            if pages >= CHECKPOINT_FRAMES_INLINE {
                // As SQLite's own hook: the commit is done whatever the
                // checkpoint says (an error here would fail the commit's
                // statement, and the client would spool a stored event).
                match wal.checkpoint() {
                    Ok(()) => frames.store(0, Ordering::Relaxed),
                    Err(e) => tracing::warn!("checkpoint failed (tried again later): {e}"),
                }
            }
            Ok(())
        }))
        .map_err(err)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            file_id,
            store_id: String::new(),
            reservation: None,
            stamp,
            moved_aside: None,
            committed: tokio::sync::watch::Sender::new(0),
            wal_frames,
        };
        store.migrate()?;
        let fresh_id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        store
            .conn
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?1)",
                [&fresh_id],
            )
            .map_err(err)?;
        store.store_id = store.meta("store_id")?.unwrap_or(fresh_id);
        // Touch the tables so a file with a valid header but damaged pages
        // is caught now, not on the first emit.
        read_clock(&store.conn).map_err(err)?;
        Ok(store)
    }

    fn sql_err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        // Not `write_tx`: a newer schema must roll back with its own error.
        let err = |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let found: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Wakes up whenever new pending events were committed (the value is
    /// the highest `seq` committed so far in this process).
    pub fn subscribe_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// Keeps the clock's high-water mark in `path` too (see the module
    /// docs). When the file says values were handed out that this store
    /// does not know of (another `store_id`: the store was lost; or a clock
    /// below `handed_out`: an older copy), the clock is raised above every
    /// value that may have been handed out. An unreadable file is ignored
    /// with a warning (it is rewritten at the next commit).
    pub fn use_clock_reservation(&mut self, path: PathBuf) -> Result<(), StoreError> {
        let mut reserved = 0;
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<ReservationFile>(&bytes) {
                Ok(r) => {
                    let clock = self.clock()?;
                    if r.store_id != self.store_id || clock < r.handed_out {
                        tracing::warn!(
                            "{}: the store {} does not hold Lamport values up to {} that were handed out; the clock continues above them",
                            path.display(),
                            self.path.display(),
                            r.reserved
                        );
                        self.raise_clock(r.reserved)?;
                    } else {
                        reserved = r.reserved;
                    }
                }
                Err(e) => tracing::warn!(
                    "{}: not a clock reservation ({e}); it is rewritten at the next event",
                    path.display()
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("{}: cannot read it ({e})", path.display()),
        }
        self.reservation = Some(Reservation { path, reserved });
        Ok(())
    }

    /// Makes sure the reservation covers `n` more ticks of the clock.
    fn reserve(&mut self, n: u64) -> Result<(), StoreError> {
        let Some(reserved) = self.reservation.as_ref().map(|r| r.reserved) else {
            return Ok(());
        };
        let clock = self.clock()?;
        if clock + n <= reserved {
            return Ok(());
        }
        let r = self.reservation.as_mut().expect("checked above");
        let file = ReservationFile {
            store_id: self.store_id.clone(),
            handed_out: clock,
            reserved: clock + n + CLOCK_RESERVE_STEP,
        };
        spec_kitty_protocol::fsutil::write_atomic(
            &r.path,
            &serde_json::to_vec(&file).expect("plain struct"),
            Some(0o600),
        )
        .map_err(|source| StoreError::Reservation {
            path: r.path.clone(),
            source,
        })?;
        r.reserved = file.reserved;
        Ok(())
    }

    /// Checks that the file at the store's path is still the one open
    /// (device and inode). When it was deleted or replaced, opens a fresh
    /// store there, carries every row not yet sent and the clock into it
    /// from the old (still open) file, and continues with it. Returns
    /// whether it did.
    pub fn ensure_current(&mut self) -> Result<bool, StoreError> {
        if file_id(&self.path).ok() == Some(self.file_id) {
            return Ok(false);
        }
        let clock = self.clock()?;
        let rows = self.unsent_rows().map_err(|e| self.sql_err(e))?;
        let fresh = Store::open(&self.path, self.stamp.clone())?;
        let (conn, file_id, store_id) = (fresh.conn, fresh.file_id, fresh.store_id);
        let old = std::mem::replace(&mut self.conn, conn);
        self.file_id = file_id;
        self.store_id = store_id;
        if let Some(r) = &mut self.reservation {
            r.reserved = 0; // rewrite it with the new store_id
        }
        let n = rows.len();
        write_tx(&mut self.conn, &self.path, |tx| {
            tx.execute(
                "UPDATE clock SET value = MAX(value, ?1) WHERE id = 1",
                params![clock as i64],
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (event_id, lamport_clock, event_type, project_uuid,
                     project_slug, envelope, state, attempts, last_error, origin, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for r in &rows {
                insert.execute(rusqlite::params_from_iter(r.iter()))?;
            }
            Ok(())
        })?;
        drop(old);
        tracing::error!(
            "THE STORE {} WAS DELETED OR REPLACED while the daemon ran: continued in a fresh store, with the {n} unsent event(s) and the clock ({clock}) carried over",
            self.path.display()
        );
        let max: u64 = self
            .conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| v as u64)
            .map_err(|e| self.sql_err(e))?;
        self.committed.send_replace(max);
        Ok(true)
    }

    /// Every row not yet sent, as the column values [`Store::ensure_current`] inserts.
    fn unsent_rows(&self) -> rusqlite::Result<Vec<Vec<rusqlite::types::Value>>> {
        let mut st = self.conn.prepare(
            "SELECT event_id, lamport_clock, event_type, project_uuid, project_slug, envelope,
                 state, attempts, last_error, origin, created_at, updated_at
             FROM events WHERE state != 'sent' ORDER BY seq",
        )?;
        let rows = st.query_map([], |r| {
            (0..12)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.collect()
    }

    /// Copies the WAL back into the database file when it holds
    /// [`CHECKPOINT_FRAMES`] or more, so that the next commit rewrites the
    /// WAL from its start. For the writer when no request waits (see the
    /// module docs). Passive: a reader elsewhere (a diagnosis tool) is not
    /// waited for; what it still reads is copied next time. Returns
    /// whether it ran.
    pub fn checkpoint_if_due(&mut self) -> Result<bool, StoreError> {
        if self.wal_frames.load(Ordering::Relaxed) < CHECKPOINT_FRAMES {
            return Ok(false);
        }
        // Tried once per commit at most, even when it fails.
        self.wal_frames.store(0, Ordering::Relaxed);
        let (busy, frames, copied): (i64, i64, i64) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(|e| self.sql_err(e))?;
        // All copied: the next commit starts the WAL over, and that one
        // writes and fsyncs a new WAL header first. A small write now
        // (when this happened, in `meta`) takes that second fsync, so no
        // client's commit pays it. (An unchanged value writes nothing.)
        if busy == 0 && frames == copied {
            self.conn
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('checkpointed_at', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [now_micros().to_string()],
                )
                .map_err(|e| self.sql_err(e))?;
        }
        Ok(true)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current clock value (the last Lamport value handed out).
    pub fn clock(&self) -> Result<u64, StoreError> {
        read_clock(&self.conn)
            .map(|v| v as u64)
            .map_err(|e| self.sql_err(e))
    }

    /// Raises the clock to at least `value` (never lowers it). Used for
    /// `clock.json` of the Python CLI and adopted events.
    pub fn raise_clock(&mut self, value: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE clock SET value = MAX(value, ?1) WHERE id = 1",
                params![value as i64],
            )
            .map(|_| ())
            .map_err(|e| self.sql_err(e))
    }

    /// A value of the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.sql_err(e))
    }

    /// Commits a group of new events in ONE transaction: each gets
    /// `lamport = clock + 1` in order, is stamped with [`Store::stamp`], and
    /// the clock is saved in the same transaction. An `event_id` already
    /// stored (or earlier in the same group) yields the stored row with
    /// `duplicate: true`. All or nothing: on error nothing was written.
    pub fn commit_emits(
        &mut self,
        events: Vec<(EventEnvelope, Origin)>,
    ) -> Result<Vec<Accepted>, StoreError> {
        let now = now_micros();
        self.reserve(events.len() as u64)?;
        let out = write_tx(&mut self.conn, &self.path, |tx| {
            let mut clock = read_clock(tx)?;
            let mut out = Vec::with_capacity(events.len());
            {
                let mut find =
                    tx.prepare_cached("SELECT seq, lamport_clock FROM events WHERE event_id = ?1")?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO events (event_id, lamport_clock, event_type, project_uuid,
                         project_slug, envelope, state, origin, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
                     ON CONFLICT (event_id) DO NOTHING",
                )?;
                for (mut env, origin) in events {
                    // Insert first (the unique index does the lookup anyway);
                    // only a conflict costs a second query. The clock ticks
                    // only for rows really inserted. A clock at i64::MAX
                    // (corrupt store) is a storage error, not an overflow
                    // panic that would stop the writer thread.
                    let next = clock.checked_add(1).ok_or_else(|| {
                        rusqlite::Error::ToSqlConversionFailure(
                            "the Lamport clock is at its maximum and cannot tick (corrupt clock row)".into(),
                        )
                    })?;
                    env.lamport_clock = next as u64;
                    env.node_id.clone_from(&self.stamp.node_id);
                    env.team_slug.clone_from(&self.stamp.team_slug);
                    let state = if env.project_uuid.is_some() {
                        "pending"
                    } else {
                        "held"
                    };
                    let inserted = insert.execute(params![
                        env.event_id,
                        next,
                        env.event_type,
                        env.project_uuid,
                        env.project_slug,
                        env.to_json(),
                        state,
                        origin.as_str(),
                        now
                    ])?;
                    if inserted == 1 {
                        clock = next;
                        out.push(Accepted {
                            lamport_clock: clock as u64,
                            seq: tx.last_insert_rowid() as u64,
                            duplicate: false,
                        });
                    } else {
                        let (seq, lamport) = find.query_row([&env.event_id], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                        })?;
                        out.push(Accepted {
                            lamport_clock: lamport as u64,
                            seq: seq as u64,
                            duplicate: true,
                        });
                    }
                }
            }
            tx.prepare_cached("UPDATE clock SET value = ?1 WHERE id = 1")?
                .execute(params![clock])?;
            Ok(out)
        })?;
        if let Some(max) = out.iter().filter(|a| !a.duplicate).map(|a| a.seq).max() {
            self.committed.send_replace(max);
        }
        Ok(out)
    }

    /// Inserts rows taken in from another queue (read and classified by
    /// their reader), in the order given. A row keeps its own Lamport value
    /// (and its text, byte for byte) when that value is above the store's
    /// clock and not taken by an earlier row of the same call; any other
    /// object is stamped `clock + 1` (its `lamport_clock` rewritten, other
    /// keys kept): the other queue's clock knows nothing of ours, and its
    /// value could repeat one this node already sent. Ids already stored
    /// are skipped without ticking, so inserting twice adds nothing. The
    /// clock ends at or above every kept value; `watermark` is written to
    /// `meta` in the same transaction. Returns how many rows were added.
    pub fn insert_adopted(
        &mut self,
        rows: &[AdoptedRow],
        watermark: Option<(&str, String)>,
    ) -> Result<u64, StoreError> {
        let now = now_micros();
        self.reserve(rows.len() as u64)?;
        let n = write_tx(&mut self.conn, &self.path, |tx| {
            let floor = read_clock(tx)?;
            let mut clock = floor;
            let mut taken = std::collections::HashSet::new();
            let mut added = 0;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO events (event_id, lamport_clock, event_type, project_uuid,
                         project_slug, envelope, state, last_error, origin, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'legacy', ?9, ?9)",
                )?;
                for row in rows {
                    let (lamport, envelope) = match (&row.object, row.lamport) {
                        (None, _) => (0, row.text.clone()),
                        (Some(_), Some(l)) if l > floor && !taken.contains(&l) => {
                            (l, row.text.clone())
                        }
                        (Some(object), _) => {
                            let next = clock.checked_add(1).ok_or_else(|| {
                                rusqlite::Error::ToSqlConversionFailure(
                                    "the Lamport clock is at its maximum and cannot tick (corrupt clock row)".into(),
                                )
                            })?;
                            let mut v = object.clone();
                            v["lamport_clock"] = Value::from(next);
                            (next, v.to_string())
                        }
                    };
                    let (state, reason) = match &row.state {
                        AdoptedState::Pending => ("pending", None),
                        AdoptedState::Held => ("held", None),
                        AdoptedState::Parked(reason) => ("parked", Some(reason.as_str())),
                    };
                    let inserted = insert.execute(params![
                        row.event_id,
                        lamport,
                        row.event_type,
                        row.project_uuid,
                        row.project_slug,
                        envelope,
                        state,
                        reason,
                        now
                    ])?;
                    if inserted == 1 && row.object.is_some() {
                        taken.insert(lamport);
                        clock = clock.max(lamport);
                    }
                    added += inserted as u64;
                }
            }
            tx.execute(
                "UPDATE clock SET value = MAX(value, ?1) WHERE id = 1",
                params![clock],
            )?;
            if let Some((key, value)) = watermark {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                )?;
            }
            Ok(added)
        })?;
        if n > 0 {
            let max = self
                .conn
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(|e| self.sql_err(e))?;
            self.committed.send_replace(max as u64);
        }
        Ok(n)
    }

    // -----------------------------------------------------------------------
    // The queue operations the transport calls.

    /// Up to `limit` pending events with `seq > after_seq`, in `seq` order.
    /// Held and parked rows are never returned.
    pub fn pending_batch(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, event_id, lamport_clock, project_uuid, envelope, attempts
                 FROM events WHERE state = 'pending' AND seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map(params![after_seq as i64, limit as i64], |r| {
                Ok(QueuedEvent {
                    seq: r.get::<_, i64>(0)? as u64,
                    event_id: r.get(1)?,
                    lamport_clock: r.get::<_, i64>(2)? as u64,
                    project_uuid: r.get(3)?,
                    envelope: r.get(4)?,
                    attempts: r.get::<_, i64>(5)? as u64,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql_err(e))?;
        Ok(rows)
    }

    /// Marks pending events as in flight (sent on the socket, unconfirmed).
    pub fn mark_in_flight(&mut self, seqs: &[u64]) -> Result<(), StoreError> {
        let now = now_micros();
        write_tx(&mut self.conn, &self.path, |tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE events SET state = 'in_flight', updated_at = ?2
                 WHERE seq = ?1 AND state = 'pending'",
            )?;
            for seq in seqs {
                stmt.execute(params![*seq as i64, now])?;
            }
            Ok(())
        })
    }

    /// Every in-flight event back to pending (at start, or when the
    /// connection dropped before acks came).
    pub fn requeue_in_flight(&mut self) -> Result<u64, StoreError> {
        self.conn
            .execute(
                "UPDATE events SET state = 'pending', updated_at = ?1 WHERE state = 'in_flight'",
                params![now_micros()],
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql_err(e))
    }

    /// Applies per-event server results in ONE transaction. A rejection
    /// counts an attempt; at `max_attempts` the event is parked with the
    /// reason, else it goes back to pending.
    pub fn apply_results(
        &mut self,
        results: &[(String, Outcome)],
        max_attempts: u64,
    ) -> Result<ApplySummary, StoreError> {
        let now = now_micros();
        write_tx(&mut self.conn, &self.path, |tx| {
            let mut sum = ApplySummary::default();
            let mut sent = tx.prepare_cached(
                "UPDATE events SET state = 'sent', last_error = NULL, updated_at = ?2
                 WHERE event_id = ?1 AND state IN ('pending', 'in_flight')",
            )?;
            let mut reject = tx.prepare_cached(
                "UPDATE events SET attempts = attempts + 1, last_error = ?2, updated_at = ?3,
                     state = CASE WHEN attempts + 1 >= ?4 THEN 'parked' ELSE 'pending' END
                 WHERE event_id = ?1 AND state IN ('pending', 'in_flight')
                 RETURNING state",
            )?;
            let mut retry = tx.prepare_cached(
                "UPDATE events SET state = 'pending', last_error = ?2, updated_at = ?3
                 WHERE event_id = ?1 AND state IN ('pending', 'in_flight')",
            )?;
            for (event_id, outcome) in results {
                match outcome {
                    Outcome::Delivered | Outcome::Duplicate => {
                        if sent.execute(params![event_id, now])? == 0 {
                            sum.unknown += 1;
                        } else if *outcome == Outcome::Duplicate {
                            sum.duplicates += 1;
                        } else {
                            sum.delivered += 1;
                        }
                    }
                    Outcome::Rejected(reason) => {
                        let state: Option<String> = reject
                            .query_row(params![event_id, reason, now, max_attempts as i64], |r| {
                                r.get(0)
                            })
                            .optional()?;
                        match state.as_deref() {
                            Some("parked") => sum.parked += 1,
                            Some(_) => sum.requeued += 1,
                            None => sum.unknown += 1,
                        }
                    }
                    Outcome::Retry(reason) => {
                        if retry.execute(params![event_id, reason, now])? == 0 {
                            sum.unknown += 1;
                        } else {
                            sum.requeued += 1;
                        }
                    }
                }
            }
            Ok(sum)
        })
    }

    /// Parked events back to pending with attempts reset ("re-queued on
    /// request"). `None` means all of them.
    pub fn requeue_parked(&mut self, event_ids: Option<&[String]>) -> Result<u64, StoreError> {
        let now = now_micros();
        let n = match event_ids {
            None => self.conn.execute(
                "UPDATE events SET state = CASE WHEN project_uuid IS NULL THEN 'held' ELSE 'pending' END,
                     attempts = 0, updated_at = ?1 WHERE state = 'parked'",
                params![now],
            ),
            Some(ids) => {
                let mut n = 0;
                for id in ids {
                    n += self.conn.execute(
                        "UPDATE events SET state = CASE WHEN project_uuid IS NULL THEN 'held' ELSE 'pending' END,
                             attempts = 0, updated_at = ?2 WHERE state = 'parked' AND event_id = ?1",
                        params![id, now],
                    ).map_err(|e| self.sql_err(e))?;
                }
                Ok(n)
            }
        };
        n.map(|n| n as u64).map_err(|e| self.sql_err(e))
    }

    /// Deletes sent rows older than `older_than_micros` (keeps the store
    /// from growing forever; the server deduplicates anything re-sent).
    pub fn prune_sent(&mut self, older_than_micros: i64) -> Result<u64, StoreError> {
        self.conn
            .execute(
                "DELETE FROM events WHERE state = 'sent' AND updated_at < ?1",
                params![older_than_micros],
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql_err(e))
    }

    /// Everything `spec-kitty sync status` shows of the queue (see [`counts`]).
    pub fn counts(&self, parked_limit: usize) -> Result<StoreCounts, StoreError> {
        counts(&self.conn, parked_limit).map_err(|e| self.sql_err(e))
    }
}

/// Everything `spec-kitty sync status` shows of the queue. Takes any
/// connection, so status can read through its own read-only connection
/// (WAL) and never holds up the writer: with a 1M-event backlog these
/// counts take a while, and emits must not wait behind them.
pub fn counts(conn: &Connection, parked_limit: usize) -> rusqlite::Result<StoreCounts> {
    let mut c = StoreCounts {
        lamport_clock: read_clock(conn)? as u64,
        ..StoreCounts::default()
    };
    let count = |state: &str| -> rusqlite::Result<u64> {
        conn.query_row(
            "SELECT COUNT(*) FROM events WHERE state = ?1",
            [state],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
    };
    c.queue_depth = count("pending")? + count("in_flight")?;
    c.held = count("held")?;
    c.parked_total = count("parked")?;
    // Oldest waiting event: the lowest seq of each waiting state (index
    // walk, not a scan of the backlog).
    let mut oldest: Option<i64> = None;
    for state in ["pending", "in_flight"] {
        let t: Option<i64> = conn
            .query_row(
                "SELECT created_at FROM events WHERE state = ?1 ORDER BY seq LIMIT 1",
                [state],
                |r| r.get(0),
            )
            .optional()?;
        oldest = match (oldest, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    c.oldest_pending_micros = oldest;
    let mut stmt = conn.prepare_cached(
        "SELECT project_uuid, state, COUNT(*) FROM events
         WHERE project_uuid IS NOT NULL GROUP BY project_uuid, state",
    )?;
    let mut by_project: std::collections::BTreeMap<String, ProjectCounts> = Default::default();
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)? as u64,
        ))
    })?;
    for row in rows {
        let (uuid, state, n) = row?;
        let p = by_project
            .entry(uuid.clone())
            .or_insert_with(|| ProjectCounts {
                project_uuid: uuid,
                ..ProjectCounts::default()
            });
        match state.as_str() {
            "pending" | "in_flight" => p.pending += n,
            "sent" => p.sent += n,
            _ => {}
        }
    }
    // The latest slug of each project; (project_uuid, state) equality lets
    // the index give rows in seq order, so this is a short walk.
    let mut slug = conn.prepare_cached(
        "SELECT project_slug FROM events WHERE project_uuid = ?1 AND state = ?2
         ORDER BY seq DESC LIMIT 1",
    )?;
    for p in by_project.values_mut() {
        for state in ["pending", "in_flight", "sent", "parked"] {
            let s: Option<Option<String>> = slug
                .query_row([p.project_uuid.as_str(), state], |r| r.get(0))
                .optional()?;
            if let Some(Some(s)) = s {
                p.project_slug = Some(s);
                break;
            }
        }
    }
    c.projects = by_project.into_values().collect();
    let mut stmt = conn.prepare_cached(
        "SELECT event_id, event_type, project_slug, COALESCE(last_error, ''), attempts
         FROM events WHERE state = 'parked' ORDER BY seq LIMIT ?1",
    )?;
    c.parked = stmt
        .query_map([parked_limit as i64], |r| {
            Ok(ParkedEvent {
                event_id: r.get(0)?,
                event_type: r.get(1)?,
                project_slug: r.get(2)?,
                reason: r.get(3)?,
                attempts: r.get::<_, i64>(4)? as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(c)
}

/// (device, inode) of the file at `path`.
fn file_id(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// Opens a store file read-only, for tools and tests that inspect it while
/// the daemon runs (WAL lets readers and the writer proceed together).
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "3f0b5c1e-9a1d-4c55-9d44-6f1e2a3b4c5d";

    fn stamp() -> Stamp {
        Stamp {
            node_id: "abcdefabcdef".into(),
            team_slug: "local".into(),
        }
    }

    fn env(project: Option<&str>) -> EventEnvelope {
        let text = serde_json::json!({
            "event_id": ulid::Ulid::new().to_string(), "event_type": "FutureEvent",
            "aggregate_id": "WP01", "aggregate_type": "WorkPackage", "payload": {},
            "node_id": "000000000000", "lamport_clock": 0, "causation_id": null,
            "timestamp": "2026-02-07T08:34:22.123456+00:00", "team_slug": "x",
            "project_uuid": project, "project_slug": "demo", "x_future": 1
        });
        EventEnvelope::from_value(text).unwrap()
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db"), stamp()).unwrap();
        (dir, store)
    }

    #[test]
    fn adopted_rows_below_the_clock_or_repeating_a_value_are_stamped_after_it() {
        let (_d, mut s) = open();
        s.raise_clock(10).unwrap();
        // Python's json.dumps spacing: a kept row must survive byte for byte.
        let row = |lamport: Option<i64>| {
            let id = ulid::Ulid::new().to_string();
            let l = lamport.map_or(String::new(), |l| format!(", \"lamport_clock\": {l}"));
            let data = format!(
                "{{\"event_id\": \"{id}\", \"event_type\": \"WPStatusChanged\", \"project_uuid\": \"{P}\", \"x_extra\": [1, 2]{l}}}"
            );
            AdoptedRow {
                event_id: id,
                event_type: "WPStatusChanged".to_string(),
                object: Some(serde_json::from_str(&data).unwrap()),
                text: data,
                lamport,
                project_uuid: Some(P.to_string()),
                project_slug: None,
                state: AdoptedState::Pending,
            }
        };
        let rows = vec![
            row(Some(12)), // above the clock: kept
            row(Some(5)),  // below: 13
            row(Some(12)), // a value already taken (Python's clock race): 14
            row(None),     // none: 15
            row(Some(13)), // above the clock but given to row 2 already: 16
        ];
        assert_eq!(s.insert_adopted(&rows, None).unwrap(), 5);
        let stored: Vec<(i64, String)> = s
            .conn
            .prepare("SELECT lamport_clock, envelope FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let lamports: Vec<i64> = stored.iter().map(|r| r.0).collect();
        assert_eq!(lamports, [12, 13, 14, 15, 16]);
        assert_eq!(
            stored[0].1, rows[0].text,
            "a kept row is byte for byte Python's"
        );
        for (i, (l, text)) in stored.iter().enumerate().skip(1) {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(v["lamport_clock"], *l, "row {i}: {text}");
            assert_eq!(v["x_extra"], serde_json::json!([1, 2]), "row {i}: {text}");
            assert_eq!(v["event_id"], rows[i].event_id.as_str());
        }
        assert_eq!(s.clock().unwrap(), 16);
        // Again (a re-read): nothing added, the clock does not tick.
        assert_eq!(s.insert_adopted(&rows, None).unwrap(), 0);
        assert_eq!(s.clock().unwrap(), 16);
    }

    #[test]
    fn the_idle_checkpoint_keeps_the_wal_small_and_the_inline_one_bounds_it() {
        let (d, mut s) = open();
        let wal_frames = || {
            let bytes = std::fs::metadata(d.path().join("s.db-wal")).unwrap().len();
            (bytes.saturating_sub(32) / (4096 + 24)) as i32
        };
        let one = |s: &mut Store| s.commit_emits(vec![(env(Some(P)), Origin::Ipc)]).unwrap();
        // As the writer does: a checkpoint when idle after each commit.
        let mut ran = 0;
        for _ in 0..200 {
            one(&mut s);
            ran += usize::from(s.checkpoint_if_due().unwrap());
        }
        assert!(ran >= 2, "checkpointed {ran} times");
        assert!(s.meta("checkpointed_at").unwrap().is_some());
        let small = wal_frames();
        assert!(small < CHECKPOINT_FRAMES + 64, "WAL of {small} frames");
        // Never idle: it grows past that, to SQLite's bound (our hook).
        for _ in 0..300 {
            one(&mut s);
        }
        let big = wal_frames();
        assert!(
            big > CHECKPOINT_FRAMES + 64 && big < CHECKPOINT_FRAMES_INLINE + 64,
            "WAL of {big} frames"
        );
        assert_eq!(s.pending_batch(0, 1000).unwrap().len(), 500);
    }

    #[test]
    fn commit_stamps_ticks_and_dedupes_within_a_group() {
        let (_d, mut s) = open();
        let a = env(Some(P));
        let out = s
            .commit_emits(vec![
                (a.clone(), Origin::Ipc),
                (env(None), Origin::Ipc),
                (a.clone(), Origin::Ipc),
            ])
            .unwrap();
        assert_eq!(out[0].lamport_clock, 1);
        assert_eq!(out[1].lamport_clock, 2);
        assert_eq!(
            out[2],
            Accepted {
                duplicate: true,
                ..out[0]
            }
        );
        assert_eq!(s.clock().unwrap(), 2);
        let q = s.pending_batch(0, 10).unwrap();
        assert_eq!(q.len(), 1, "held event is never pending");
        let v: serde_json::Value = serde_json::from_str(&q[0].envelope).unwrap();
        assert_eq!(v["node_id"], "abcdefabcdef");
        assert_eq!(v["team_slug"], "local");
        assert_eq!(v["lamport_clock"], 1);
        assert_eq!(v["x_future"], 1, "unknown keys carried through");
        assert_eq!(*s.subscribe_commits().borrow(), out[1].seq.max(out[0].seq));
    }

    #[test]
    fn transport_cycle_in_flight_results_parking() {
        let (_d, mut s) = open();
        let evs: Vec<_> = (0..4).map(|_| (env(Some(P)), Origin::Ipc)).collect();
        let ids: Vec<String> = evs.iter().map(|e| e.0.event_id.clone()).collect();
        s.commit_emits(evs).unwrap();
        let batch = s.pending_batch(0, 3).unwrap();
        assert_eq!(
            batch.iter().map(|e| &e.event_id).collect::<Vec<_>>(),
            ids[..3].iter().collect::<Vec<_>>()
        );
        s.mark_in_flight(&batch.iter().map(|e| e.seq).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(s.pending_batch(0, 10).unwrap().len(), 1);
        let sum = s
            .apply_results(
                &[
                    (ids[0].clone(), Outcome::Delivered),
                    (ids[1].clone(), Outcome::Duplicate),
                    (ids[2].clone(), Outcome::Rejected("bad lane".into())),
                    ("01NOPE0000000000000000000".into(), Outcome::Delivered),
                ],
                2,
            )
            .unwrap();
        assert_eq!(
            sum,
            ApplySummary {
                delivered: 1,
                duplicates: 1,
                parked: 0,
                requeued: 1,
                unknown: 1
            }
        );
        // Second rejection reaches the limit: parked with the reason.
        s.apply_results(&[(ids[2].clone(), Outcome::Rejected("bad lane".into()))], 2)
            .unwrap();
        let c = s.counts(10).unwrap();
        assert_eq!(c.parked_total, 1);
        assert_eq!(c.parked[0].reason, "bad lane");
        assert_eq!(c.parked[0].attempts, 2);
        assert_eq!(c.queue_depth, 1);
        assert_eq!(c.projects[0].sent, 2);
        assert_eq!(c.projects[0].pending, 1);
        // Re-queue on request; in-flight back to pending at restart.
        assert_eq!(s.requeue_parked(None).unwrap(), 1);
        let b = s.pending_batch(0, 10).unwrap();
        s.mark_in_flight(&[b[0].seq]).unwrap();
        assert_eq!(s.requeue_in_flight().unwrap(), 1);
        assert_eq!(s.pending_batch(0, 10).unwrap().len(), 2);
    }

    #[test]
    fn newer_schema_is_refused_and_corrupt_file_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", 7).unwrap();
        }
        let err = Store::open(&path, stamp()).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 7, .. }),
            "{err}"
        );
        std::fs::write(&path, b"garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage").unwrap();
        let s = Store::open(&path, stamp()).unwrap();
        let aside = s.moved_aside.clone().unwrap();
        assert!(aside.exists());
        assert_eq!(s.clock().unwrap(), 0);
    }

    #[test]
    fn a_deleted_store_is_replaced_with_its_unsent_rows_and_clock() {
        let (d, mut s) = open();
        s.commit_emits(vec![
            (env(Some(P)), Origin::Ipc),
            (env(Some(P)), Origin::Ipc),
        ])
        .unwrap();
        let sent = env(Some(P));
        let sent_id = sent.event_id.clone();
        s.commit_emits(vec![(sent, Origin::Ipc)]).unwrap();
        s.apply_results(&[(sent_id, Outcome::Delivered)], 3)
            .unwrap();
        assert!(!s.ensure_current().unwrap(), "nothing changed yet");
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", d.path().join("s.db").display()));
        }
        assert!(s.ensure_current().unwrap());
        assert!(d.path().join("s.db").exists(), "a fresh file at the path");
        let c = s.counts(10).unwrap();
        assert_eq!(
            (c.queue_depth, c.lamport_clock),
            (2, 3),
            "unsent rows and clock kept"
        );
        let next = s.commit_emits(vec![(env(Some(P)), Origin::Ipc)]).unwrap();
        assert_eq!(next[0].lamport_clock, 4);
        assert!(!s.ensure_current().unwrap());
    }

    #[test]
    fn the_clock_reservation_outlives_a_lost_store() {
        let d = tempfile::tempdir().unwrap();
        let reservation = d.path().join("clock.json");
        let mut s = Store::open(&d.path().join("a.db"), stamp()).unwrap();
        s.use_clock_reservation(reservation.clone()).unwrap();
        s.commit_emits(vec![(env(Some(P)), Origin::Ipc)]).unwrap();
        drop(s);
        // The same store again: its own clock, no jump.
        let mut s = Store::open(&d.path().join("a.db"), stamp()).unwrap();
        s.use_clock_reservation(reservation.clone()).unwrap();
        assert_eq!(s.clock().unwrap(), 1);
        drop(s);
        // Another store (the first one lost): starts above the reservation.
        let mut s = Store::open(&d.path().join("b.db"), stamp()).unwrap();
        s.use_clock_reservation(reservation.clone()).unwrap();
        assert_eq!(s.clock().unwrap(), 2 + CLOCK_RESERVE_STEP - 1);
        let a = s.commit_emits(vec![(env(Some(P)), Origin::Ipc)]).unwrap();
        assert!(a[0].lamport_clock > 1);
        // A garbage reservation file is ignored and rewritten.
        std::fs::write(&reservation, "garbage").unwrap();
        let mut s = Store::open(&d.path().join("b.db"), stamp()).unwrap();
        s.use_clock_reservation(reservation.clone()).unwrap();
        s.commit_emits(vec![(env(Some(P)), Origin::Ipc)]).unwrap();
        let text = std::fs::read_to_string(&reservation).unwrap();
        assert!(text.contains("store_id"), "{text}");
    }
}
