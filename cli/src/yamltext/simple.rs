//! A reader for the plain YAML that WP frontmatter and `config.yaml` nearly
//! always are, returning the same value as the full parser or nothing.
//!
//! Why: a lane change reads YAML four times or more (the config, the WP,
//! the WP again after its edit, every WP of the feature for the status
//! log's bootstrap). The full parser's first document of a process costs
//! about 0.1 ms of cold code and each later one ~20 µs, a tenth of a
//! command's own work. This reader takes a few microseconds.
//!
//! How it stays right: it accepts only a small subset whose meaning is not
//! in doubt — block mappings and sequences indented with spaces, plain keys,
//! `''`/`""` strings without special escapes, `[]`, `{}`, and plain scalars
//! that are clearly strings, small decimal integers, `null`, `true` or
//! `false` — and gives up (`None`) on anything else: comments after values,
//! block scalars, anchors, tags, flow collections, multi-line scalars,
//! duplicate keys, YAML 1.1 words like `yes`, numbers of any other form.
//! The caller then asks the full parser, so giving up costs only time. A
//! test holds it to the full parser on every document of the corpus and
//! on a list of scalars chosen to sit on each edge.

use serde_json::{Map, Value};

/// One non-blank, non-comment line: its indentation and its content
/// (trailing spaces removed).
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// The document's value, or `None` when it is not in the subset.
pub fn parse(text: &str) -> Option<Value> {
    // Tabs, carriage returns, byte-order marks, control characters and the
    // Unicode line separators each have rules of their own.
    if text.chars().any(|c| {
        c.is_control() && c != '\n'
            || matches!(
                c,
                '\u{feff}' | '\u{fffe}' | '\u{ffff}' | '\u{2028}' | '\u{2029}'
            )
    }) {
        return None;
    }
    let mut lines = Vec::new();
    for raw in text.split('\n') {
        let line = raw.trim_end_matches(' ');
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if content.starts_with("---") || content.starts_with("...") {
            return None;
        }
        lines.push(Line {
            indent: line.len() - content.len(),
            text: content,
        });
    }
    if lines.first()?.indent != 0 {
        return None;
    }
    let mut pos = 0;
    let value = mapping(&mut lines, &mut pos, 0)?;
    (pos == lines.len()).then_some(value)
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// The entries of a block mapping whose keys sit at column `indent`.
fn mapping(lines: &mut [Line<'_>], pos: &mut usize, indent: usize) -> Option<Value> {
    let mut map = Map::new();
    while let Some(&line) = lines.get(*pos) {
        if line.indent < indent || (line.indent == indent && is_item(line.text)) {
            break;
        }
        if line.indent > indent {
            return None;
        }
        let (key, rest) = split_key(line.text)?;
        if map.contains_key(key) {
            return None;
        }
        *pos += 1;
        let value = if rest.is_empty() {
            match lines.get(*pos).copied() {
                Some(next) if next.indent >= indent && is_item(next.text) => {
                    sequence(lines, pos, next.indent)?
                }
                Some(next) if next.indent > indent => mapping(lines, pos, next.indent)?,
                _ => Value::Null,
            }
        } else {
            let v = scalar(rest)?;
            if lines.get(*pos).is_some_and(|next| next.indent > indent) {
                return None; // a continuation line: not in the subset
            }
            v
        };
        map.insert(key.to_string(), value);
    }
    Some(Value::Object(map))
}

/// The items of a block sequence whose `-` sit at column `indent`.
fn sequence(lines: &mut [Line<'_>], pos: &mut usize, indent: usize) -> Option<Value> {
    let mut items = Vec::new();
    while let Some(&line) = lines.get(*pos) {
        if line.indent < indent || (line.indent == indent && !is_item(line.text)) {
            break;
        }
        if line.indent > indent {
            return None;
        }
        let rest = line.text[1..].trim_start_matches(' ');
        if rest.is_empty() || rest.starts_with('-') {
            return None; // a nested block or sequence: not in the subset
        }
        if split_key(rest).is_some() {
            // `- key: value`: a mapping whose first key is on this line and
            // whose other keys line up under it.
            let column = indent + (line.text.len() - rest.len());
            lines[*pos] = Line {
                indent: column,
                text: rest,
            };
            items.push(mapping(lines, pos, column)?);
        } else {
            *pos += 1;
            items.push(scalar(rest)?);
            if lines.get(*pos).is_some_and(|next| next.indent > indent) {
                return None;
            }
        }
    }
    Some(Value::Array(items))
}

/// `key: rest` or `key:` with a plain key of letters, digits, `_` and `-`
/// that is not a word YAML could read as something else.
fn split_key(text: &str) -> Option<(&str, &str)> {
    let colon = text.find(':')?;
    let (key, after) = (&text[..colon], &text[colon + 1..]);
    let plain = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if key.is_empty() || !plain || !key.as_bytes()[0].is_ascii_alphabetic() || special_word(key) {
        return None;
    }
    match after.strip_prefix(' ') {
        Some(rest) => Some((key, rest.trim_start_matches(' '))),
        None if after.is_empty() => Some((key, "")),
        None => None,
    }
}

/// Words some YAML versions read as null or booleans.
fn special_word(s: &str) -> bool {
    const WORDS: [&str; 10] = [
        "null", "true", "false", "yes", "no", "on", "off", "y", "n", "~",
    ];
    WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

/// One scalar on the rest of a line.
fn scalar(s: &str) -> Option<Value> {
    match s {
        "[]" => return Some(Value::Array(Vec::new())),
        "{}" => return Some(Value::Object(Map::new())),
        "null" | "Null" | "NULL" | "~" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    if let Some(body) = s.strip_prefix('\'') {
        return single_quoted(body).map(Value::String);
    }
    if let Some(body) = s.strip_prefix('"') {
        return double_quoted(body).map(Value::String);
    }
    let first = s.as_bytes()[0];
    if b"-?:,[]{}#&*!|>%@`".contains(&first)
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.contains(['[', ']', '{', '}', '\\'])
        || special_word(s)
    {
        return None;
    }
    if first.is_ascii_digit() || first == b'+' || first == b'.' {
        return number_or_uuid(s);
    }
    Some(Value::String(s.to_string()))
}

/// A decimal integer without sign or leading zero, or a UUID (which the
/// config's `project.uuid` is); any other scalar starting with a digit is
/// left to the full parser.
fn number_or_uuid(s: &str) -> Option<Value> {
    if s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0')) {
        return s.parse::<i64>().ok().map(Value::from);
    }
    spec_kitty_protocol::ids::is_uuid(s).then(|| Value::String(s.to_string()))
}

/// The text of `'...'` (`''` is a quote); nothing may follow it.
fn single_quoted(body: &str) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\'' {
            match chars.clone().next() {
                Some('\'') => {
                    chars.next();
                    out.push('\'');
                }
                None => return Some(out),
                Some(_) => return None,
            }
        } else {
            out.push(c);
        }
    }
    None // unterminated
}

/// The text of `"..."` with only `\"` and `\\` escapes; nothing may follow.
fn double_quoted(body: &str) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return chars.next().is_none().then_some(out),
            '\\' => match chars.next()? {
                c @ ('"' | '\\') => out.push(c),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::yamltext::full_parse;
    use serde_json::json;

    /// Where the fast path answers, the full parser gives the same value.
    fn agrees(doc: &str) -> bool {
        match parse(doc) {
            Some(v) => {
                let full = full_parse(doc).unwrap_or_else(|e| {
                    panic!("the fast path read {doc:?} as {v}; the full parser refused it: {e}")
                });
                assert_eq!(v, full, "the two readers disagree on {doc:?}");
                true
            }
            None => false,
        }
    }

    /// Scalars on each edge of the subset, as a mapping value and as a
    /// sequence item: the fast path either agrees or gives up.
    #[test]
    fn every_edge_scalar_is_read_as_the_full_parser_reads_it_or_left_to_it() {
        let scalars = [
            "plain",
            "Plain words here",
            "http://example.com/x",
            "a:b",
            "C#",
            "a, b",
            "with 'quote'",
            "it's",
            "x#y",
            "e",
            "E",
            "inf",
            "nan",
            "NaN",
            ".inf",
            ".nan",
            "-.inf",
            "null",
            "Null",
            "NULL",
            "~",
            "true",
            "True",
            "TRUE",
            "false",
            "FALSE",
            "yes",
            "Yes",
            "no",
            "NO",
            "on",
            "off",
            "y",
            "n",
            "0",
            "7",
            "42",
            "007",
            "0x1f",
            "0o17",
            "1e3",
            "1E3",
            "1.5",
            "-1",
            "+1",
            "1_000",
            "12:30:00",
            "2026-11-30",
            "2026-11-30T03:41:18Z",
            "9223372036854775807",
            "9223372036854775808",
            "b2bfb527-9903-4e2f-8a44-0123456789ab",
            "12345678-1234-1234-1234-123456789012",
            "12345678-1234",
            "''",
            "'single'",
            "'it''s'",
            "'a # b'",
            "'unterminated",
            "'x' trailing",
            "\"\"",
            "\"double\"",
            "\"a \\\" b\"",
            "\"back\\\\slash\"",
            "\"tab\\t\"",
            "\"\\u00e9\"",
            "\"x\" y",
            "[]",
            "{}",
            "[a, b]",
            "{a: 1}",
            "a # c",
            "&anchor x",
            "*alias",
            "!tag x",
            "|",
            ">",
            "|-",
            "%x",
            "@x",
            "`x`",
            "? x",
            "- x",
            "-x",
            "key: value",
            "ends:",
            "ünïcödé",
            "T001",
            "WP01",
            "$$",
            "a  b",
            "lane=planned – x",
        ];
        let mut read = 0;
        for s in scalars {
            for doc in [format!("key: {s}\n"), format!("list:\n- {s}\n- other\n")] {
                read += usize::from(agrees(&doc));
            }
        }
        // The common forms must stay on the fast path.
        for (doc, want) in [
            ("k: plain words\n", json!({"k": "plain words"})),
            ("k: ''\n", json!({"k": ""})),
            ("k: 'it''s'\n", json!({"k": "it's"})),
            ("k: \"planned\"\n", json!({"k": "planned"})),
            ("k: 42\n", json!({"k": 42})),
            ("k: []\n", json!({"k": []})),
            ("k:\n", json!({"k": null})),
            ("k: true\n", json!({"k": true})),
            (
                "k: b2bfb527-9903-4e2f-8a44-0123456789ab\n",
                json!({"k": "b2bfb527-9903-4e2f-8a44-0123456789ab"}),
            ),
        ] {
            assert_eq!(parse(doc), Some(want), "{doc:?}");
        }
        assert!(
            read >= 60,
            "only {read} edge documents stayed on the fast path"
        );
    }

    #[test]
    fn structures_are_read_as_the_full_parser_reads_them() {
        let docs = [
            "work_package_id: WP01\ntitle: T\nhistory:\n- timestamp: '2026-01-01T00:00:00Z'\n  lane: planned\n  shell_pid: ''\n- timestamp: 'x'\n  lane: doing\nsubtasks:\n- T001\n- T002\nagent: ''\n",
            "project:\n  uuid: b2bfb527-9903-4e2f-8a44-0123456789ab\n  slug: demo\nsync:\n  auto_start: false\n",
            "a:\n  - p\n  - q\nb: 1\n",
            "a:\n- b:\n  - c\n  d: e\n",
            "a:\n  b:\n    c: d\n  e: f\ng: h\n",
            "# comment\na: b\n\n# another\nc: d\n",
            "a: b\n  continued\n",
            "a: b\na: c\n",
            "a:\n- x\n  - y\n",
            "a:\n -x\n",
            "a:\n  b: c\n d: e\n",
            "- a\n- b\n",
            "  a: b\n",
            "a: b # comment\n",
            "a: |\n  text\n",
            "a: &x b\nc: *x\n",
            "a:\tb\n",
            "a: b\r\n",
            "---\na: b\n",
            "a: b\n...\n",
            "'quoted key': x\n",
            "1: x\n",
            "yes: x\n",
            "a:\n-\n  b: c\n",
            "a:\n- - x\n",
            "a: \u{7}\n",
            "\u{feff}a: b\n",
        ];
        let read = docs.iter().filter(|d| agrees(d)).count();
        assert!(
            read >= 6,
            "only {read} structure documents stayed on the fast path"
        );
        assert_eq!(
            parse("a: b\na: c\n"),
            None,
            "duplicate keys are the full parser's call"
        );
        assert_eq!(parse("a: b\n  continued\n"), None, "multi-line scalars too");
    }
}
