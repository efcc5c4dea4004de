//! The canonical status model of spec-kitty 2.1.3, as plain data and
//! functions: the log is the truth, everything else is derived from it.
//!
//! - [`event`]: one line of `kitty-specs/<feature>/status.events.jsonl` (a
//!   [`StatusEvent`]), read strictly and written as 2.1.3 writes it;
//! - [`log`]: reading the whole log (errors name the file and line) and
//!   appending to it durably;
//! - [`transitions`]: the eight-lane matrix and its guards, each refusal
//!   naming the guard and the flag that satisfies it;
//! - [`reducer`]: replaying the log into the snapshot that `status.json`
//!   holds, with 2.1.3's ordering, de-duplication and rollback rules;
//! - [`views`]: the generated status block of `tasks.md`;
//! - [`lock`]: the per-feature lock file both CLIs take;
//! - [`current`]: the current lane of every work package of a feature (log,
//!   else frontmatter), the one reader every command uses;
//! - [`store`]: the one write path that puts them together (lock, log,
//!   bootstrap, guards, views) and `materialize`.
//!
//! Only [`current`] and [`store`] read the WP files; nothing here touches
//! git or the daemon: `commands::lane_move` adds the wire event and the
//! commit.

pub mod current;
pub mod event;
pub mod lock;
pub mod log;
pub mod reducer;
pub mod store;
pub mod transitions;
pub mod views;

pub use event::{DoneEvidence, RepoEvidence, ReviewApproval, StatusEvent, VerificationResult};
