//! The daemon's integration tests over the real `spec-kitty-syncd` binary,
//! one test binary: `ipc` (the socket protocol, the store, races, restarts)
//! and `service_units` (systemd and launchd units); `common` is the harness.

mod common;
mod ipc;
mod service_units;
