//! Reading `tasks.md` and `spec.md` as 2.1.3's finalize does: work-package
//! sections, their "depends on" and "Requirement Refs" lines, and the
//! requirement ids (FR-/NFR-/C-nnn) a spec defines.
//!
//! 2.1.3 does this with regular expressions; these are hand-written
//! scanners for the same patterns (no regex engine to compile at start-up),
//! each documented with the pattern it follows.

use std::collections::BTreeMap;

/// One `## WPnn` section of tasks.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub wp_id: String,
    /// 1-based line of the heading, for messages.
    pub line: usize,
    pub dependencies: Vec<String>,
    pub requirement_refs: Vec<String>,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `WPnn` at the start of `s`.
fn wp_at(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    (b.len() >= 4 && &b[..2] == b"WP" && b[2].is_ascii_digit() && b[3].is_ascii_digit())
        .then(|| &s[..4])
}

/// The WP id a heading line names, by 2.1.3's
/// `^(?:##\s+(?:Work Package\s+)?|###\s+)(WP\d{2})(?:\b|:)`.
fn heading_wp(line: &str) -> Option<&str> {
    let rest = if let Some(r) = line
        .strip_prefix("###")
        .filter(|r| r.starts_with([' ', '\t']))
    {
        r.trim_start_matches([' ', '\t'])
    } else if let Some(r) = line
        .strip_prefix("##")
        .filter(|r| r.starts_with([' ', '\t']))
    {
        let r = r.trim_start_matches([' ', '\t']);
        match r.strip_prefix("Work Package") {
            Some(w) if w.starts_with([' ', '\t']) && wp_at(w.trim_start()).is_some() => {
                w.trim_start()
            }
            _ => r,
        }
    } else {
        return None;
    };
    let id = wp_at(rest)?;
    match rest[4..].chars().next() {
        Some(c) if is_word(c) => None,
        _ => Some(id),
    }
}

/// Every `WPnn` in `s`, in order, without repeats.
fn wp_ids(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, _) in s.match_indices("WP") {
        if let Some(id) = wp_at(&s[i..]) {
            if !out.iter().any(|o| o == id) {
                out.push(id.to_string());
            }
        }
    }
    out
}

/// Requirement ids in `s` (`\b(?:FR|NFR|C)-\d+\b`, any case), upper-cased,
/// in order, without repeats.
pub fn requirement_ids(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let upper = s.to_ascii_uppercase();
    let u = upper.as_bytes();
    for i in 0..u.len() {
        if i > 0 && !s.is_char_boundary(i) {
            continue;
        }
        if i > 0 && s[..i].chars().next_back().is_some_and(is_word) {
            continue;
        }
        let plen = ["NFR-", "FR-", "C-"]
            .iter()
            .find(|p| u[i..].starts_with(p.as_bytes()))
            .map(|p| p.len());
        let Some(plen) = plen else { continue };
        let digits = u[i + plen..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            continue;
        }
        let end = i + plen + digits;
        if s[end..].chars().next().is_some_and(is_word) {
            continue;
        }
        let id = upper[i..end].to_string();
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Finds `word` (ASCII, any case) in `hay` from byte `from`; returns its
/// byte offset.
fn find_ci(hay: &str, word: &str, from: usize) -> Option<usize> {
    let h = hay.as_bytes();
    let w = word.as_bytes();
    (from..h.len().saturating_sub(w.len() - 1)).find(|&i| h[i..i + w.len()].eq_ignore_ascii_case(w))
}

fn skip_ws(s: &str, i: usize) -> usize {
    i + s[i..].len() - s[i..].trim_start().len()
}

/// Does `s` start with the ASCII `pat`, in any case?
fn starts_ci(s: &str, pat: &str) -> bool {
    s.as_bytes()
        .get(..pat.len())
        .is_some_and(|b| b.eq_ignore_ascii_case(pat.as_bytes()))
}

/// The rest of the line after a label at byte `i`: optional `**`, then
/// `\s*:\s*(.+)` as in 2.1.3 (the whitespace after the colon may run onto
/// the next line); `None` when no colon follows or nothing is left.
fn after_colon(s: &str, mut i: usize) -> Option<&str> {
    for _ in 0..2 {
        if s[i..].starts_with('*') {
            i += 1;
        }
    }
    let i = skip_ws(s, i);
    let rest = s[i..].strip_prefix(':')?.trim_start();
    let line = rest.split('\n').next().unwrap_or("");
    (!line.is_empty()).then_some(line)
}

/// Dependencies named in one section: `Depends on WP01, WP02` (also with a
/// colon after "on"), `Dependencies: WP01`, `Dependency: WP01`,
/// `Requires: WP01`.
fn section_deps(text: &str) -> Vec<String> {
    let mut deps: Vec<String> = Vec::new();
    let mut push = |ids: Vec<String>| {
        for id in ids {
            if !deps.contains(&id) {
                deps.push(id);
            }
        }
    };
    let mut from = 0;
    while let Some(i) = find_ci(text, "depend", from) {
        from = i + 6;
        let mut j = i + 6;
        let rest = &text[j..];
        if starts_ci(rest, "encies") || starts_ci(rest, "ency") {
            // "Dependencies:" / "Dependency:"
            let k = if starts_ci(rest, "encies") { 6 } else { 4 };
            if let Some(line) = after_colon(text, j + k) {
                push(wp_ids(line));
            }
            continue;
        }
        if rest.starts_with(['s', 'S']) {
            j += 1;
        }
        let k = skip_ws(text, j);
        if k == j || !starts_ci(&text[k..], "on") {
            continue;
        }
        let mut m = k + 2;
        if text[m..].starts_with(':') {
            m += 1;
        }
        let n = skip_ws(text, m);
        if n == m && !text[k + 2..].starts_with(':') {
            continue;
        }
        // WP\d{2}(?:\s*,\s*WP\d{2})*
        let mut ids = Vec::new();
        let mut p = n;
        while let Some(id) = wp_at(&text[p..]) {
            ids.push(id.to_string());
            let q = skip_ws(text, p + 4);
            if !text[q..].starts_with(',') {
                break;
            }
            let r = skip_ws(text, q + 1);
            if wp_at(&text[r..]).is_none() {
                break;
            }
            p = r;
        }
        push(ids);
    }
    let mut from = 0;
    while let Some(i) = find_ci(text, "requires", from) {
        from = i + 8;
        if text[i + 8..].starts_with(':') {
            push(wp_ids(text[i + 9..].split('\n').next().unwrap_or("")));
        }
    }
    deps
}

/// Requirement refs named in one section: `Requirement Refs: FR-001, C-002`
/// (also `Requirements:`, `**Requirement Refs**:`).
fn section_refs(text: &str) -> Vec<String> {
    let mut refs: Vec<String> = Vec::new();
    let mut from = 0;
    while let Some(i) = find_ci(text, "requirement", from) {
        from = i + 11;
        let mut j = i + 11;
        if text[j..].starts_with(['s', 'S']) {
            j += 1;
        }
        let k = skip_ws(text, j);
        let k = if starts_ci(&text[k..], "refs") {
            k + 4
        } else {
            k
        };
        if let Some(line) = after_colon(text, k) {
            for id in requirement_ids(line) {
                if !refs.contains(&id) {
                    refs.push(id);
                }
            }
        }
    }
    refs
}

/// The work-package sections of tasks.md, in order of appearance (a WP
/// with two sections: the last one counts, as in 2.1.3).
pub fn sections(tasks_md: &str) -> Vec<Section> {
    let mut heads: Vec<(usize, usize, usize, String)> = Vec::new(); // (line start, body start, line no, id)
    let mut pos = 0;
    for (n, line) in tasks_md.split_inclusive('\n').enumerate() {
        if let Some(id) = heading_wp(line) {
            let body = pos + line.find(id).unwrap_or(0) + 4;
            heads.push((pos, body, n + 1, id.to_string()));
        }
        pos += line.len();
    }
    let mut by_id: BTreeMap<String, Section> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (idx, (_, body, line, id)) in heads.iter().enumerate() {
        let end = heads.get(idx + 1).map_or(tasks_md.len(), |h| h.0);
        let text = &tasks_md[*body..end];
        if !order.contains(id) {
            order.push(id.clone());
        }
        by_id.insert(
            id.clone(),
            Section {
                wp_id: id.clone(),
                line: *line,
                dependencies: section_deps(text),
                requirement_refs: section_refs(text),
            },
        );
    }
    order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect()
}

/// 2.1.3's `normalize_requirement_refs_value`: requirement ids found in a
/// frontmatter value (a string or a list of strings), upper-cased.
pub fn normalize_refs(v: Option<&serde_json::Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        for id in requirement_ids(s) {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    };
    match v {
        Some(serde_json::Value::String(s)) => add(s),
        Some(serde_json::Value::Array(a)) => {
            for s in a.iter().filter_map(|x| x.as_str()) {
                add(s)
            }
        }
        _ => {}
    }
    out
}

/// A dependency cycle, as the list of ids around it (first repeated last),
/// or `None`.
pub fn find_cycle(graph: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum C {
        White,
        Gray,
        Black,
    }
    fn dfs(
        n: &str,
        g: &BTreeMap<String, Vec<String>>,
        color: &mut BTreeMap<String, C>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        color.insert(n.to_string(), C::Gray);
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match color.get(m.as_str()).copied().unwrap_or(C::White) {
                C::Gray => {
                    let start = path.iter().position(|p| p == m)?;
                    let mut cyc = path[start..].to_vec();
                    cyc.push(m.clone());
                    return Some(cyc);
                }
                C::White => {
                    if let Some(c) = dfs(m, g, color, path) {
                        return Some(c);
                    }
                }
                C::Black => {}
            }
        }
        path.pop();
        color.insert(n.to_string(), C::Black);
        None
    }
    let mut color = BTreeMap::new();
    for n in graph.keys() {
        if color.get(n.as_str()).copied().unwrap_or(C::White) == C::White {
            if let Some(c) = dfs(n, graph, &mut color, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_deps_and_refs_as_2_1_3_reads_them() {
        let md = "# Tasks\n\n## Work Package WP01: Setup (Priority: P0)\n**Requirement Refs**: FR-001, nfr-002\n\n## Work Package WP02: Core\n**Requirements**: FR-002\n### Dependencies\n- Depends on WP01.\n\n### WP03 - Extra\nDependencies: WP01, WP02\nRequirement Refs:\n  C-001 and FR-0012x FR-3\n## WP044 not a section\nDepends on: WP02\n#### WP05 not a heading either\n";
        let s = sections(md);
        let ids: Vec<&str> = s.iter().map(|x| x.wp_id.as_str()).collect();
        assert_eq!(ids, ["WP01", "WP02", "WP03"]);
        assert_eq!(s[0].requirement_refs, ["FR-001", "NFR-002"]);
        assert!(s[0].dependencies.is_empty());
        assert_eq!(s[1].dependencies, ["WP01"]);
        assert_eq!(s[1].requirement_refs, ["FR-002"]);
        assert_eq!(s[2].line, 11);
        // WP044 is not a heading, so its text belongs to WP03's section.
        assert_eq!(s[2].dependencies, ["WP01", "WP02"]);
        assert_eq!(s[2].requirement_refs, ["C-001", "FR-3"]);
    }

    #[test]
    fn requirement_ids_need_word_boundaries() {
        assert_eq!(
            requirement_ids("FR-001 NFR-2, c-3 ABC-4 FR-5a xFR-6 (FR-7)"),
            ["FR-001", "NFR-2", "C-3", "FR-7"]
        );
        assert_eq!(
            normalize_refs(Some(&serde_json::json!(["fr-1", 3, "NFR-2 FR-1"]))),
            ["FR-1", "NFR-2"]
        );
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        let g: BTreeMap<String, Vec<String>> = [
            ("WP01".to_string(), vec!["WP03".to_string()]),
            ("WP02".to_string(), vec!["WP01".to_string()]),
            ("WP03".to_string(), vec!["WP02".to_string()]),
        ]
        .into();
        assert_eq!(find_cycle(&g).unwrap(), ["WP01", "WP03", "WP02", "WP01"]);
        let g: BTreeMap<String, Vec<String>> =
            [("WP02".to_string(), vec!["WP01".to_string()])].into();
        assert!(find_cycle(&g).is_none());
    }

    proptest::proptest! {
        /// tasks.md is written by agents and people: any text, in any
        /// script, is read without a panic, and every id found is well formed.
        #[test]
        fn any_text_is_read_without_panicking(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("## WP01".to_string()),
                    proptest::strategy::Just("### WP02:".to_string()),
                    proptest::strategy::Just("## Work Package WP03 ".to_string()),
                    proptest::strategy::Just("Depends on ".to_string()),
                    proptest::strategy::Just("depends on: ".to_string()),
                    proptest::strategy::Just("**Dependencies**:".to_string()),
                    proptest::strategy::Just("Requires:".to_string()),
                    proptest::strategy::Just("**Requirement Refs**: ".to_string()),
                    proptest::strategy::Just("FR-1, nfr-22 C-".to_string()),
                    proptest::strategy::Just("WP0".to_string()),
                    proptest::strategy::Just(", ".to_string()),
                    proptest::strategy::Just("\n".to_string()),
                    proptest::strategy::Just("*".to_string()),
                    "\\PC{0,6}",
                ],
                0..40,
            )
        ) {
            let text: String = parts.concat();
            for s in sections(&text) {
                proptest::prop_assert!(wp_at(&s.wp_id).is_some());
                for d in &s.dependencies {
                    proptest::prop_assert!(wp_at(d).is_some() && d.len() == 4);
                }
                for r in &s.requirement_refs {
                    proptest::prop_assert_eq!(requirement_ids(r), vec![r.clone()]);
                }
            }
        }
    }
}
