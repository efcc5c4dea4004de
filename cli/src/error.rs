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

/// Set to a non-empty value, a failed command also prints the causes of its
/// error that the message does not already say ([`CliError::report`]): a
/// debugging aid, documented in the README's environment table (not in
/// `--help`, which lists what users set day to day).
pub const ERROR_CAUSES_ENV: &str = "SPEC_KITTY_ERROR_CAUSES";

/// A failed command: what kind, a message for the user that names the
/// file and the rule, and the error it came from (kept, not flattened, so
/// the binary's edge can print the chain; see [`CliError::for_user`]).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub kind: Kind,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl CliError {
    pub fn new(kind: Kind, message: impl Into<String>) -> CliError {
        CliError {
            kind,
            message: message.into(),
            source: None,
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
    /// An I/O or internal failure whose message is the error's own text;
    /// the error is kept as the source.
    pub fn io_from(e: impl std::error::Error + Send + Sync + 'static) -> CliError {
        CliError::io(e.to_string()).with_source(e)
    }
    /// Invalid data whose message is the error's own text (it names the
    /// file and the line); the error is kept as the source.
    pub fn invalid_from(e: impl std::error::Error + Send + Sync + 'static) -> CliError {
        CliError::invalid(e.to_string()).with_source(e)
    }
    /// Keeps `e` as the cause of this error.
    pub fn with_source(mut self, e: impl std::error::Error + Send + Sync + 'static) -> CliError {
        self.source = Some(Box::new(e));
        self
    }
    /// A failure the command has already reported in full (e.g. `status`
    /// showing the board with its unreadable WP files): only the exit code
    /// is left, and nothing more is printed.
    pub fn reported(kind: Kind) -> CliError {
        CliError::new(kind, "")
    }
    /// An I/O error on `path`, phrased for the user; the error is kept as
    /// the source (an OS error by its code, so nothing of it is lost).
    pub fn io_at(what: &str, path: &std::path::Path, e: &std::io::Error) -> CliError {
        let kept = e.raw_os_error().map_or_else(
            || std::io::Error::new(e.kind(), e.to_string()),
            std::io::Error::from_raw_os_error,
        );
        CliError::io(format!("cannot {what} {}: {e}", path.display())).with_source(kept)
    }
    pub fn exit_code(&self) -> i32 {
        self.kind as i32
    }
    /// What the binary prints: the message, or with [`ERROR_CAUSES_ENV`]
    /// set, the [`report`](CliError::report) with its causes.
    pub fn for_user(&self) -> String {
        if std::env::var_os(ERROR_CAUSES_ENV).is_some_and(|v| !v.is_empty()) {
            self.report()
        } else {
            self.message.clone()
        }
    }
    /// The message, then each cause in the source chain that the message
    /// does not already contain (most messages quote their direct cause).
    pub fn report(&self) -> String {
        let mut text = self.message.clone();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            let said = cause.to_string();
            if !said.is_empty() && !text.contains(&said) {
                text.push_str(": ");
                text.push_str(&said);
            }
            next = cause.source();
        }
        text
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_source_is_kept_and_only_unsaid_causes_are_added() {
        let gone = || std::io::Error::from_raw_os_error(2);
        // A message that quotes its cause reads as before.
        let e = CliError::io_at("read", std::path::Path::new("/x/WP01.md"), &gone());
        assert!(
            e.report().starts_with("cannot read /x/WP01.md: "),
            "{}",
            e.report()
        );
        assert_eq!(e.report(), e.message);
        let source = std::error::Error::source(&e).expect("kept");
        assert_eq!(
            source
                .downcast_ref::<std::io::Error>()
                .unwrap()
                .raw_os_error(),
            Some(2)
        );
        assert_eq!(CliError::io_from(gone()).report(), gone().to_string());
        let e = CliError::invalid_from(gone());
        assert_eq!(e.kind, Kind::Invalid);
        assert!(std::error::Error::source(&e).is_some());
        // A cause the message does not say is printed after it, down the chain.
        let e = CliError::io("cannot send the event").with_source(Outer(gone()));
        assert_eq!(
            e.report(),
            format!("cannot send the event: outer: {}", gone())
        );
        assert_eq!(CliError::invalid("bad").report(), "bad");
    }
}
