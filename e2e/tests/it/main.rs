//! End-to-end tests over the real binaries, one test binary: each module is
//! one topic (hand-off, lifecycle, SaaS delivery, faults, security,
//! dashboards, the Python CLI) and opens with what it covers;
//! `faults_common` is what the fault tests share. Run one topic:
//! `cargo nextest run -p spec-kitty-e2e -E 'test(/^faults_crash::/)'`.

mod accept_python;
mod dashboard;
mod faults_common;
mod faults_crash;
mod faults_disk;
mod faults_durability;
mod faults_fuzz;
mod faults_network;
mod faults_soak;
mod handoff;
mod held;
mod hostile_files;
mod lifecycle;
mod local_dashboard;
mod python_client;
mod python_implement;
mod python_mixed;
mod python_queue_live;
mod security;
mod store_lost;
mod sync_checks;
mod sync_messages;
mod sync_saas;
mod test_layout;
mod tls;
mod workflow_python;
