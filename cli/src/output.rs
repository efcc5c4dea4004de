//! How results reach the user: human text (coloured only on a terminal and
//! without `NO_COLOR`) or one JSON object with `--json`; warnings and errors
//! on stderr.

use std::io::IsTerminal;

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
            println!("{s}");
        }
    }

    /// The JSON result on stdout (only with `--json`).
    pub fn json(&self, v: &serde_json::Value) {
        if self.json {
            println!("{v}");
        }
    }

    /// A warning on stderr.
    pub fn warn(&self, msg: &str) {
        eprintln!("{} {msg}", Self::paint(self.err_color, "33", "Warning:"));
    }

    /// An error on stderr (and, with `--json`, `{"error": ...}` on stdout).
    pub fn error(&self, msg: &str) {
        eprintln!("{} {msg}", Self::paint(self.err_color, "31", "Error:"));
        if self.json {
            println!("{}", serde_json::json!({ "error": msg }));
        }
    }
}
