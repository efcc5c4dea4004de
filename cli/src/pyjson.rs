//! JSON text exactly as Python's `json.dumps` writes it.
//!
//! spec-kitty 2.1.3 writes its status files with `json.dumps`: the event log
//! one line per event with `sort_keys=True` (separators `", "` and `": "`,
//! non-ASCII escaped), `status.json` with `sort_keys=True, indent=2,
//! ensure_ascii=False`. Files that both CLIs write must not churn in git
//! when the other CLI rewrites them, so we reproduce those bytes rather than
//! serde_json's compact form: key order by code point, Python's separators,
//! its string escapes (`\u00e9`, surrogate pairs, `\u007f` only when
//! escaping non-ASCII) and its float `repr` (`1e-05`, `1e+16`, `2.0`).

use serde_json::Value;

/// How to lay the text out; the two forms 2.1.3 uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `json.dumps(v, sort_keys=True)`: one line, ASCII only.
    Line,
    /// `json.dumps(v, sort_keys=True, indent=2, ensure_ascii=False)`.
    Pretty,
}

/// `value` as Python's `json.dumps` would write it in `style` (no trailing
/// newline).
pub fn dumps(value: &Value, style: Style) -> String {
    let mut out = String::new();
    write_value(&mut out, value, style, 0);
    out
}

/// A JSON value as Python's `str()` shows it (`True`, `None`, strings
/// bare), for messages and fields 2.1.3 builds with `str(value)`.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn write_value(out: &mut String, value: &Value, style: Style, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                out.push_str(&float_repr(f));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => write_str(out, s, style == Style::Line),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separate(out, style, depth + 1, i == 0);
                write_value(out, item, style, depth + 1);
            }
            close(out, style, depth, ']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut keys: Vec<&String> = map.keys().collect();
            // Python sorts str keys by code point; UTF-8 byte order is the same.
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                separate(out, style, depth + 1, i == 0);
                write_str(out, key, style == Style::Line);
                out.push_str(": ");
                write_value(out, &map[key], style, depth + 1);
            }
            close(out, style, depth, '}');
        }
    }
}

/// The text before an item: `, ` between items on one line; a newline and
/// indent (after `,` between items) when pretty.
fn separate(out: &mut String, style: Style, depth: usize, first: bool) {
    match style {
        Style::Line if !first => out.push_str(", "),
        Style::Line => {}
        Style::Pretty => {
            if !first {
                out.push(',');
            }
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        }
    }
}

fn close(out: &mut String, style: Style, depth: usize, bracket: char) {
    if style == Style::Pretty {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    }
    out.push(bracket);
}

fn write_str(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => push_u16(out, c as u16),
            // With ensure_ascii, everything outside ' '..='~' is escaped.
            c if ascii && !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_u16(out, *unit);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_u16(out: &mut String, unit: u16) {
    out.push_str(&format!("\\u{unit:04x}"));
}

/// Python's `float.__repr__`: the shortest digits that round-trip (as
/// Rust's), written positionally for exponents in -4..16 and as `1e-05` /
/// `1.5e+16` otherwise; integral values keep a `.0`.
fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sci = format!("{f:e}"); // e.g. "-1.2345e17", "1e-5", "0e0"
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    if (-4..16).contains(&exp) {
        let s = format!("{f}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn line_style_matches_python_defaults() {
        let v = json!({"b": 1, "a": [true, null, "x"], "é": "\u{7f}é😀\n\"q\""});
        assert_eq!(
            dumps(&v, Style::Line),
            r#"{"a": [true, null, "x"], "b": 1, "\u00e9": "\u007f\u00e9\ud83d\ude00\n\"q\""}"#
        );
    }

    #[test]
    fn pretty_style_matches_indent_2_without_ascii_escaping() {
        let v = json!({"b": {}, "a": [], "c": {"z": "é", "y": [1, 2]}});
        assert_eq!(
            dumps(&v, Style::Pretty),
            "{\n  \"a\": [],\n  \"b\": {},\n  \"c\": {\n    \"y\": [\n      1,\n      2\n    ],\n    \"z\": \"é\"\n  }\n}"
        );
    }

    #[test]
    fn floats_use_python_repr() {
        let cases = [
            (1.5, "1.5"),
            (2.0, "2.0"),
            (1e16, "1e+16"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (1e300, "1e+300"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1234567890123456.0, "1234567890123456.0"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(f), want, "{f}");
        }
    }
}
