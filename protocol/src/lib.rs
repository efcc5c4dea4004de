//! `spec-kitty-protocol`: the shapes that every spec-kitty process shares.
//!
//! The CLI (`spec-kitty`), the daemon (`spec-kitty-syncd`) and the reference
//! server all agree on three things, and this crate is where they live so
//! they cannot drift apart:
//!
//! - [`envelope`]: the event envelope sent to the SaaS and its validation
//!   (see `CONTRACT.md`), with [`payload`] (the eight typed payloads),
//!   [`lane`] (the lane vocabulary), [`ids`] (id and slug rules) and
//!   [`envelope_error`] (the one error they return);
//! - [`ipc`]: the local-socket protocol between CLI and daemon — handshake,
//!   requests, responses and the length-prefixed frame codec — and
//!   [`client`], a blocking client over it (tests, harness, benchmarks);
//! - [`paths`]: every file and socket path, derived from one root
//!   (`SPEC_KITTY_SYNC_HOME`);
//! - [`credentials`]: the login file shared with the Python CLI (read,
//!   atomic 0600 write, the machine-wide lock, server URL rules);
//! - [`saas`]: the SaaS wire — token, ws-token and batch answers, the
//!   WebSocket frames — read by the daemon and the CLI, written by the
//!   reference server;
//! - [`fsutil`]: the one atomic file write (random exclusive temp name,
//!   fsync, rename, fsync of the directory) every process uses;
//! - [`html`]: HTML escaping for both dashboards;
//! - [`tls`]: the certificates every client trusts (Mozilla's roots plus
//!   `SSL_CERT_FILE`) and the rustls client configuration built from them.
//!
//! It deliberately has no async runtime and no database, so the CLI can
//! depend on it and still start in about a millisecond.

#[cfg(unix)]
pub mod client;
pub mod credentials;
pub mod envelope;
pub mod envelope_error;
pub mod fsutil;
pub mod html;
pub mod identity;
pub mod ids;
pub mod ipc;
pub mod lane;
pub mod paths;
pub mod payload;
pub mod saas;
#[cfg(feature = "test-support")]
pub mod sample;
pub mod time;
pub mod tls;

pub use envelope::{EnvelopeError, EventEnvelope, Lane};
pub use identity::node_id;
pub use paths::Paths;
