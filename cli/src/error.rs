//! The one error type commands return, and the exit code each kind maps to.
//!
//! Scripts and agents branch on exit codes, so every failure is classified
//! once, here, and the codes are listed in `spec-kitty --help`.

/// Exit codes, documented in `--help` (see [`EXIT_CODES_HELP`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: an I/O or internal failure (disk, permissions, git).
    Io = 1,
    /// 3: not inside a spec-kitty project.
    NotInProject = 3,
    /// 4: invalid input or data (unknown WP or feature, bad id, unknown
    /// lane, malformed frontmatter, ambiguous feature).
    Invalid = 4,
    /// 5: refused by a rule (lane graph, feature not ready to accept).
    Refused = 5,
}

/// The text appended to `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  I/O or internal error (disk, permissions, git)
  2  usage error (unknown flag or missing argument)
  3  not inside a spec-kitty project (no .kittify/ or kitty-specs/ found)
  4  invalid input or data: unknown work package or feature, bad WP id,
     unknown lane, malformed frontmatter, ambiguous feature, a directory
     or FIFO named like a WP file; `status` still shows the board, with
     each unreadable WP file listed under UNREADABLE with its reason
  5  refused by a rule: transition not allowed by the lane graph,
     feature not ready to accept, a repository file that is a link
     leading out of the repository

Environment:
  SPEC_KITTY_SYNC_HOME  sync state directory (default ~/.spec-kitty): spool, credentials
  NO_COLOR              disable colour (colour is also off when stdout is not a terminal)
  SPECIFY_FEATURE       feature slug to use when --feature is not given";

/// A failed command: what kind, and a message for the user that names the
/// file and the rule.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub kind: Kind,
    pub message: String,
}

impl CliError {
    pub fn new(kind: Kind, message: impl Into<String>) -> CliError {
        CliError {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> CliError {
        CliError::new(Kind::Invalid, message)
    }
    pub fn refused(message: impl Into<String>) -> CliError {
        CliError::new(Kind::Refused, message)
    }
    pub fn io(message: impl Into<String>) -> CliError {
        CliError::new(Kind::Io, message)
    }
    /// A failure the command has already reported in full (e.g. `status`
    /// showing the board with its unreadable WP files): only the exit code
    /// is left, and nothing more is printed.
    pub fn reported(kind: Kind) -> CliError {
        CliError::new(kind, "")
    }
    /// An I/O error on `path`, phrased for the user.
    pub fn io_at(what: &str, path: &std::path::Path, e: &std::io::Error) -> CliError {
        CliError::io(format!("cannot {what} {}: {e}", path.display()))
    }
    pub fn exit_code(&self) -> i32 {
        self.kind as i32
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;
