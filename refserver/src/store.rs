//! SQLite storage: every accepted event in received order, the tokens the
//! server issued, and which team owns which project.
//!
//! Tokens live in the database too, so a test can stop the server and start
//! it again on the same `--db` file and the client's session survives, like
//! a real SaaS restart. The materialised [`View`] is kept beside the
//! connection and rebuilt from the events table on open.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use spec_kitty_protocol::EventEnvelope;

use crate::validate::validate_event;
use crate::view::View;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// How an event reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Ws,
    Batch,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Ws => "ws",
            Via::Batch => "batch",
        }
    }
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored for the first time.
    Accepted,
    /// Its `event_id` was already stored; nothing changed but the delivery count.
    Duplicate,
    /// Not stored, with the reason.
    Rejected(String),
}

/// Kinds of token the server issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
    Ws,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
            TokenKind::Ws => "ws",
        }
    }
}

pub struct Store {
    conn: Connection,
    pub view: View,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  project_uuid TEXT,
  event_type TEXT NOT NULL,
  lamport_clock INTEGER NOT NULL,
  node_id TEXT NOT NULL,
  team TEXT NOT NULL,
  received_via TEXT NOT NULL,
  received_at TEXT NOT NULL,
  deliveries INTEGER NOT NULL DEFAULT 1,
  envelope TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_project ON events(project_uuid, seq);
CREATE TABLE IF NOT EXISTS project_claims(project_uuid TEXT PRIMARY KEY, team TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens(
  token TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  username TEXT NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
";

fn now_ms() -> i64 {
    spec_kitty_protocol::time::unix_micros(std::time::SystemTime::now()) / 1000
}

/// The reason given when a team sends events for a project it does not own.
pub fn project_auth_error(team: &str) -> String {
    format!("Invalid schema: project_uuid authorization check failed for team '{team}'")
}

/// A random token: 32 bytes of hex with a readable kind prefix.
fn mint(kind: TokenKind) -> String {
    let mut s = format!("rs_{}_", kind.as_str());
    for _ in 0..4 {
        s.push_str(&format!("{:016x}", fastrand::u64(..)));
    }
    s
}

impl Store {
    /// Opens (or creates) the database; `None` keeps everything in memory.
    pub fn open(path: Option<&Path>) -> Result<Store, StoreError> {
        let conn = match path {
            Some(p) => Connection::open(p).map_err(|source| StoreError::Open {
                path: p.display().to_string(),
                source,
            })?,
            None => Connection::open_in_memory()?,
        };
        // WAL + NORMAL: durable enough for a test server and fast enough for
        // the backlog benchmarks.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        let mut store = Store {
            conn,
            view: View::default(),
        };
        store.rebuild_view()?;
        Ok(store)
    }

    fn rebuild_view(&mut self) -> Result<(), StoreError> {
        let mut view = View::default();
        let mut stmt = self
            .conn
            .prepare("SELECT envelope, team, received_at FROM events ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (text, team, at) = row?;
            if let Ok(env) = EventEnvelope::from_json(&text) {
                view.apply(&env, &team, &at);
            }
        }
        drop(stmt);
        self.view = view;
        Ok(())
    }

    /// Gives `project_uuid` to `team` (overrides an earlier claim).
    pub fn claim(&self, project_uuid: &str, team: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO project_claims(project_uuid, team) VALUES (?1, ?2)
             ON CONFLICT(project_uuid) DO UPDATE SET team = excluded.team",
            params![project_uuid, team],
        )?;
        Ok(())
    }

    /// The team that owns `project_uuid`, if any.
    pub fn owner(&self, project_uuid: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT team FROM project_claims WHERE project_uuid = ?1",
                [project_uuid],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Batch-level authorization: every event whose `project_uuid` belongs
    /// to another team, as `(event_id, reason)`.
    pub fn unauthorized(&self, raw: &[Value], team: &str) -> Result<Vec<Value>, StoreError> {
        let mut details = Vec::new();
        for ev in raw {
            let Some(uuid) = ev.get("project_uuid").and_then(Value::as_str) else {
                continue;
            };
            if let Some(owner) = self.owner(uuid)? {
                if owner != team {
                    details.push(json!({
                        "event_id": ev.get("event_id").cloned().unwrap_or(Value::Null),
                        "error": project_auth_error(team),
                    }));
                }
            }
        }
        Ok(details)
    }

    /// Validates, deduplicates and stores `raw` events for `team` in one
    /// transaction; one outcome per event, in order.
    pub fn ingest(
        &mut self,
        raw: &[Value],
        team: &str,
        via: Via,
        reject_all: bool,
    ) -> Result<Vec<Outcome>, StoreError> {
        let received_at = spec_kitty_protocol::time::now_utc();
        let tx = self.conn.transaction()?;
        let mut outcomes = Vec::with_capacity(raw.len());
        let mut stored = Vec::new();
        for ev in raw {
            if reject_all {
                outcomes.push(Outcome::Rejected(
                    "rejected by fault injection (reject_all)".to_string(),
                ));
                continue;
            }
            let env = match validate_event(ev) {
                Ok(env) => env,
                Err(reason) => {
                    outcomes.push(Outcome::Rejected(reason));
                    continue;
                }
            };
            let uuid = env.project_uuid.clone().unwrap_or_default();
            let owner: Option<String> = tx
                .query_row(
                    "SELECT team FROM project_claims WHERE project_uuid = ?1",
                    [&uuid],
                    |r| r.get(0),
                )
                .optional()?;
            match owner {
                Some(o) if o != team => {
                    outcomes.push(Outcome::Rejected(project_auth_error(team)));
                    continue;
                }
                Some(_) => {}
                None => {
                    tx.execute(
                        "INSERT INTO project_claims(project_uuid, team) VALUES (?1, ?2)",
                        params![uuid, team],
                    )?;
                }
            }
            let dup = tx.execute(
                "UPDATE events SET deliveries = deliveries + 1 WHERE event_id = ?1",
                [&env.event_id],
            )?;
            if dup > 0 {
                outcomes.push(Outcome::Duplicate);
                continue;
            }
            tx.execute(
                "INSERT INTO events(event_id, project_uuid, event_type, lamport_clock, node_id, team,
                                    received_via, received_at, envelope)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    env.event_id,
                    uuid,
                    env.event_type,
                    env.lamport_clock as i64,
                    env.node_id,
                    team,
                    via.as_str(),
                    received_at,
                    env.to_json()
                ],
            )?;
            outcomes.push(Outcome::Accepted);
            stored.push(env);
        }
        tx.commit()?;
        for env in &stored {
            self.view.apply(env, team, &received_at);
        }
        Ok(outcomes)
    }

    /// Stored events in received order, optionally of one project, after
    /// sequence number `after_seq`, at most `limit`.
    pub fn events(
        &self,
        project_uuid: Option<&str>,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<Value>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, event_id, event_type, project_uuid, lamport_clock, node_id, team,
                    received_via, received_at, deliveries, envelope
             FROM events WHERE (?1 IS NULL OR project_uuid = ?1) AND seq > ?2
             ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![project_uuid, after_seq, limit], |r| {
            let envelope: String = r.get(10)?;
            Ok(json!({
                "seq": r.get::<_, i64>(0)?,
                "event_id": r.get::<_, String>(1)?,
                "event_type": r.get::<_, String>(2)?,
                "project_uuid": r.get::<_, Option<String>>(3)?,
                "lamport_clock": r.get::<_, i64>(4)?,
                "node_id": r.get::<_, String>(5)?,
                "team_slug": r.get::<_, String>(6)?,
                "received_via": r.get::<_, String>(7)?,
                "received_at": r.get::<_, String>(8)?,
                "deliveries": r.get::<_, i64>(9)?,
                "envelope": serde_json::from_str::<Value>(&envelope).unwrap_or(Value::Null),
            }))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Number of stored events.
    pub fn event_total(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    /// Every receipt of a stored event, duplicates included (the sum of
    /// `deliveries`): `receipts - events` is how many re-sends reached the
    /// server, which tests bound.
    pub fn receipt_total(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(SUM(deliveries), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// Issues a token of `kind` for `username`, valid `lifetime_s` seconds.
    pub fn issue_token(
        &self,
        kind: TokenKind,
        username: &str,
        lifetime_s: u64,
    ) -> Result<String, StoreError> {
        let token = mint(kind);
        let expires = now_ms().saturating_add((lifetime_s as i64).saturating_mul(1000));
        self.conn.execute(
            "INSERT INTO tokens(token, kind, username, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![token, kind.as_str(), username, expires],
        )?;
        Ok(token)
    }

    /// The user of a valid, unexpired token of `kind`; the token stays valid.
    pub fn check_token(&self, kind: TokenKind, token: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT username FROM tokens WHERE token = ?1 AND kind = ?2 AND expires_at_ms > ?3",
                params![token, kind.as_str(), now_ms()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// As [`check_token`](Self::check_token), and the token is used up
    /// (rotating refresh tokens, single-use WebSocket tokens).
    pub fn take_token(&self, kind: TokenKind, token: &str) -> Result<Option<String>, StoreError> {
        let user = self.check_token(kind, token)?;
        self.conn.execute(
            "DELETE FROM tokens WHERE token = ?1 AND kind = ?2",
            params![token, kind.as_str()],
        )?;
        Ok(user)
    }

    /// Invalidates every token of `kind`; returns how many.
    pub fn revoke(&self, kind: TokenKind) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM tokens WHERE kind = ?1", [kind.as_str()])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str) -> Value {
        json!({"event_id":id,"event_type":"WPCreated","aggregate_id":"WP01","aggregate_type":"WorkPackage",
               "payload":{"wp_id":"WP01","title":"t","feature_slug":"001-a"},
               "timestamp":"2026-02-12T12:00:00+00:00","node_id":"a1b2c3d4e5f6","lamport_clock":1,
               "causation_id":null,"team_slug":"t","project_uuid":"550e8400-e29b-41d4-a716-446655440000",
               "project_slug":"p"})
    }

    #[test]
    fn dedupe_claims_and_reopen_survive_in_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut s = Store::open(Some(&path)).unwrap();
        let a = ev("01JMBY7K8N3QRVX2DPFG5HWT4E");
        let out = s
            .ingest(&[a.clone(), a.clone()], "team-a", Via::Batch, false)
            .unwrap();
        assert_eq!(out, vec![Outcome::Accepted, Outcome::Duplicate]);
        let out = s
            .ingest(std::slice::from_ref(&a), "team-b", Via::Ws, false)
            .unwrap();
        assert_eq!(out, vec![Outcome::Rejected(project_auth_error("team-b"))]);
        let tok = s.issue_token(TokenKind::Refresh, "alice", 60).unwrap();
        drop(s);
        let s = Store::open(Some(&path)).unwrap();
        assert_eq!(s.event_total().unwrap(), 1);
        assert_eq!(s.receipt_total().unwrap(), 2);
        assert_eq!(s.events(None, 0, 10).unwrap()[0]["deliveries"], 2);
        assert_eq!(s.view.projects.len(), 1);
        assert_eq!(
            s.take_token(TokenKind::Refresh, &tok).unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(
            s.take_token(TokenKind::Refresh, &tok).unwrap(),
            None,
            "rotated"
        );
    }
}
