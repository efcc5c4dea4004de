//! `spec-kitty-syncd`: the per-user sync daemon, as a library so its tests
//! and the benchmarks can use its modules.
//!
//! - [`store`]: the SQLite queue + Lamport clock (schema, migrations,
//!   corruption handling, and the transport's queue operations);
//! - [`writer`]: the single writer thread with group commit;
//! - [`server`]: the IPC server (peer check, handshake, requests);
//! - [`daemon`]: lifecycle (lock, readiness, signals, idle exit, drain);
//! - [`spool`], [`legacy`]: the two other ways events enter the store;
//! - [`sockdir`]: socket directory and stale-socket safety;
//! - [`config`]: the login (through the protocol crate's one reader) and
//!   tunables;
//! - [`transport`], [`saas`]: the SaaS connection (WebSocket, batch,
//!   token refresh) and its HTTP calls; the wire shapes themselves are
//!   `spec_kitty_protocol::saas`.

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
