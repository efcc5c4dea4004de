//! Reading YAML, and surgical, line-based edits of YAML text.
//!
//! `.kittify/config.yaml` and work-package frontmatter belong partly to
//! other tools and to people: comments, key order, quoting and unknown keys
//! must survive our writes byte-for-byte. Re-serialising a parsed document
//! cannot promise that, so we *read* with a real YAML parser (serde-saphyr,
//! or for the plain documents these nearly always are, [`simple`], which
//! gives the same value or none) and *write* by editing only the lines we
//! own, located here. Every edit is re-parsed by the caller before it is
//! written, so a mistake here shows up as a refused write, never as a
//! corrupted file.
//!
//! Scope: top-level keys at column 0 and the block under them, which is all
//! these files use for the keys we touch.

use std::ops::Range;

pub mod simple;

/// Parses a YAML document into a value: through [`simple`] when the text is
/// in its small subset (a few microseconds), else with serde-saphyr under a
/// resource budget scaled to the input.
///
/// The budget exists so that a small file cannot make the parser do a huge
/// amount of work (alias bombs, absurd nesting). Its fixed node cap (250 000)
/// also refused honest large files: a WP whose `history:` grew past about
/// 22 000 entries could never be read, so never moved again. Here the node
/// and event caps grow with the text (one node and four events per byte, at
/// least the defaults), which keeps the work linear in the file's size;
/// every other limit (aliases, depth, anchors) stays at its default.
pub fn parse_value(text: &str) -> Result<serde_json::Value, serde_saphyr::Error> {
    if let Some(v) = simple::parse(text) {
        return Ok(v);
    }
    full_parse(text)
}

/// [`parse_value`] without the fast path.
pub fn full_parse(text: &str) -> Result<serde_json::Value, serde_saphyr::Error> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(text.len());
    budget.max_events = budget.max_events.max(text.len().saturating_mul(4));
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    serde_saphyr::from_str_with_options(text, options)
}

/// The line ending a text uses (`\r\n` when its first line has one).
pub fn line_ending(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if i > 0 && text.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// Byte ranges of the lines of `text`, each including its line terminator.
pub fn lines(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= text.len() {
            return None;
        }
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
        let r = pos..end;
        pos = end;
        Some(r)
    })
}

fn strip_eol(line: &str) -> &str {
    line.trim_end_matches('\n').trim_end_matches('\r')
}

/// A top-level `key: value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLine {
    /// The whole line, terminator included.
    pub line: Range<usize>,
    /// The scalar value as written (quotes included), empty when none.
    pub value: Range<usize>,
    /// How the value is quoted.
    pub quote: Quote,
}

/// Quoting style of a scalar on a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    Plain,
    Single,
    Double,
}

impl KeyLine {
    /// The value without its quotes (escapes left as written).
    pub fn inner<'a>(&self, text: &'a str) -> &'a str {
        let v = &text[self.value.clone()];
        match self.quote {
            Quote::Plain => v,
            _ => &v[1..v.len() - 1],
        }
    }
}

/// Finds the top-level line `key:` (column 0). The key may not be quoted.
/// Lines inside a quoted scalar that spans lines (`title: 'a` … `b'`) are
/// part of that value, never a key, even when one reads `lane: done`.
pub fn find_key(text: &str, key: &str) -> Option<KeyLine> {
    let mut open_quote: Option<u8> = None;
    for r in lines(text) {
        let line = &text[r.clone()];
        if let Some(q) = open_quote {
            if closes_quote(strip_eol(line), q) {
                open_quote = None;
            }
            continue;
        }
        let Some(rest) = line.strip_prefix(key) else {
            open_quote = opens_quote(strip_eol(line));
            continue;
        };
        let Some(after) = rest.strip_prefix(':') else {
            continue;
        };
        let body = strip_eol(after);
        if !(body.is_empty() || body.starts_with([' ', '\t'])) {
            open_quote = opens_quote(strip_eol(line));
            continue;
        }
        let value_start = r.start + key.len() + 1 + (body.len() - body.trim_start().len());
        let v = body.trim_start();
        let (len, quote) = scalar_extent(v);
        return Some(KeyLine {
            line: r,
            value: value_start..value_start + len,
            quote,
        });
    }
    None
}

/// The quote a `key: 'value…` line leaves open at its end, if any.
fn opens_quote(line: &str) -> Option<u8> {
    let (_, value) = line.split_once(": ")?;
    let v = value.trim_start();
    let q = *v.as_bytes().first()?;
    if q != b'\'' && q != b'"' {
        return None;
    }
    // scalar_extent reports an unterminated quote as a plain scalar.
    (scalar_extent(v).1 == Quote::Plain).then_some(q)
}

/// Whether `line`, inside a scalar quoted with `q`, holds its closing quote.
fn closes_quote(line: &str, q: u8) -> bool {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if q == b'"' => i += 2,
            c if c == q => {
                if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                return true;
            }
            _ => i += 1,
        }
    }
    false
}

/// Length of the scalar at the start of `v` (up to a closing quote, or up
/// to a ` #` comment / end of line for plain scalars, trailing blanks
/// excluded) and its quoting.
fn scalar_extent(v: &str) -> (usize, Quote) {
    let b = v.as_bytes();
    match b.first() {
        Some(b'"') => {
            let mut i = 1;
            while i < b.len() {
                match b[i] {
                    b'\\' => i += 2,
                    b'"' => return (i + 1, Quote::Double),
                    _ => i += 1,
                }
            }
            (b.len(), Quote::Plain)
        }
        Some(b'\'') => {
            let mut i = 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return (i + 1, Quote::Single);
                }
                i += 1;
            }
            (b.len(), Quote::Plain)
        }
        _ => {
            let mut end = b.len();
            for i in 0..b.len() {
                if b[i] == b'#' && i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t') {
                    end = i;
                    break;
                }
            }
            (v[..end].trim_end().len(), Quote::Plain)
        }
    }
}

/// Replaces the scalar value of `kl` with `new_inner`, keeping the quote
/// style (so a value moved and moved back restores the line exactly).
pub fn replace_value(text: &str, kl: &KeyLine, new_inner: &str) -> String {
    let written = match kl.quote {
        Quote::Plain => new_inner.to_string(),
        Quote::Single => format!("'{}'", new_inner.replace('\'', "''")),
        Quote::Double => format!(
            "\"{}\"",
            new_inner.replace('\\', "\\\\").replace('"', "\\\"")
        ),
    };
    let mut out = String::with_capacity(text.len() + written.len());
    if kl.value.is_empty() {
        // `key:` with nothing after it: add one space before the value.
        out.push_str(&text[..kl.value.start]);
        if !text[..kl.value.start].ends_with([' ', '\t']) {
            out.push(' ');
        }
    } else {
        out.push_str(&text[..kl.value.start]);
    }
    out.push_str(&written);
    out.push_str(&text[kl.value.end..]);
    out
}

/// Is this line a document marker (`---` or `...`)?
fn is_doc_marker(line: &str) -> bool {
    let l = strip_eol(line);
    l == "---" || l == "..." || l.starts_with("--- ")
}

/// The byte offset just after the last content line of the block under the
/// top-level key on `key_line` (indented lines, and `- ` items at column 0
/// for a block sequence). Blank and comment lines after the last content
/// line are not part of the block, so new lines go right after the content.
pub fn block_end(text: &str, key_line: &Range<usize>) -> usize {
    let mut last = key_line.end;
    for r in lines(&text[key_line.end..]) {
        let r = r.start + key_line.end..r.end + key_line.end;
        let line = &text[r.clone()];
        let content = strip_eol(line);
        if content.trim().is_empty() {
            continue;
        }
        if is_doc_marker(line) {
            break;
        }
        if content.starts_with([' ', '\t']) {
            if !content.trim_start().starts_with('#') {
                last = r.end;
            }
            continue;
        }
        if content.starts_with('#') {
            continue;
        }
        if content == "-" || content.starts_with("- ") {
            last = r.end;
            continue;
        }
        break;
    }
    last
}

/// The indentation (as written) of the first content line of the block
/// under `key_line`, or `None` if the block is empty.
pub fn block_indent<'a>(text: &'a str, key_line: &Range<usize>) -> Option<&'a str> {
    let end = block_end(text, key_line);
    for r in lines(&text[key_line.end..end]) {
        let line = &text[key_line.end + r.start..key_line.end + r.end];
        let content = strip_eol(line);
        if content.trim().is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        let n = content.len() - content.trim_start_matches([' ', '\t']).len();
        return Some(&content[..n]);
    }
    None
}

/// Inserts `new_text` at byte `at`, making sure it starts on a fresh line.
pub fn insert_at(text: &str, at: usize, new_text: &str) -> String {
    let mut out = String::with_capacity(text.len() + new_text.len() + 2);
    out.push_str(&text[..at]);
    if at > 0 && !text[..at].ends_with('\n') {
        out.push_str(line_ending(text));
    }
    out.push_str(new_text);
    out.push_str(&text[at..]);
    out
}

/// Writes `s` as a YAML scalar: plain when that reads back as the same
/// string, else double-quoted (JSON escaping is valid YAML).
pub fn scalar(s: &str) -> String {
    if plain_safe(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("strings serialise")
    }
}

fn plain_safe(s: &str) -> bool {
    if s.is_empty() || s != s.trim() {
        return false;
    }
    let first = s.as_bytes()[0];
    if b"-?:,[]{}#&*!|>'\"%@`".contains(&first) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.contains(['\n', '\r', '\t']) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n"
    ) {
        return false;
    }
    // Anything that looks numeric (ints, floats, exponents, hex, dates).
    let numeric_ish = s
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-._:eExXoO".contains(&b))
        && s.bytes().any(|b| b.is_ascii_digit());
    !numeric_ish && !s.starts_with('.')
}

/// `text` (a YAML mapping) with the top-level `key` set to `value`, which
/// is already YAML: one line (`[]`, `main`, `"a b"`) or a block sequence
/// given as lines starting with a newline (`"\n- FR-001\n- FR-002"`).
/// The key's old line and block are replaced (a trailing `# comment` on the
/// line is kept for a one-line value); a missing key is inserted after the
/// block of whichever of `after` comes last in the text, else at the end.
/// Every other line stays byte for byte.
pub fn set_key(text: &str, key: &str, value: &str, after: &[&str]) -> String {
    let eol = line_ending(text);
    let block = value.starts_with('\n');
    let render = |comment: &str| {
        if block {
            format!("{key}:{}{eol}", value.replace('\n', eol))
        } else {
            format!("{key}: {value}{comment}{eol}")
        }
    };
    if let Some(kl) = find_key(text, key) {
        let line = strip_eol(&text[kl.line.clone()]);
        let rest = &line[(kl.value.end - kl.line.start).min(line.len())..];
        let comment = if rest.trim_start().starts_with('#') && !rest.trim().is_empty() {
            rest
        } else {
            ""
        };
        let end = block_end(text, &kl.line);
        return format!(
            "{}{}{}",
            &text[..kl.line.start],
            render(comment),
            &text[end..]
        );
    }
    let at = after
        .iter()
        .filter_map(|k| find_key(text, k).map(|kl| block_end(text, &kl.line)))
        .max()
        .unwrap_or(text.len());
    insert_at(text, at, &render(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_line_inside_a_multi_line_quoted_value_is_not_the_key() {
        // Found by the frontmatter property test: the title's second line
        // reads like a lane, the real lane comes after the value closes.
        for (text, want) in [
            ("title: 'multi\nlane: done # c\n  line'\n", None),
            ("title: 'it''s\nlane: x'\nlane: planned\n", Some("planned")),
            ("title: \"a \\\" b\nlane: x\"\nlane: doing\n", Some("doing")),
            ("title: 'one line'\nlane: for_review\n", Some("for_review")),
        ] {
            let got = find_key(text, "lane").map(|k| k.inner(text).to_string());
            assert_eq!(got.as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn finds_and_replaces_all_quote_styles_with_comments() {
        for (src, want) in [
            ("lane: \"done\"\n", "lane: \"doing\"\n"),
            ("lane: done\n", "lane: doing\n"),
            ("lane: 'done'  # moved\n", "lane: 'doing'  # moved\n"),
            ("lane: done # c\r\n", "lane: doing # c\r\n"),
            ("lane:\n", "lane: doing\n"),
        ] {
            let text = format!("a: 1\n{src}b: 2\n");
            let kl = find_key(&text, "lane").unwrap();
            let out = replace_value(&text, &kl, "doing");
            assert_eq!(out, format!("a: 1\n{want}b: 2\n"));
        }
        assert!(find_key("lanes: x\n", "lane").is_none());
        assert!(find_key("  lane: x\n", "lane").is_none());
    }

    #[test]
    fn block_end_skips_trailing_blanks_and_stops_at_next_key() {
        let text = "history:\n- a: 1\n  b: 2\n\n# c\nnext: 3\n";
        let kl = find_key(text, "history").unwrap();
        assert_eq!(
            &text[..block_end(text, &kl.line)],
            "history:\n- a: 1\n  b: 2\n"
        );
        assert_eq!(block_indent(text, &kl.line), Some(""));
        let t2 = "project:\n    uuid: x\nsync: {}\n";
        let kl = find_key(t2, "project").unwrap();
        assert_eq!(block_indent(t2, &kl.line), Some("    "));
    }

    #[test]
    fn scalars_quote_only_when_needed() {
        assert_eq!(scalar("my-project"), "my-project");
        assert_eq!(scalar("Fix: things"), "\"Fix: things\"");
        assert_eq!(scalar("123456789012"), "\"123456789012\"");
        assert_eq!(scalar("12e456789012"), "\"12e456789012\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("it's"), "it's");
        assert_eq!(scalar("'x"), "\"'x\"");
    }

    #[test]
    fn set_key_replaces_blocks_keeps_comments_and_inserts_in_order() {
        let t = "a: 1\ndeps:\n- WP01\n- WP02\nb: x  # note\nc: 3\n";
        assert_eq!(
            set_key(t, "deps", "[]", &[]),
            "a: 1\ndeps: []\nb: x  # note\nc: 3\n"
        );
        assert_eq!(
            set_key(t, "b", "\"y z\"", &[]),
            "a: 1\ndeps:\n- WP01\n- WP02\nb: \"y z\"  # note\nc: 3\n"
        );
        assert_eq!(
            set_key(t, "refs", "\n- FR-001", &["a", "deps"]),
            "a: 1\ndeps:\n- WP01\n- WP02\nrefs:\n- FR-001\nb: x  # note\nc: 3\n"
        );
        assert_eq!(set_key("a: 1\r\n", "z", "2", &["q"]), "a: 1\r\nz: 2\r\n");
    }
}
