//! Work-package files: `kitty-specs/<feature>/tasks/WPnn-title.md`.
//!
//! A WP file is YAML frontmatter between `---` lines, then Markdown. The
//! lane lives in the frontmatter (`lane: "doing"`, quoted or not, maybe
//! with a trailing comment). People and agents edit these files by hand,
//! so we read them with a real YAML parser and change them surgically:
//! a lane change rewrites only the value on the `lane:` line (keeping its
//! quoting and comment) and appends one `history:` entry; an activity note
//! inserts one line in the body's `## Activity Log`. Every other byte
//! stays, which is what lets a lane moved and moved back restore the file
//! exactly.

use crate::error::CliError;
use crate::yamltext;
use serde_json::Value;
use spec_kitty_protocol::envelope::is_wp_id;
use spec_kitty_protocol::Lane;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One parsed WP file.
#[derive(Debug, Clone)]
pub struct WpFile {
    pub path: PathBuf,
    pub text: String,
    /// Byte range of the frontmatter text (between the `---` lines,
    /// including the final line terminator of its last line).
    pub fm: Range<usize>,
    pub meta: WpMeta,
}

/// What we use of the frontmatter.
#[derive(Debug, Clone, PartialEq)]
pub struct WpMeta {
    pub wp_id: String,
    pub title: String,
    pub lane: Lane,
    /// The lane as written in the file (`doing`, `in_progress`, ...).
    pub lane_written: String,
    pub dependencies: Vec<String>,
    pub agent: Option<String>,
    pub shell_pid: Option<String>,
}

fn malformed(path: &Path, why: impl std::fmt::Display) -> CliError {
    CliError::invalid(format!(
        "malformed frontmatter in {}: {why}",
        path.display()
    ))
}

/// Splits `text` into the frontmatter range and the body start. The file
/// must start with a `---` line (after an optional BOM) and have a closing
/// `---` line.
pub fn split(text: &str) -> Option<(Range<usize>, usize)> {
    let start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut it = yamltext::lines(&text[start..]).map(|r| r.start + start..r.end + start);
    let first = it.next()?;
    if text[first.clone()].trim_end() != "---" {
        return None;
    }
    for r in it {
        if text[r.clone()].trim_end() == "---" {
            return Some((first.end..r.start, r.end));
        }
    }
    None
}

fn string_field(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl WpFile {
    /// Parses a WP file's text.
    pub fn parse(path: &Path, text: String) -> Result<WpFile, CliError> {
        let (fm, _) = split(&text).ok_or_else(|| {
            malformed(
                path,
                "the file must start with a `---` line and the frontmatter must end with another `---` line",
            )
        })?;
        let value: Value = if text[fm.clone()].trim().is_empty() {
            Value::Null
        } else {
            yamltext::parse_value(&text[fm.clone()])
                .map_err(|e| malformed(path, first_line(&e.to_string())))?
        };
        let obj = match value {
            Value::Object(o) => o,
            _ => return Err(malformed(path, "the frontmatter is not a mapping")),
        };
        let file_id = path
            .file_name()
            .map(|n| n.to_string_lossy().chars().take(4).collect::<String>())
            .unwrap_or_default();
        let wp_id = string_field(obj.get("work_package_id")).unwrap_or(file_id);
        if !is_wp_id(&wp_id) {
            return Err(malformed(
                path,
                format!("work_package_id '{wp_id}' must be WP followed by two digits (e.g. WP01)"),
            ));
        }
        let lane_written = match obj.get("lane") {
            None | Some(Value::Null) => "planned".to_string(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(other) => {
                return Err(malformed(
                    path,
                    format!("lane must be a string, found {other}"),
                ))
            }
        };
        let lane = parse_lane(&lane_written).map_err(|e| malformed(path, format!("lane: {e}")))?;
        let dependencies = match obj.get("dependencies") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) if s.trim().is_empty() => Vec::new(),
            Some(other) => {
                return Err(malformed(
                    path,
                    format!("dependencies must be a list of WP ids, found {other}"),
                ))
            }
        };
        let meta = WpMeta {
            wp_id,
            title: string_field(obj.get("title")).unwrap_or_default(),
            lane,
            lane_written,
            dependencies,
            agent: string_field(obj.get("agent")).filter(|s| !s.is_empty()),
            shell_pid: string_field(obj.get("shell_pid")).filter(|s| !s.is_empty()),
        };
        Ok(WpFile {
            path: path.to_path_buf(),
            text,
            fm,
            meta,
        })
    }

    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<WpFile, CliError> {
        // Never blocks on a FIFO; the caller has applied the link rule.
        let bytes = spec_kitty_protocol::fsutil::read_regular(path)
            .map_err(|e| CliError::io_at("read", path, &e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| CliError::invalid(format!("{} is not UTF-8 text", path.display())))?;
        WpFile::parse(path, text)
    }

    /// The frontmatter text.
    pub fn frontmatter(&self) -> &str {
        &self.text[self.fm.clone()]
    }

    /// A top-level scalar of the frontmatter as written (unquoted,
    /// trimmed), `None` when absent or empty.
    pub fn scalar(&self, key: &str) -> Option<String> {
        yamltext::find_key(self.frontmatter(), key)
            .map(|kl| kl.inner(self.frontmatter()).trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Replaces the frontmatter with `new_fm`, returning the whole new text.
    fn with_frontmatter(&self, new_fm: &str) -> String {
        format!(
            "{}{}{}",
            &self.text[..self.fm.start],
            new_fm,
            &self.text[self.fm.end..]
        )
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Parses a lane as users write it (`doing` = `in_progress`), naming the
/// valid ones when it is not. All eight lanes of the 2.1.3 status model are
/// read as themselves, `approved` included.
pub fn parse_lane(s: &str) -> Result<Lane, String> {
    let lower = s.trim().to_ascii_lowercase();
    Lane::parse(lower.as_str()).map_err(|_| {
        format!(
            "unknown lane '{s}'; valid lanes: planned, doing (= in_progress), for_review, approved, done, claimed, blocked, canceled"
        )
    })
}

/// The lane as we write it into a file: `doing` for in-progress (what
/// spec-kitty 2.x files use), the wire name otherwise.
pub fn lane_for_file(lane: Lane) -> &'static str {
    lane.as_user()
}

/// `text` with the `lane:` value in its frontmatter set to `value`,
/// keeping the quoting and any trailing comment. Without a `lane:` line,
/// one is inserted before `history:` (or at the end of the frontmatter).
pub fn set_lane(wp: &WpFile, value: &str) -> String {
    let fm = wp.frontmatter();
    let new_fm = match yamltext::find_key(fm, "lane") {
        Some(kl) => yamltext::replace_value(fm, &kl, value),
        None => {
            let eol = yamltext::line_ending(fm);
            let line = format!("lane: \"{value}\"{eol}");
            let at = yamltext::find_key(fm, "history").map_or(fm.len(), |k| k.line.start);
            yamltext::insert_at(fm, at, &line)
        }
    };
    wp.with_frontmatter(&new_fm)
}

/// One `history:` entry, in the shape spec-kitty writes.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub timestamp: String,
    pub lane: String,
    pub agent: String,
    pub shell_pid: String,
    pub action: String,
}

/// Appends `entry` to the frontmatter's `history:` list of `text` (a whole
/// WP file), in the list's own indentation; creates the list if absent.
pub fn append_history(path: &Path, text: &str, entry: &HistoryEntry) -> Result<String, CliError> {
    let (fm_range, _) = split(text).ok_or_else(|| malformed(path, "frontmatter not found"))?;
    let fm = &text[fm_range.clone()];
    let eol = yamltext::line_ending(text);
    let item = |indent: &str| {
        let mut s = format!("{indent}- timestamp: '{}'{eol}", entry.timestamp);
        for (k, v) in [
            ("lane", &entry.lane),
            ("agent", &entry.agent),
            ("shell_pid", &entry.shell_pid),
            ("action", &entry.action),
        ] {
            let v = if v.is_empty() {
                "''".to_string()
            } else {
                yamltext::scalar(v)
            };
            s.push_str(&format!("{indent}  {k}: {v}{eol}"));
        }
        s
    };
    let new_fm = match yamltext::find_key(fm, "history") {
        Some(kl) if kl.value.is_empty() => {
            let indent = yamltext::block_indent(fm, &kl.line)
                .unwrap_or("")
                .to_string();
            let end = yamltext::block_end(fm, &kl.line);
            yamltext::insert_at(fm, end, &item(&indent))
        }
        Some(kl)
            if fm[kl.value.clone()].trim() == "[]" || fm[kl.value.clone()].trim() == "null" =>
        {
            // `history: []`: turn into a block list; the line is ours to rewrite.
            let rest = &fm[kl.value.end..kl.line.end];
            let line = format!("history:{}{}", rest.trim_end_matches(['\r', '\n']), eol);
            format!(
                "{}{}{}{}",
                &fm[..kl.line.start],
                line,
                item(""),
                &fm[kl.line.end..]
            )
        }
        Some(_) => return Err(malformed(
            path,
            "history must be a block list (`history:` followed by `- ...` items) to append to it",
        )),
        None => yamltext::insert_at(fm, fm.len(), &format!("history:{eol}{}", item(""))),
    };
    let out = format!(
        "{}{}{}",
        &text[..fm_range.start],
        new_fm,
        &text[fm_range.end..]
    );
    // Re-parse: the edit must leave valid YAML with one more history item.
    let check: Value = yamltext::parse_value(&new_fm).map_err(|e| {
        malformed(
            path,
            format!(
                "appending history would break the YAML: {}",
                first_line(&e.to_string())
            ),
        )
    })?;
    if check.get("history").and_then(Value::as_array).is_none() {
        return Err(malformed(path, "history is not a list after appending"));
    }
    Ok(out)
}

/// A body activity-log line as spec-kitty writes it:
/// `- 2026-02-07T08:34:22Z – agent – shell_pid=123 – lane=doing – note`.
pub fn activity_line(ts: &str, agent: &str, shell_pid: &str, lane: &str, note: &str) -> String {
    let note: String = note
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let shell = if shell_pid.is_empty() {
        String::new()
    } else {
        format!("shell_pid={shell_pid} – ")
    };
    format!("- {ts} – {agent} – {shell}lane={lane} – {}", note.trim())
}

/// Inserts `line` into the body's `## Activity Log` section of `text`:
/// after the last entry line (`- <timestamp>...`) or, with none, after the
/// section's last non-blank line. Creates the section at the end if absent.
pub fn append_activity(text: &str, line: &str) -> String {
    let body_start = split(text).map_or(0, |(_, b)| b);
    let eol = yamltext::line_ending(text);
    let body = &text[body_start..];
    let mut section: Option<(usize, usize)> = None; // (start of heading line, end of section)
    let mut last_entry: Option<usize> = None;
    let mut last_content: Option<usize> = None;
    for r in yamltext::lines(body) {
        let l = body[r.clone()].trim_end();
        match section {
            None if l.trim_end() == "## Activity Log" => {
                section = Some((r.start, body.len()));
                last_content = Some(r.end);
            }
            None => {}
            Some((s, _)) => {
                if l.starts_with("## ") || l == "##" {
                    section = Some((s, r.start));
                    break;
                }
                if !l.trim().is_empty() {
                    last_content = Some(r.end);
                }
                let t = l.trim_start();
                if t.starts_with("- ") && t[2..].starts_with(|c: char| c.is_ascii_digit()) {
                    last_entry = Some(r.end);
                }
            }
        }
    }
    let entry = format!("{line}{eol}");
    match (section, last_entry.or(last_content)) {
        (Some(_), Some(at)) => yamltext::insert_at(text, body_start + at, &entry),
        _ => {
            let mut out = text.to_string();
            if !out.ends_with('\n') {
                out.push_str(eol);
            }
            if !out.ends_with(&format!("{eol}{eol}")) {
                out.push_str(eol);
            }
            out.push_str(&format!("## Activity Log{eol}{eol}{entry}"));
            out
        }
    }
}

/// `2026-02-07T08:34:22Z`: the seconds-precision UTC form spec-kitty uses
/// in WP files.
pub fn file_timestamp() -> String {
    let t = spec_kitty_protocol::time::now_utc();
    format!("{}Z", &t[..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "---\nwork_package_id: WP01\ntitle: Demo\nlane: \"planned\"  # set by tools\ndependencies: []\nhistory:\n  - timestamp: '2026-02-07T00:00:00Z'\n    lane: planned\n    agent: system\n    shell_pid: ''\n    action: Prompt generated\n---\n\n# Body\n\n## Activity Log\n\n- 2026-02-07T00:00:00Z – system – lane=planned – Prompt created.\n\n## Next\n";

    fn wp(text: &str) -> WpFile {
        WpFile::parse(Path::new("WP01-demo.md"), text.to_string()).unwrap()
    }

    #[test]
    fn reads_lane_and_round_trips_lane_edit() {
        let w = wp(DOC);
        assert_eq!(w.meta.lane, Lane::Planned);
        let moved = set_lane(&w, "doing");
        assert!(moved.contains("lane: \"doing\"  # set by tools\n"));
        let back = set_lane(&wp(&moved), "planned");
        assert_eq!(back, DOC);
    }

    #[test]
    fn history_appends_in_list_indentation() {
        let e = HistoryEntry {
            timestamp: "2026-02-08T00:00:00Z".into(),
            lane: "doing".into(),
            agent: "claude".into(),
            shell_pid: String::new(),
            action: "Started: now".into(),
        };
        let out = append_history(Path::new("x"), DOC, &e).unwrap();
        assert!(out.contains("    action: Prompt generated\n  - timestamp: '2026-02-08T00:00:00Z'\n    lane: doing\n    agent: claude\n    shell_pid: ''\n    action: \"Started: now\"\n---\n"), "{out}");
        let w = wp(&out);
        assert_eq!(w.meta.lane, Lane::Planned);
    }

    #[test]
    fn activity_goes_after_last_entry() {
        let out = append_activity(DOC, "- X");
        assert!(out.ends_with("Prompt created.\n- X\n\n## Next\n"), "{out}");
        let none = append_activity("---\na: 1\n---\nbody\n", "- Y");
        assert_eq!(none, "---\na: 1\n---\nbody\n\n## Activity Log\n\n- Y\n");
    }

    #[test]
    fn bad_inputs_are_named() {
        let e = WpFile::parse(Path::new("WP01.md"), "no frontmatter".into()).unwrap_err();
        assert!(e.message.contains("WP01.md"), "{}", e.message);
        let e = WpFile::parse(Path::new("WP01.md"), "---\nlane: review\n---\n".into()).unwrap_err();
        assert!(e.message.contains("unknown lane 'review'"), "{}", e.message);
        let e = WpFile::parse(Path::new("WP01.md"), "---\nlane: [\n---\n".into()).unwrap_err();
        assert!(
            e.message.starts_with("malformed frontmatter in WP01.md"),
            "{}",
            e.message
        );
    }
}

#[cfg(test)]
mod crlf_tests {
    use super::*;

    #[test]
    fn crlf_files_keep_crlf() {
        let doc = DOC_CRLF;
        let w = WpFile::parse(Path::new("WP01.md"), doc.to_string()).unwrap();
        let moved = set_lane(&w, "doing");
        assert!(moved.contains("lane: doing\r\n"));
        let e = HistoryEntry {
            timestamp: "t".into(),
            lane: "doing".into(),
            agent: "a".into(),
            shell_pid: String::new(),
            action: "x".into(),
        };
        let out = append_history(Path::new("WP01.md"), &moved, &e).unwrap();
        assert!(out.contains("  action: x\r\n---\r\n"), "{out:?}");
        assert!(
            !out.replace("\r\n", "").contains('\n'),
            "no bare LF: {out:?}"
        );
        let back = set_lane(
            &WpFile::parse(Path::new("WP01.md"), moved).unwrap(),
            "planned",
        );
        assert_eq!(back, doc);
    }

    const DOC_CRLF: &str = "---\r\nwork_package_id: WP01\r\nlane: planned\r\nhistory:\r\n- timestamp: '1'\r\n  lane: planned\r\n---\r\nbody\r\n";
}

#[cfg(test)]
mod approved_tests {
    use super::*;

    #[test]
    fn approved_reads_as_approved_and_is_kept_as_written() {
        let w = WpFile::parse(Path::new("WP01.md"), "---\nlane: approved\n---\n".into()).unwrap();
        assert_eq!(w.meta.lane, Lane::Approved);
        assert_eq!(w.meta.lane_written, "approved");
    }
}
