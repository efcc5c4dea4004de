//! `spec-kitty-refserver`: a small but real implementation of the SaaS side
//! of the wire contract (`CONTRACT.md`), for tests, local development and
//! the demo.
//!
//! It is not a mock: it speaks real HTTP and WebSocket on 127.0.0.1, stores
//! every event in SQLite, deduplicates by `event_id`, validates envelopes with
//! the shared protocol crate (so rejection reasons name the field), and
//! materialises what the SaaS dashboard would show. Faults (refused
//! connections, 500s, delays, dropped WebSockets, no acks, reject-all,
//! whole-request batch 400s, results left out, 400s naming some events, a
//! batch size limit) can be switched on at start and at runtime, so
//! transport tests can make the network misbehave on purpose.
//!
//! Modules:
//! - [`config`]: command-line flags, users, project claims;
//! - [`store`]: SQLite storage of events, tokens and project claims;
//! - [`validate`]: per-event validation with SaaS-style reasons;
//! - [`view`]: the materialised projects/features/WPs view;
//! - [`faults`]: the fault switches and counters;
//! - [`listener`]: a TCP listener that can refuse connections on demand;
//! - [`tls`]: `--tls` (throw-away CA) or `--cert`/`--key`, https and wss;
//! - [`server`]: HTTP and WebSocket handlers;
//! - [`dashboard`]: the HTML dashboard.

pub mod config;
pub mod dashboard;
pub mod faults;
pub mod listener;
pub mod server;
pub mod store;
pub mod tls;
pub mod validate;
pub mod view;

pub use config::Config;
pub use server::run;
