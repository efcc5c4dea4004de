//! The CLI's integration tests, one binary (one link per build instead of
//! one per file: see the README, "How it fits together"). Each module is one
//! topic and opens with what it covers; `common` is the shared `World`.
//! Run one topic: `cargo nextest run -p spec-kitty -E 'test(/^merge::/)'`.

mod accept;
mod agent_commands;
mod agent_walkthrough;
mod commands;
mod commit_sequence;
mod common;
mod corpus;
mod hostile_input;
mod identity;
mod implement_deps;
mod malformed_files;
mod merge;
mod orchestrator_api;
mod packaging;
mod planning;
mod planning_python;
mod pyjson_oracle;
mod repo_files;
mod status_model;
mod status_model_read;
mod surface;
mod workflow;
