//! How results reach the user: human text (coloured only on a terminal and
//! without `NO_COLOR`) or one JSON object with `--json`; warnings and errors
//! on stderr.
//!
//! Every stdout line goes through [`print_line`], never `println!` (which
//! panics when the reader has gone): `spec-kitty status | head -1` ends
//! quietly with exit 0.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU8, Ordering};

/// What became of stdout in this process.
static STDOUT: AtomicU8 = AtomicU8::new(OPEN);
const OPEN: u8 = 0;
/// Its reader went away (a closed pipe): later output is dropped.
const GONE: u8 = 1;
/// A write failed otherwise (a full disk behind `>`): said once on
/// stderr, later output dropped, and the exit code becomes 1.
const FAILED: u8 = 2;

/// Writes `s` and a newline to stdout. A closed pipe is not an error: the
/// reader has what it wanted, and the command still finishes (its files
/// and events are already written by the time it prints) and exits 0.
pub fn print_line(s: &str) {
    let captured = CAPTURED.with(|c| match c.borrow_mut().as_mut() {
        Some(lines) => {
            lines.push(s.to_string());
            true
        }
        None => false,
    });
    if captured || STDOUT.load(Ordering::Relaxed) != OPEN {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{s}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT.store(GONE, Ordering::Relaxed);
        } else {
            STDOUT.store(FAILED, Ordering::Relaxed);
            let _ = writeln!(
                std::io::stderr(),
                "Error: cannot write to standard output: {e}"
            );
        }
    }
}

thread_local! {
    /// Lines [`capture`] is collecting instead of printing.
    static CAPTURED: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with every stdout line it prints collected instead: a command
/// that answers in one JSON envelope (`orchestrator-api`) runs another
/// command's code and reads that command's `--json` result from here.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    let outer = CAPTURED.with(|c| c.borrow_mut().replace(Vec::new()));
    let r = f();
    let lines = CAPTURED.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    (r, lines.unwrap_or_default())
}

/// Whether writing to stdout failed for a reason other than a closed pipe
/// (the binary then exits 1 even though the command itself succeeded).
pub fn stdout_failed() -> bool {
    STDOUT.load(Ordering::Relaxed) == FAILED
}

/// Writes one line to stderr; a closed stderr is ignored (nowhere to say it).
fn eprint_line(s: &str) {
    let _ = writeln!(std::io::stderr(), "{s}");
}

/// Output settings of one command run.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub json: bool,
    pub color: bool,
    pub err_color: bool,
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out {
            json,
            color: !json && !no_color() && std::io::stdout().is_terminal(),
            err_color: !no_color() && std::io::stderr().is_terminal(),
        }
    }

    fn paint(on: bool, code: &str, s: &str) -> String {
        if on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub fn green(&self, s: &str) -> String {
        Self::paint(self.color, "32", s)
    }
    pub fn bold(&self, s: &str) -> String {
        Self::paint(self.color, "1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        Self::paint(self.color, "2", s)
    }
    pub fn cyan(&self, s: &str) -> String {
        Self::paint(self.color, "36", s)
    }

    /// A human line on stdout (suppressed with `--json`).
    pub fn line(&self, s: &str) {
        if !self.json {
            print_line(s);
        }
    }

    /// The JSON result on stdout (only with `--json`).
    pub fn json(&self, v: &serde_json::Value) {
        if self.json {
            print_line(&v.to_string());
        }
    }

    /// A warning on stderr.
    pub fn warn(&self, msg: &str) {
        eprint_line(&format!(
            "{} {msg}",
            Self::paint(self.err_color, "33", "Warning:")
        ));
    }

    /// An error on stderr (and, with `--json`, `{"error": ...}` on stdout).
    pub fn error(&self, msg: &str) {
        eprint_line(&format!(
            "{} {msg}",
            Self::paint(self.err_color, "31", "Error:")
        ));
        if self.json {
            print_line(&serde_json::json!({ "error": msg }).to_string());
        }
    }
}
