//! Features: `kitty-specs/NNN-slug/` directories, which one a command means,
//! their work packages, and their `meta.json`.
//!
//! Detection follows spec-kitty 2.x: `--feature` (full slug or just the
//! number), then `SPECIFY_FEATURE`, then the git branch (`NNN-slug` or a
//! worktree branch `NNN-slug-WPnn`), then the current directory (inside
//! `kitty-specs/NNN-slug/` or `.worktrees/NNN-slug-WPnn/`), then the only
//! feature there is. Anything ambiguous is an error listing the candidates,
//! never a guess.

use crate::error::CliError;
use crate::fsutil;
use crate::project::Project;
use crate::wpfile::WpFile;
use spec_kitty_protocol::envelope::is_wp_id;
use std::fs;
use std::path::{Path, PathBuf};

/// A feature directory.
#[derive(Debug, Clone)]
pub struct Feature {
    pub slug: String,
    pub dir: PathBuf,
    /// The project root: the repository its files must stay inside.
    pub root: PathBuf,
}

impl Feature {
    pub fn tasks_dir(&self) -> PathBuf {
        self.dir.join("tasks")
    }
    pub fn meta_path(&self) -> PathBuf {
        self.dir.join("meta.json")
    }
    /// The three-digit number.
    pub fn number(&self) -> &str {
        &self.slug[..3]
    }
}

fn looks_like_feature(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() > 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b'-'
}

/// All feature slugs, sorted.
pub fn list(project: &Project) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(project.specs_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| looks_like_feature(n))
        .collect();
    out.sort();
    out
}

/// Strips a worktree suffix `-WPnn`.
fn strip_wp_suffix(s: &str) -> &str {
    if s.len() > 5 {
        let (head, tail) = s.split_at(s.len() - 5);
        if tail.starts_with('-') && is_wp_id(&tail[1..]) {
            return head;
        }
    }
    s
}

fn candidates_text(all: &[String]) -> String {
    if all.is_empty() {
        "  (none: kitty-specs/ has no NNN-name feature directories; create one with `spec-kitty specify NAME`)".into()
    } else {
        all.iter()
            .map(|s| format!("  - {s}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Resolves which feature a command acts on.
pub fn detect(
    project: &Project,
    explicit: Option<&str>,
    branch: Option<&str>,
    cwd: &Path,
) -> Result<Feature, CliError> {
    let all = list(project);
    let make = |slug: &str| Feature {
        slug: slug.to_string(),
        dir: project.specs_dir().join(slug),
        root: project.root.clone(),
    };
    let from_env = std::env::var("SPECIFY_FEATURE")
        .ok()
        .filter(|s| !s.trim().is_empty());
    if let Some(wanted) = explicit.map(str::to_string).or(from_env) {
        let wanted = wanted.trim();
        if all.iter().any(|s| s == wanted) {
            return Ok(make(wanted));
        }
        let by_number: Vec<&String> =
            if wanted.len() == 3 && wanted.bytes().all(|b| b.is_ascii_digit()) {
                all.iter()
                    .filter(|s| s.starts_with(&format!("{wanted}-")))
                    .collect()
            } else {
                Vec::new()
            };
        if by_number.len() == 1 {
            return Ok(make(by_number[0]));
        }
        return Err(CliError::invalid(format!(
            "feature '{wanted}' not found in {}; available features:\n{}",
            project.specs_dir().display(),
            candidates_text(&all)
        )));
    }
    if let Some(b) = branch {
        let slug = strip_wp_suffix(b);
        if looks_like_feature(slug) && all.iter().any(|s| s == slug) {
            return Ok(make(slug));
        }
    }
    for dir in cwd.ancestors() {
        let Some(parent) = dir.parent() else { break };
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let parent_name = parent.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if parent_name == "kitty-specs" || parent_name == ".worktrees" {
            let slug = strip_wp_suffix(name);
            if all.iter().any(|s| s == slug) {
                return Ok(make(slug));
            }
        }
    }
    match all.len() {
        1 => Ok(make(&all[0])),
        0 => Err(CliError::invalid(format!(
            "no feature found in {}; create one with `spec-kitty specify NAME`",
            project.specs_dir().display()
        ))),
        _ => Err(CliError::invalid(format!(
            "cannot tell which feature you mean: the branch ({}) and directory do not name one, and there are several. Pass --feature with one of:\n{}",
            branch.unwrap_or("none"),
            candidates_text(&all)
        ))),
    }
}

/// Checks a user-given WP id.
pub fn check_wp_id(id: &str) -> Result<(), CliError> {
    if is_wp_id(id) {
        Ok(())
    } else {
        Err(CliError::invalid(format!(
            "'{id}' is not a work package id: expected WP followed by two digits, e.g. WP01"
        )))
    }
}

/// Does `file_name` belong to work package `wp_id` (`WP01.md`,
/// `WP01-title.md`, `WP01_title.md`; not `WP011-...`)?
fn file_is_wp(file_name: &str, wp_id: &str) -> bool {
    let Some(rest) = file_name.strip_prefix(wp_id) else {
        return false;
    };
    file_name.ends_with(".md") && (rest == ".md" || rest.starts_with(['-', '_', '.']))
}

/// A file named like a work package that cannot be used, and why: a
/// directory, FIFO or socket, a link out of the repository, or (from
/// [`load_wps_lenient`]) text that does not parse.
#[derive(Debug)]
pub struct BadWp {
    pub wp_id: String,
    pub path: PathBuf,
    pub error: CliError,
}

/// Every entry of `tasks/` named like a WP file (`WPnn*.md`), whatever its
/// type, sorted by name; those the link rule refuses are in the second list.
/// Nothing named like a WP file is skipped silently.
fn scan(feature: &Feature) -> Result<(Vec<PathBuf>, Vec<BadWp>), CliError> {
    let dir = feature.tasks_dir();
    fsutil::check_repo_dir(&feature.root, &dir)?;
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(CliError::io_at("read", &dir, &e)),
    };
    let mut named: Vec<(String, PathBuf, bool)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let id = name.get(..4)?;
            // A regular file in a directory inside the repository (checked
            // above) passes the rule as it is; only the rest is resolved.
            let plain = e.file_type().is_ok_and(|t| t.is_file());
            (is_wp_id(id) && file_is_wp(&name, id)).then(|| (id.to_string(), e.path(), plain))
        })
        .collect();
    named.sort_by(|a, b| a.1.cmp(&b.1));
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (wp_id, path, plain) in named {
        if plain {
            good.push(path);
            continue;
        }
        match fsutil::resolve_in_repo(&feature.root, &path) {
            Ok(_) => good.push(path),
            Err(e) => bad.push(BadWp {
                wp_id,
                path,
                error: e.into(),
            }),
        }
    }
    Ok((good, bad))
}

fn bad_error(bad: &BadWp) -> CliError {
    CliError::new(bad.error.kind, bad.error.message.clone())
}

/// The WP files of a feature, sorted by name. An entry named like a WP file
/// that the link rule refuses is an error naming it.
pub fn wp_paths(feature: &Feature) -> Result<Vec<PathBuf>, CliError> {
    let (good, bad) = scan(feature)?;
    match bad.first() {
        Some(b) => Err(bad_error(b)),
        None => Ok(good),
    }
}

/// The file of one work package; errors name the feature and list the
/// ones that exist, or name the entry the link rule refuses.
pub fn find_wp(feature: &Feature, wp_id: &str) -> Result<PathBuf, CliError> {
    check_wp_id(wp_id)?;
    let (all, bad) = scan(feature)?;
    if let Some(b) = bad.iter().find(|b| b.wp_id == wp_id) {
        return Err(bad_error(b));
    }
    let matches: Vec<&PathBuf> = all
        .iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| file_is_wp(n, wp_id))
        })
        .collect();
    match matches.len() {
        1 => Ok(matches[0].clone()),
        0 => {
            let known: Vec<String> = all
                .iter()
                .filter_map(|p| p.file_name()?.to_str().map(|n| n[..4].to_string()))
                .collect();
            Err(CliError::invalid(format!(
                "work package {wp_id} not found in {} (known: {})",
                feature.tasks_dir().display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )))
        }
        _ => Err(CliError::invalid(format!(
            "several files match {wp_id} in {}: {}; remove the duplicates",
            feature.tasks_dir().display(),
            matches
                .iter()
                .filter_map(|p| p.file_name()?.to_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Every WP file of a feature, parsed. A malformed or refused file is an
/// error naming it.
pub fn load_wps(feature: &Feature) -> Result<Vec<WpFile>, CliError> {
    wp_paths(feature)?.iter().map(|p| WpFile::read(p)).collect()
}

/// Every WP file of a feature that can be read, and every one that cannot
/// (refused by the link rule, unreadable, malformed) with its error: one
/// bad file does not hide the others.
pub fn load_wps_lenient(feature: &Feature) -> Result<(Vec<WpFile>, Vec<BadWp>), CliError> {
    let (paths, mut bad) = scan(feature)?;
    let mut good = Vec::with_capacity(paths.len());
    for p in paths {
        match WpFile::read(&p) {
            Ok(w) => good.push(w),
            Err(e) => bad.push(BadWp {
                wp_id: p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(|n| n[..4].to_string())
                    .unwrap_or_default(),
                path: p,
                error: e,
            }),
        }
    }
    bad.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((good, bad))
}

/// Serialises commands that change a feature as a whole (numbering new
/// WPs, `meta.json`, accept) with a lock on its `tasks/` directory.
pub fn lock_feature(feature: &Feature) -> Result<crate::fsutil::Lock, CliError> {
    let dir = feature.tasks_dir();
    fs::create_dir_all(&dir).map_err(|e| CliError::io_at("create", &dir, &e))?;
    crate::fsutil::lock_path(&dir).map_err(|e| CliError::io_at("lock", &dir, &e))
}

/// Ids recorded as announced (`announced_wps` in meta.json).
pub fn announced(meta: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    meta.get("announced_wps")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The new text of meta.json with top-level `key` set (file created when
/// absent).
pub fn meta_with(
    feature: &Feature,
    old_text: &str,
    key: &str,
    value: serde_json::Value,
) -> Result<String, CliError> {
    if old_text.trim().is_empty() {
        return Ok(format!("{{\n  \"{key}\": {value}\n}}\n"));
    }
    json_set(old_text, key, &value).ok_or_else(|| {
        CliError::invalid(format!(
            "cannot update `{key}` in {}: the file is not a JSON object spec-kitty can edit",
            feature.meta_path().display()
        ))
    })
}

// ---------------------------------------------------------------------------
// meta.json

/// Reads `meta.json` as a JSON object (empty when absent).
pub fn read_meta(
    feature: &Feature,
) -> Result<(String, serde_json::Map<String, serde_json::Value>), CliError> {
    let path = feature.meta_path();
    let Some(bytes) = fsutil::read_repo_file(&feature.root, &path)? else {
        return Ok((String::new(), Default::default()));
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        CliError::io_at(
            "read",
            &path,
            &std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    match serde_json::from_str(text.trim_start_matches('\u{feff}')) {
        Ok(serde_json::Value::Object(m)) => Ok((text, m)),
        Ok(_) => Err(CliError::invalid(format!(
            "{} must hold a JSON object",
            path.display()
        ))),
        Err(e) => Err(CliError::invalid(format!(
            "{} is not valid JSON: {e}",
            path.display()
        ))),
    }
}

/// 2.1.3's status phase: `status_phase` in meta.json, else `status.phase`
/// in `.kittify/config.yaml`, else 1.
pub fn resolve_phase(feat: &Feature) -> (u8, String) {
    let valid = |v: &serde_json::Value| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|p| *p <= 2)
            .map(|p| p as u8)
    };
    if let Ok((_, meta)) = read_meta(feat) {
        if let Some(p) = meta.get("status_phase").and_then(valid) {
            return (p, format!("meta.json override for {}", feat.slug));
        }
    }
    let config = feat.root.join(".kittify").join("config.yaml");
    if let Some(p) = fs::read_to_string(config)
        .ok()
        .and_then(|t| crate::yamltext::parse_value(&t).ok())
        .and_then(|d| d.get("status")?.get("phase").and_then(valid))
    {
        return (p, "global default from .kittify/config.yaml".into());
    }
    (1, "built-in default (Phase 1: dual-write)".into())
}

/// Returns `text` (a JSON object written by spec-kitty) with top-level
/// `key` set to `value`: the old value replaced in place, or the key added
/// before the closing brace. Other keys keep their order and formatting.
pub fn json_set(text: &str, key: &str, value: &serde_json::Value) -> Option<String> {
    let b = text.as_bytes();
    let mut depth = 0i32;
    let mut i = 0;
    let mut close = None;
    // (value start, value end) of `key` at depth 1.
    let mut found: Option<(usize, usize)> = None;
    let mut pending_key: Option<String> = None;
    let mut value_start: Option<usize> = None;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if depth == 1 && value_start.is_none() {
                    let k: String = serde_json::from_str(&text[start..=i]).ok()?;
                    pending_key = Some(k);
                }
            }
            b':' if depth == 1 && pending_key.as_deref() == Some(key) => {
                value_start = Some(i + 1);
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    if let Some(s) = value_start.take() {
                        found = Some((s, i));
                    }
                    break;
                }
            }
            b',' if depth == 1 => {
                if let Some(s) = value_start.take() {
                    found = Some((s, i));
                }
                pending_key = None;
            }
            _ => {}
        }
        i += 1;
    }
    let close = close?;
    let rendered = serde_json::to_string(value).ok()?;
    let out = if let Some((s, e)) = found {
        let lead = &text[s..e];
        let ws_start = lead.len() - lead.trim_start().len();
        let ws_end = lead.trim_end().len();
        format!(
            "{}{}{}{}",
            &text[..s + ws_start],
            rendered,
            &lead[ws_end..],
            &text[e..]
        )
    } else {
        let before = text[..close].trim_end();
        let empty = before.ends_with('{');
        let sep = if empty { "" } else { "," };
        format!("{before}{sep}\n  \"{key}\": {rendered}\n{}", &text[close..])
    };
    let check: serde_json::Value = serde_json::from_str(&out).ok()?;
    (check.get(key) == Some(value)).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wp_file_names() {
        assert!(file_is_wp("WP01-x.md", "WP01"));
        assert!(file_is_wp("WP01.md", "WP01"));
        assert!(!file_is_wp("WP011-x.md", "WP01"));
        assert!(!file_is_wp("WP01-x.txt", "WP01"));
        assert_eq!(strip_wp_suffix("001-demo-WP02"), "001-demo");
        assert_eq!(strip_wp_suffix("001-demo"), "001-demo");
    }

    #[test]
    fn json_set_keeps_order_and_format() {
        let t = "{\n  \"z\": 1,\n  \"a\": [1, 2],\n  \"m\": {\"k\": \"}\"}\n}\n";
        let out = json_set(t, "a", &json!(["WP01"])).unwrap();
        assert_eq!(
            out,
            "{\n  \"z\": 1,\n  \"a\": [\"WP01\"],\n  \"m\": {\"k\": \"}\"}\n}\n"
        );
        let out = json_set(t, "new", &json!("x")).unwrap();
        assert_eq!(
            out,
            "{\n  \"z\": 1,\n  \"a\": [1, 2],\n  \"m\": {\"k\": \"}\"}\n  ,\n  \"new\": \"x\"\n}\n"
                .replace("}\n  ,", "},")
        );
        let out = json_set("{\n  \"m\": 2\n}", "m", &json!(3)).unwrap();
        assert_eq!(out, "{\n  \"m\": 3\n}");
    }
}
