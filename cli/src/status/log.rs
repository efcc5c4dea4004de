//! `status.events.jsonl`: the append-only log of a feature's status events.
//!
//! Reading is all-or-nothing: one line that is not a valid event (torn by a
//! crash, broken by hand) is an error naming the file and the line, never
//! skipped, because a reducer that silently drops a line would report a
//! different lane than the other CLI. Blank lines are skipped, as 2.1.3
//! does. Appending writes whole lines in one `write` on an `O_APPEND` file
//! and fsyncs it before returning: the log is durable before any view is
//! rewritten from it. The caller holds the feature's status lock.

use super::event::StatusEvent;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The log's file name inside `kitty-specs/<feature>/`.
pub const FILE_NAME: &str = "status.events.jsonl";

/// The log of the feature in `feature_dir`.
pub fn path(feature_dir: &Path) -> PathBuf {
    feature_dir.join(FILE_NAME)
}

/// Why the log could not be read or written: the file, the 1-based line
/// when one is at fault, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LogError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// A log line and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub line: usize,
    pub event: StatusEvent,
}

/// Every event of the log in file order; no file means no events.
pub fn read(feature_dir: &Path) -> Result<Vec<Logged>, LogError> {
    let path = path(feature_dir);
    let text = match fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|e| LogError {
            path: path.clone(),
            line: None,
            message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(LogError {
                path,
                line: None,
                message: format!("cannot read: {e}"),
            })
        }
    };
    parse(&path, &text)
}

/// Parses the text of a log (see [`read`]).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Logged>, LogError> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let err = |message: String| LogError {
            path: path.to_path_buf(),
            line: Some(i + 1),
            message,
        };
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            err(format!(
                "not a JSON object ({e}); `spec-kitty agent status doctor` shows how to repair it"
            ))
        })?;
        let event =
            StatusEvent::from_value(&value).map_err(|m| err(format!("not a status event: {m}")))?;
        out.push(Logged { line: i + 1, event });
    }
    Ok(out)
}

/// The union of several versions of one log (a git merge's base, ours and
/// theirs): every event once, by `event_id` (the first version holding an
/// id gives its line, byte for byte), ordered as 2.1.3's reducer orders
/// (`at`, then `event_id`). Merging two branches that both appended thus
/// loses nothing and adds nothing, and reducing the result gives the same
/// state whichever side is "ours". A version that does not parse is an
/// error naming it and the line: a merge never guesses.
pub fn union(versions: &[(&Path, &str)]) -> Result<String, LogError> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<(StatusEvent, &str)> = Vec::new();
    for (path, text) in versions {
        let lines: Vec<&str> = text.split('\n').collect();
        for logged in parse(path, text)? {
            if seen.insert(logged.event.event_id.clone()) {
                kept.push((logged.event, lines[logged.line - 1].trim()));
            }
        }
    }
    kept.sort_by(|(a, _), (b, _)| (&a.at, &a.event_id).cmp(&(&b.at, &b.event_id)));
    Ok(kept.iter().map(|(_, line)| format!("{line}\n")).collect())
}

/// Appends `events` as lines and fsyncs the file (and the directory when
/// the log is new). A last line left without its newline (a crash after a
/// partial write that still parses) gets one first, so two events never
/// share a line.
pub fn append(feature_dir: &Path, events: &[StatusEvent]) -> Result<(), LogError> {
    append_to(&path(feature_dir), events)
}

/// [`append`] to the log file at `path` (already resolved under the
/// repository's link rule by the caller).
pub fn append_to(path: &Path, events: &[StatusEvent]) -> Result<(), LogError> {
    let path = path.to_path_buf();
    let io_err = |what: &str, e: io::Error| LogError {
        path: path.clone(),
        line: None,
        message: format!("cannot {what}: {e}"),
    };
    let mut text = String::new();
    for e in events {
        text.push_str(&e.to_line());
        text.push('\n');
    }
    let existed = path.exists();
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| io_err("open", e))?;
    let len = f.metadata().map_err(|e| io_err("stat", e))?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))
            .map_err(|e| io_err("read", e))?;
        f.read_exact(&mut last).map_err(|e| io_err("read", e))?;
        if last[0] != b'\n' {
            text.insert(0, '\n');
        }
    }
    f.write_all(text.as_bytes())
        .map_err(|e| io_err("append to", e))?;
    f.sync_all().map_err(|e| io_err("fsync", e))?;
    if !existed {
        File::open(path.parent().unwrap_or(Path::new(".")))
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("fsync the directory of", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::event::StatusEvent;
    use spec_kitty_protocol::Lane;

    fn ev(id: &str) -> StatusEvent {
        StatusEvent::sample(
            id,
            "WP01",
            Lane::Planned,
            Lane::Claimed,
            "2026-11-29T16:15:26+00:00",
        )
    }

    #[test]
    fn appended_events_read_back_in_order_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_empty(), "no log, no events");
        append(dir.path(), &[ev("01A")]).unwrap();
        append(dir.path(), &[ev("01B"), ev("01C")]).unwrap();
        let got = read(dir.path()).unwrap();
        let ids: Vec<(usize, &str)> = got
            .iter()
            .map(|l| (l.line, l.event.event_id.as_str()))
            .collect();
        assert_eq!(ids, vec![(1, "01A"), (2, "01B"), (3, "01C")]);
    }

    #[test]
    fn a_torn_line_is_an_error_naming_file_and_line_and_nothing_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &[ev("01A")]).unwrap();
        let p = path(dir.path());
        let mut text = fs::read_to_string(&p).unwrap();
        text.push_str("\n{\"event_id\": \"01B\", \"feature");
        fs::write(&p, &text).unwrap();
        let err = read(dir.path()).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(
            err.to_string()
                .starts_with(&format!("{}:3: not a JSON object", p.display())),
            "{err}"
        );
    }

    #[test]
    fn union_keeps_every_event_once_in_reducer_order() {
        let p = Path::new("status.events.jsonl");
        let at = |id: &str, t: &str| {
            let mut e = ev(id);
            e.at = t.into();
            e.to_line() + "\n"
        };
        let base = at("01B", "2026-01-01T00:00:02+00:00");
        let ours = base.clone() + &at("01D", "2026-01-01T00:00:04+00:00");
        let theirs = base.clone()
            + &at("01C", "2026-01-01T00:00:03+00:00")
            + &at("01A", "2026-01-01T00:00:04+00:00");
        let merged = union(&[(p, &base), (p, &ours), (p, &theirs)]).unwrap();
        let ids: Vec<String> = parse(p, &merged)
            .unwrap()
            .into_iter()
            .map(|l| l.event.event_id)
            .collect();
        assert_eq!(ids, vec!["01B", "01C", "01A", "01D"]);
        assert_eq!(
            union(&[(p, &base), (p, &theirs), (p, &ours)]).unwrap(),
            merged,
            "the same whichever side is ours"
        );
        let torn = ours.clone() + "{\"event_id\": \"01E\"";
        let err = union(&[(p, &base), (p, &torn), (p, &theirs)]).unwrap_err();
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn a_last_line_without_newline_gets_one_before_the_next_event() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        fs::write(&p, ev("01A").to_line()).unwrap();
        append(dir.path(), &[ev("01B")]).unwrap();
        let ids: Vec<String> = read(dir.path())
            .unwrap()
            .into_iter()
            .map(|l| l.event.event_id)
            .collect();
        assert_eq!(ids, vec!["01A", "01B"]);
    }
}
