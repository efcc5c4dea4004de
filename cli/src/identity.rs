//! Project identity in `.kittify/config.yaml`: `project.{uuid, slug,
//! node_id}` and `sync.auto_start`.
//!
//! Every event carries the project's identity, so every command ensures it
//! first ([`ensure`]): missing fields are generated and persisted before
//! anything is emitted. The rules, and why:
//!
//! - **First write wins.** Many agents start at once on a fresh checkout.
//!   The fast path only reads; a process that has to write takes an
//!   exclusive lock on the `.kittify` directory, *re-reads*, and writes only
//!   what is still missing. Every process then uses the persisted UUID (the
//!   Python 2.x CLI let the last writer win while losers kept their own).
//! - **Surgical, atomic writes.** The file belongs to other tools too: we
//!   insert or fill only our lines ([`crate::yamltext`]), re-parse the
//!   result, and replace the file atomically.
//! - **Corrupt YAML** does not stop work: the file is kept as
//!   `config.yaml.corrupt-<timestamp>`, a fresh config is written, and a
//!   warning says so.
//! - **Read-only repositories** (and a config that cannot be used: a
//!   `.kittify` that is a file, a config that is a directory or a link out
//!   of the repository, see [`crate::fsutil`]) get an in-memory identity and
//!   one warning. Its UUID is derived from the repository's real path and
//!   this machine's node id, so every command in the same checkout stamps
//!   the same `project_uuid` (a fresh one per command would show one
//!   repository as one project per event).
//! - **A `project.uuid` that is not a UUID** is replaced (or, read-only,
//!   ignored) with a warning that names it.

use crate::fsutil;
use crate::gitmeta;
use crate::project::Project;
use crate::yamltext;
use serde_json::Value;
use spec_kitty_protocol::envelope::is_uuid;
use std::fs;
use std::path::Path;

/// The identity (and sync policy) of one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `None` only when no identity could be had at all.
    pub uuid: Option<String>,
    pub slug: Option<String>,
    pub node_id: String,
    /// `project.repo_slug`: an `owner/repo` override for events.
    pub repo_slug: Option<String>,
    /// `sync.auto_start` (default true).
    pub auto_start: bool,
    /// Where the identity came from.
    pub source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Read from the file as it was.
    File,
    /// Generated (in part) and persisted by this process.
    Persisted,
    /// Generated, but the file could not be written.
    InMemory,
}

/// What a config file holds, as far as we care.
#[derive(Debug, Default, Clone)]
struct Fields {
    uuid: Option<String>,
    /// A `project.uuid` value that is not a UUID (ignored, and warned about).
    bad_uuid: Option<String>,
    slug: Option<String>,
    node_id: Option<String>,
    repo_slug: Option<String>,
    auto_start: Option<bool>,
}

impl Fields {
    fn complete(&self) -> bool {
        self.uuid.is_some() && self.slug.is_some() && self.node_id.is_some()
    }
}

enum Read {
    Missing,
    Corrupt(String),
    Ok(String, Fields),
}

fn scalar_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses config text. `Err` when it is not YAML or not a mapping.
fn parse(text: &str) -> Result<Fields, String> {
    if text.trim().is_empty() {
        return Ok(Fields::default());
    }
    let v: Value = crate::yamltext::parse_value(text).map_err(|e| e.to_string())?;
    let obj = match &v {
        Value::Object(o) => o,
        Value::Null => return Ok(Fields::default()),
        _ => return Err("the top level is not a mapping".into()),
    };
    let mut f = Fields::default();
    if let Some(Value::Object(p)) = obj.get("project") {
        let uuid = scalar_string(p.get("uuid"));
        f.bad_uuid = uuid.clone().filter(|u| !is_uuid(u));
        f.uuid = uuid.filter(|u| is_uuid(u));
        f.slug = scalar_string(p.get("slug"));
        f.node_id = scalar_string(p.get("node_id"))
            .filter(|n| spec_kitty_protocol::identity::is_node_id(n));
        f.repo_slug = scalar_string(p.get("repo_slug"));
    }
    if let Some(Value::Object(s)) = obj.get("sync") {
        f.auto_start = match s.get("auto_start") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "false" | "no" | "off" => Some(false),
                _ => Some(true),
            },
            _ => None,
        };
    }
    Ok(f)
}

/// Reads the config under the repository link rule; `Err` says why it
/// cannot be used at all.
fn read(project: &Project, path: &Path) -> Result<Read, String> {
    match fsutil::read_repo_file(&project.root, path) {
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(text) => Ok(match parse(&text) {
                Ok(f) => Read::Ok(text, f),
                Err(e) => Read::Corrupt(e),
            }),
            Err(_) => Ok(Read::Corrupt("not UTF-8 text".into())),
        },
        Ok(None) => Ok(Read::Missing),
        Err(e) => Err(e.message),
    }
}

/// What `.kittify/config.yaml` says as it is, read under the link rule and
/// never written (`sync status` must not backfill identity). Unreadable or
/// corrupt: no uuid or slug, and the default `auto_start` (true).
pub fn peek(project: &Project) -> Identity {
    let f = match read(project, &project.config_path()) {
        Ok(Read::Ok(_, f)) => f,
        _ => Fields::default(),
    };
    Identity {
        uuid: f.uuid,
        slug: f.slug,
        node_id: f.node_id.unwrap_or_default(),
        repo_slug: f.repo_slug,
        auto_start: f.auto_start.unwrap_or(true),
        source: Source::File,
    }
}

/// The project slug: repository name of the `origin` remote, else the
/// directory name, in kebab-case.
pub fn derive_slug(project: &Project) -> String {
    let from_remote = project
        .git_root
        .as_deref()
        .and_then(|g| gitmeta::GitMeta::read(g).origin_url)
        .or_else(|| gitmeta::GitMeta::read(&project.root).origin_url)
        .and_then(|u| gitmeta::repo_name(&u));
    let name = from_remote.unwrap_or_else(|| {
        project
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let slug = kebab(&name);
    if slug.is_empty() {
        "project".to_string()
    } else {
        slug
    }
}

/// Lower case; every run of characters other than `a-z0-9` becomes one
/// `-`; no leading or trailing `-`.
pub fn kebab(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The identity of a repository whose config cannot be written: the same
/// for every command in the same checkout on this machine. SHA-256 of the
/// repository's real path and this machine's node id, laid out as a
/// version-4 UUID (the shape every reader of `project_uuid` expects).
pub fn derived_uuid(project: &Project) -> String {
    use sha2::{Digest, Sha256};
    let root = fs::canonicalize(&project.root).unwrap_or_else(|_| project.root.clone());
    let mut h = Sha256::new();
    h.update(b"spec-kitty project identity\0");
    h.update(root.as_os_str().as_encoded_bytes());
    h.update(b"\0");
    h.update(spec_kitty_protocol::node_id().as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Options of [`ensure`].
#[derive(Debug, Clone, Copy, Default)]
pub struct EnsureOpts {
    /// `init`: also write `sync.auto_start: true` when `sync` is absent.
    pub add_sync_section: bool,
}

/// Loads the identity, generating and persisting missing fields first.
/// Warnings (corrupt file kept, in-memory identity) go to `warn`.
pub fn ensure(project: &Project, opts: EnsureOpts, warn: &mut dyn FnMut(String)) -> Identity {
    let path = project.config_path();
    let read_only = |why: String, fields: &Fields, warn: &mut dyn FnMut(String)| {
        let ignored = match &fields.bad_uuid {
            Some(bad) => format!("; its project.uuid '{bad}' is not a UUID and is ignored"),
            None => String::new(),
        };
        warn(format!(
            "{} is not writable ({why}); using an in-memory project identity derived from this repository's path and machine, the same for every command until the file can be written{ignored}",
            path.display()
        ));
        finish(project, fields.clone(), Source::InMemory)
    };
    // Fast path: complete identity, no lock, no write.
    let first = match read(project, &path) {
        Ok(r) => r,
        Err(e) => return read_only(e, &Fields::default(), warn),
    };
    if let Read::Ok(_, f) = &first {
        let has_sync = !opts.add_sync_section || f.auto_start.is_some();
        if f.complete() && has_sync {
            return to_identity(f.clone(), Source::File);
        }
    }
    let known = match &first {
        Read::Ok(_, f) => f.clone(),
        _ => Fields::default(),
    };
    // Slow path: lock the .kittify directory, re-read, write what is missing.
    let kittify = project.kittify();
    if let Err(e) = fs::create_dir_all(&kittify) {
        return read_only(e.to_string(), &known, warn);
    }
    let _lock = match fsutil::lock_path(&kittify) {
        Ok(l) => l,
        Err(e) => return read_only(e.to_string(), &known, warn),
    };
    let again = match read(project, &path) {
        Ok(r) => r,
        Err(e) => return read_only(e, &known, warn),
    };
    let (text, fields) = match again {
        Read::Ok(text, f) => {
            let has_sync = !opts.add_sync_section || f.auto_start.is_some();
            if f.complete() && has_sync {
                return to_identity(f, Source::File);
            }
            (text, f)
        }
        Read::Missing => (String::new(), Fields::default()),
        Read::Corrupt(why) => {
            let kept = path.with_file_name(format!("config.yaml.corrupt-{}", stamp()));
            if let Err(e) = fs::rename(&path, &kept) {
                return read_only(e.to_string(), &Fields::default(), warn);
            }
            warn(format!(
                "{} is not valid YAML ({}); kept it as {} and wrote a fresh config with a new project identity",
                path.display(),
                first_line(&why),
                kept.display()
            ));
            (String::new(), Fields::default())
        }
    };
    let mut filled = fields.clone();
    filled.uuid.get_or_insert_with(new_uuid);
    filled.slug.get_or_insert_with(|| derive_slug(project));
    filled
        .node_id
        .get_or_insert_with(spec_kitty_protocol::node_id);
    let add_sync = opts.add_sync_section || text.is_empty();
    let new_text = match backfill(&text, &filled, add_sync) {
        Ok(t) => t,
        Err(e) => {
            warn(format!(
                "cannot update {} surgically ({e}); using an in-memory project identity derived from this repository's path and machine, the same for every command until the file can be written",
                path.display()
            ));
            return finish(project, fields, Source::InMemory);
        }
    };
    // Not written: the file's own fields, never the fresh UUID just made up.
    if let Err(e) = fsutil::write_repo_file(&project.root, &path, new_text.as_bytes()) {
        return read_only(e.message, &fields, warn);
    }
    if let Some(bad) = &fields.bad_uuid {
        warn(format!(
            "project.uuid '{bad}' in {} is not a UUID; replaced it with {}",
            path.display(),
            filled.uuid.as_deref().unwrap_or_default()
        ));
    }
    if add_sync && filled.auto_start.is_none() {
        filled.auto_start = Some(true);
    }
    to_identity(filled, Source::Persisted)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn stamp() -> String {
    // 2026-02-07T08:34:22.123456+00:00 → 20260207T083422.123456Z
    let t = spec_kitty_protocol::time::now_utc();
    let digits: String = t[..26].chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{digits}Z")
}

fn finish(project: &Project, mut f: Fields, source: Source) -> Identity {
    f.uuid.get_or_insert_with(|| derived_uuid(project));
    f.slug.get_or_insert_with(|| derive_slug(project));
    to_identity(f, source)
}

fn to_identity(f: Fields, source: Source) -> Identity {
    Identity {
        uuid: f.uuid,
        slug: f.slug,
        node_id: f.node_id.unwrap_or_else(spec_kitty_protocol::node_id),
        repo_slug: f.repo_slug,
        auto_start: f.auto_start.unwrap_or(true),
        source,
    }
}

/// Returns `text` with the missing identity fields of `filled` written in:
/// empty values filled in place, absent keys inserted at the end of the
/// `project:` block (in its indentation), an absent `project:` appended.
/// The result is re-parsed and must carry exactly `filled`.
fn backfill(text: &str, filled: &Fields, add_sync: bool) -> Result<String, String> {
    let eol = yamltext::line_ending(text);
    let want = [
        ("uuid", filled.uuid.as_deref().unwrap_or_default()),
        ("slug", filled.slug.as_deref().unwrap_or_default()),
        ("node_id", filled.node_id.as_deref().unwrap_or_default()),
    ];
    let mut out = text.to_string();
    match yamltext::find_key(&out, "project") {
        None => {
            let mut block = format!("project:{eol}");
            for (k, v) in want {
                block.push_str(&format!("  {k}: {}{eol}", yamltext::scalar(v)));
            }
            out = yamltext::insert_at(&out, out.len(), &block);
        }
        Some(kl) if kl.value.is_empty() || matches!(&out[kl.value.clone()], "null" | "~") => {
            // Block mapping (or an explicit null): fill per key.
            if !kl.value.is_empty() {
                out = format!("{}{}", &out[..kl.value.start], &out[kl.value.end..]);
            }
            let current = parse(&out).map_err(|e| format!("re-parse: {e}"))?;
            let have = [
                current.uuid.is_some(),
                current.slug.is_some(),
                current.node_id.is_some(),
            ];
            for ((k, v), has) in want.into_iter().zip(have) {
                if has {
                    continue;
                }
                let kl = yamltext::find_key(&out, "project").ok_or("project: vanished")?;
                let indent = yamltext::block_indent(&out, &kl.line)
                    .unwrap_or("  ")
                    .to_string();
                let end = yamltext::block_end(&out, &kl.line);
                // An existing but empty/invalid line for this key: replace it.
                let existing = find_child(&out, kl.line.end..end, &indent, k);
                match existing {
                    Some(line) => {
                        let new_line = format!("{indent}{k}: {}{eol}", yamltext::scalar(v));
                        out = format!("{}{}{}", &out[..line.start], new_line, &out[line.end..]);
                    }
                    None => {
                        let new_line = format!("{indent}{k}: {}{eol}", yamltext::scalar(v));
                        out = yamltext::insert_at(&out, end, &new_line);
                    }
                }
            }
        }
        Some(kl) => {
            // A flow mapping or a scalar: rewrite just this entry as a block,
            // keeping any other keys that were in a flow mapping.
            let end = yamltext::block_end(&out, &kl.line);
            let old: Value = yamltext::parse_value(&out).map_err(|e| e.to_string())?;
            let mut block = format!("project:{eol}");
            if let Some(Value::Object(p)) = old.get("project") {
                for (k, v) in p {
                    if ["uuid", "slug", "node_id"].contains(&k.as_str()) {
                        continue;
                    }
                    let text = match v {
                        Value::String(s) => yamltext::scalar(s),
                        other => other.to_string(),
                    };
                    block.push_str(&format!("  {k}: {text}{eol}"));
                }
            }
            for (k, v) in want {
                block.push_str(&format!("  {k}: {}{eol}", yamltext::scalar(v)));
            }
            out = format!("{}{}{}", &out[..kl.line.start], block, &out[end..]);
        }
    }
    if add_sync && yamltext::find_key(&out, "sync").is_none() {
        let block = format!("sync:{eol}  auto_start: true{eol}");
        out = yamltext::insert_at(&out, out.len(), &block);
    }
    let check = parse(&out).map_err(|e| format!("result does not parse: {e}"))?;
    if check.uuid != filled.uuid || check.slug != filled.slug || check.node_id != filled.node_id {
        return Err("result does not read back as the identity written".into());
    }
    Ok(out)
}

/// A child line `<indent><key>:` directly inside the byte range.
fn find_child(
    text: &str,
    range: std::ops::Range<usize>,
    indent: &str,
    key: &str,
) -> Option<std::ops::Range<usize>> {
    let base = range.start;
    for r in yamltext::lines(&text[range]) {
        let line = &text[base + r.start..base + r.end];
        if let Some(rest) = line.strip_prefix(indent) {
            if rest.starts_with(key) && rest[key.len()..].starts_with(':') {
                return Some(base + r.start..base + r.end);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Fields {
        Fields {
            uuid: Some("550e8400-e29b-41d4-a716-446655440000".into()),
            slug: Some("demo".into()),
            node_id: Some("a1b2c3d4e5f6".into()),
            ..Fields::default()
        }
    }

    #[test]
    fn kebab_rules() {
        assert_eq!(kebab("My_Cool Repo!!"), "my-cool-repo");
        assert_eq!(kebab("--Spec.Kitty--"), "spec-kitty");
        assert_eq!(kebab("___"), "");
    }

    #[test]
    fn backfill_keeps_every_other_byte() {
        let text = "# top comment\nvcs:\n  type: git   # keep me\nproject:\n    slug: mine\n\n# trailing\nagents: [a, b]\n";
        let mut f = full();
        f.slug = Some("mine".into());
        let out = backfill(text, &f, false).unwrap();
        assert_eq!(
            out,
            "# top comment\nvcs:\n  type: git   # keep me\nproject:\n    slug: mine\n    uuid: 550e8400-e29b-41d4-a716-446655440000\n    node_id: a1b2c3d4e5f6\n\n# trailing\nagents: [a, b]\n"
        );
    }

    #[test]
    fn backfill_appends_project_and_fills_empty_values() {
        let out = backfill("vcs: git", &full(), false).unwrap();
        assert!(
            out.starts_with("vcs: git\nproject:\n  uuid: 550e8400"),
            "{out}"
        );
        let out = backfill("project:\n  uuid:\n  slug: ''\n", &full(), true).unwrap();
        assert_eq!(out, "project:\n  uuid: 550e8400-e29b-41d4-a716-446655440000\n  slug: demo\n  node_id: a1b2c3d4e5f6\nsync:\n  auto_start: true\n");
        let out = backfill("project: {slug: x}\nz: 1\n", &full(), false).unwrap();
        assert!(out.ends_with("z: 1\n"), "{out}");
        assert_eq!(parse(&out).unwrap().uuid, full().uuid);
    }
}
