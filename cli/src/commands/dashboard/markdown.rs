//! A small Markdown-to-HTML renderer for the dashboard's spec, plan and
//! tasks views: headings, paragraphs, lists (with task boxes), fenced code,
//! block quotes, tables, rules, and inline code, bold, italic and links.
//!
//! Readable, not complete: whatever it does not understand is shown as
//! text. Every byte of the document is HTML-escaped before any tag is
//! added, and a link's target is kept only when it is http(s), a fragment
//! or a relative path, so a document cannot inject markup or script into
//! the page.

pub use spec_kitty_protocol::html::escape;

/// Renders a Markdown document (a leading YAML frontmatter block is shown
/// as code, not parsed).
pub fn to_html(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    if lines.first().is_some_and(|l| l.trim_end() == "---") {
        if let Some(end) = lines[1..].iter().position(|l| l.trim_end() == "---") {
            out.push_str("<pre class=\"frontmatter\"><code>");
            out.push_str(&escape(&lines[1..=end].join("\n")));
            out.push_str("</code></pre>\n");
            i = end + 2;
        }
    }
    let mut para: Vec<&str> = Vec::new();
    let flush = |para: &mut Vec<&str>, out: &mut String| {
        if !para.is_empty() {
            out.push_str("<p>");
            out.push_str(&inline(&para.join(" ")));
            out.push_str("</p>\n");
            para.clear();
        }
    };
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        if t.is_empty() {
            flush(&mut para, &mut out);
            i += 1;
        } else if let Some(fence) = ["```", "~~~"].iter().find(|f| t.starts_with(**f)) {
            flush(&mut para, &mut out);
            let lang = t[fence.len()..].trim();
            let mut j = i + 1;
            while j < lines.len() && !lines[j].trim_start().starts_with(fence) {
                j += 1;
            }
            out.push_str(&format!("<pre data-lang=\"{}\"><code>", escape(lang)));
            out.push_str(&escape(&lines[i + 1..j.min(lines.len())].join("\n")));
            out.push_str("</code></pre>\n");
            i = j + 1;
        } else if let Some(level) = heading_level(t) {
            flush(&mut para, &mut out);
            let body = t[level..].trim().trim_end_matches('#').trim();
            out.push_str(&format!("<h{level}>{}</h{level}>\n", inline(body)));
            i += 1;
        } else if is_rule(t) {
            flush(&mut para, &mut out);
            out.push_str("<hr>\n");
            i += 1;
        } else if t.starts_with('>') {
            flush(&mut para, &mut out);
            let mut quoted = Vec::new();
            while i < lines.len() && lines[i].trim_start().starts_with('>') {
                let q = lines[i].trim_start()[1..]
                    .strip_prefix(' ')
                    .unwrap_or(&lines[i].trim_start()[1..]);
                quoted.push(q);
                i += 1;
            }
            out.push_str("<blockquote>");
            out.push_str(&to_html(&quoted.join("\n")));
            out.push_str("</blockquote>\n");
        } else if t.starts_with('|') {
            flush(&mut para, &mut out);
            let mut rows = Vec::new();
            while i < lines.len() && lines[i].trim().starts_with('|') {
                rows.push(lines[i].trim());
                i += 1;
            }
            out.push_str(&table(&rows));
        } else if list_item(line).is_some() {
            flush(&mut para, &mut out);
            i = list(&lines, i, &mut out);
        } else {
            para.push(t);
            i += 1;
        }
    }
    flush(&mut para, &mut out);
    out
}

fn heading_level(t: &str) -> Option<usize> {
    let n = t.bytes().take_while(|b| *b == b'#').count();
    ((1..=6).contains(&n) && t[n..].starts_with(' ')).then_some(n)
}

fn is_rule(t: &str) -> bool {
    let c = t.chars().next().unwrap_or(' ');
    matches!(c, '-' | '*' | '_')
        && t.chars().filter(|x| !x.is_whitespace()).all(|x| x == c)
        && t.chars().filter(|x| *x == c).count() >= 3
}

/// `(indent, ordered, text)` of a list item line.
fn list_item(line: &str) -> Option<(usize, bool, &str)> {
    let indent = line.len() - line.trim_start().len();
    let t = line.trim_start();
    for m in ["- ", "* ", "+ "] {
        if let Some(rest) = t.strip_prefix(m) {
            return Some((indent, false, rest));
        }
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits < 10 {
        let rest = &t[digits..];
        if let Some(r) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some((indent, true, r));
        }
    }
    None
}

/// Renders the list starting at line `i` (nested by indentation); returns
/// the first line after it.
fn list(lines: &[&str], mut i: usize, out: &mut String) -> usize {
    let Some((indent, ordered, _)) = list_item(lines[i]) else {
        return i + 1;
    };
    let tag = if ordered { "ol" } else { "ul" };
    out.push_str(&format!("<{tag}>\n"));
    while i < lines.len() {
        match list_item(lines[i]) {
            Some((ind, _, text)) if ind == indent => {
                out.push_str("<li>");
                let (boxed, rest) = task_box(text);
                out.push_str(boxed);
                out.push_str(&inline(rest));
                i += 1;
                // Continuation lines and nested lists belong to this item.
                while i < lines.len() {
                    let l = lines[i];
                    match list_item(l) {
                        Some((ind2, _, _)) if ind2 > indent => i = list(lines, i, out),
                        None if !l.trim().is_empty() && l.len() - l.trim_start().len() > indent => {
                            out.push(' ');
                            out.push_str(&inline(l.trim()));
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push_str("</li>\n");
            }
            _ => break,
        }
    }
    out.push_str(&format!("</{tag}>\n"));
    i
}

fn task_box(text: &str) -> (&'static str, &str) {
    if let Some(r) = text.strip_prefix("[ ] ") {
        ("<input type=\"checkbox\" disabled> ", r)
    } else if let Some(r) = text
        .strip_prefix("[x] ")
        .or_else(|| text.strip_prefix("[X] "))
    {
        ("<input type=\"checkbox\" checked disabled> ", r)
    } else {
        ("", text)
    }
}

fn table(rows: &[&str]) -> String {
    let cells = |r: &str| -> Vec<String> {
        let inner = r.trim().trim_start_matches('|').trim_end_matches('|');
        inner.split('|').map(|c| inline(c.trim())).collect()
    };
    let is_sep = |r: &str| r.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ' | '\t'));
    let mut out = String::from("<table>\n");
    let mut head = rows.len() > 1 && is_sep(rows[1]);
    for r in rows {
        if is_sep(r) {
            continue;
        }
        let tag = if head { "th" } else { "td" };
        out.push_str("<tr>");
        for c in cells(r) {
            out.push_str(&format!("<{tag}>{c}</{tag}>"));
        }
        out.push_str("</tr>\n");
        head = false;
    }
    out.push_str("</table>\n");
    out
}

/// Inline markup of one (unescaped) line: code spans first (their content
/// is literal), then links, bold and italic on the escaped rest.
pub fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some(start) = rest.find('`') {
        let Some(len) = rest[start + 1..].find('`') else {
            break;
        };
        out.push_str(&emphasis(&rest[..start]));
        out.push_str("<code>");
        out.push_str(&escape(&rest[start + 1..start + 1 + len]));
        out.push_str("</code>");
        rest = &rest[start + 2 + len..];
    }
    out.push_str(&emphasis(rest));
    out
}

/// Links `[text](url)`, `**bold**`, `__bold__` and `*italic*` on raw text.
fn emphasis(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let parsed = after.find("](").and_then(|close| {
            let url_part = &after[close + 2..];
            url_part
                .find(')')
                .map(|end| (&after[..close], &url_part[..end], close + 2 + end + 1))
        });
        match parsed {
            Some((text, url, used)) => {
                out.push_str(&styles(&rest[..open]));
                let url = url.trim();
                if safe_url(url) {
                    out.push_str(&format!(
                        "<a href=\"{}\" rel=\"noopener noreferrer\" target=\"_blank\">{}</a>",
                        escape(url),
                        styles(text)
                    ));
                } else {
                    out.push_str(&styles(text));
                }
                rest = &rest[open + 1 + used..];
            }
            None => {
                out.push_str(&styles(&rest[..=open]));
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(&styles(rest));
    out
}

fn safe_url(u: &str) -> bool {
    let lower = u.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with('#') {
        return true;
    }
    // Relative: no scheme at all (nothing like `javascript:` before a slash).
    !u.split('/').next().unwrap_or("").contains(':')
}

/// Bold and italic on raw text, escaping everything else.
fn styles(s: &str) -> String {
    let e = escape(s);
    let e = pairs(&e, "**", "<strong>", "</strong>");
    let e = pairs(&e, "__", "<strong>", "</strong>");
    pairs(&e, "*", "<em>", "</em>")
}

/// Replaces balanced `mark…mark` pairs (non-empty, not space-padded).
fn pairs(s: &str, mark: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(a) = rest.find(mark) {
        let after = &rest[a + mark.len()..];
        match after.find(mark) {
            Some(b) if b > 0 && !after.starts_with(' ') && !after[..b].ends_with(' ') => {
                out.push_str(&rest[..a]);
                out.push_str(open);
                out.push_str(&after[..b]);
                out.push_str(close);
                rest = &after[b + mark.len()..];
            }
            _ => {
                out.push_str(&rest[..a + mark.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_render_and_everything_is_escaped() {
        let md = "# Title <b>\n\nSome **bold** and `<code>` and *it*.\n\n- [ ] T001 do\n- [x] T002 done\n  - nested\n\n1. one\n2. two\n\n```bash\necho \"<x>\"\n```\n\n| a | b |\n|---|---|\n| 1 | <2> |\n\n> quoted\n\n---\n";
        let html = to_html(md);
        assert!(html.contains("<h1>Title &lt;b&gt;</h1>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("<code>&lt;code&gt;</code>"), "{html}");
        assert!(html.contains("<em>it</em>"), "{html}");
        assert!(
            html.contains("<input type=\"checkbox\" disabled> T001 do"),
            "{html}"
        );
        assert!(
            html.contains("<input type=\"checkbox\" checked disabled> T002 done"),
            "{html}"
        );
        assert!(html.contains("<ul>\n<li>nested</li>"), "{html}");
        assert!(html.contains("<ol>\n<li>one</li>"), "{html}");
        assert!(
            html.contains("<pre data-lang=\"bash\"><code>echo &quot;&lt;x&gt;&quot;</code></pre>"),
            "{html}"
        );
        assert!(html.contains("<th>a</th><th>b</th>"), "{html}");
        assert!(html.contains("<td>&lt;2&gt;</td>"), "{html}");
        assert!(html.contains("<blockquote><p>quoted</p>"), "{html}");
        assert!(html.contains("<hr>"), "{html}");
        assert!(!html.contains("<b>") && !html.contains("<x>"), "{html}");
    }

    #[test]
    fn only_safe_link_targets_become_links() {
        let html = inline("[ok](https://x.test/a?b=1&c=\"2\") [rel](../plan.md) [bad](javascript:alert(1)) [img](data:text/html,<script>)");
        assert!(
            html.contains("<a href=\"https://x.test/a?b=1&amp;c=&quot;2&quot;\""),
            "{html}"
        );
        assert!(html.contains("<a href=\"../plan.md\""), "{html}");
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert!(!html.contains("href=\"data:"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }
}
