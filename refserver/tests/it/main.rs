//! The reference server's integration tests over its real binary, one test
//! binary with a module per endpoint or concern; `common` is the HTTP and
//! WebSocket client and the sample events. Run one topic:
//! `cargo nextest run -p spec-kitty-refserver -E 'test(/^websocket::/)'`.

mod auth;
mod batch;
mod common;
mod faults;
mod fixtures;
mod lifecycle;
mod tls;
mod view;
mod websocket;
