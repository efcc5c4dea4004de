//! `spec-kitty-syncd`: the per-user sync daemon, as a library so tests,
//! benchmarks and the transport (issue 5) can use its modules.
//!
//! - [`store`]: the SQLite queue + Lamport clock (schema, migrations,
//!   corruption handling, and the transport's queue operations);
//! - [`writer`]: the single writer thread with group commit;
//! - [`server`]: the IPC server (peer check, handshake, requests);
//! - [`daemon`]: lifecycle (lock, readiness, signals, idle exit, drain);
//! - [`spool`], [`legacy`]: the two other ways events enter the store;
//! - [`sockdir`]: socket directory and stale-socket safety;
//! - [`config`]: credentials (team_slug, login state) and tunables;
//! - [`transport`], [`saas`]: the SaaS connection (WebSocket, batch,
//!   token refresh) and its HTTP calls.

pub mod config;
pub mod daemon;
pub mod legacy;
pub mod saas;
pub mod server;
pub mod sockdir;
pub mod spool;
pub mod store;
pub mod transport;
pub mod writer;
