//! Git facts for events and feature detection, read straight from `.git`.
//!
//! Every event carries `git_branch`, `head_commit_sha` and `repo_slug`.
//! Spawning `git` three times costs several milliseconds, which is most of
//! a `move-task`'s budget, so we read the few files git itself reads:
//! `HEAD`, the loose ref or `packed-refs`, and `config` for the origin URL.
//! Worktrees (`.git` is a file `gitdir: ...`, with a `commondir` inside)
//! are followed the way git does. Anything we cannot read gives `None`,
//! never an error: git metadata is context, not a precondition.
//!
//! Creating worktrees (`implement`) still runs the real `git`, because
//! that changes repository state and must be done exactly as git does it.

use std::fs;
use std::path::{Path, PathBuf};

/// Where a working tree's git data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitDirs {
    /// The per-worktree git dir (holds `HEAD`).
    pub git_dir: PathBuf,
    /// The shared git dir (holds `refs/`, `packed-refs`, `config`).
    pub common_dir: PathBuf,
}

impl GitDirs {
    /// Finds the git dirs of the working tree rooted at `root` (which must
    /// contain `.git` itself; we do not search upwards here).
    pub fn of_worktree(root: &Path) -> Option<GitDirs> {
        let dot_git = root.join(".git");
        let meta = fs::metadata(&dot_git).ok()?;
        let git_dir = if meta.is_dir() {
            dot_git
        } else {
            let text = fs::read_to_string(&dot_git).ok()?;
            let target = text.lines().next()?.strip_prefix("gitdir:")?.trim();
            let p = Path::new(target);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                root.join(p)
            }
        };
        let common_dir = match fs::read_to_string(git_dir.join("commondir")) {
            Ok(text) => {
                let c = Path::new(text.trim());
                if c.is_absolute() {
                    c.to_path_buf()
                } else {
                    git_dir.join(c)
                }
            }
            Err(_) => git_dir.clone(),
        };
        Some(GitDirs {
            git_dir,
            common_dir,
        })
    }

    /// The main working tree of the repository: the parent of the common
    /// dir when that is a `.git` directory (non-bare repositories).
    pub fn main_worktree(&self) -> Option<PathBuf> {
        let common = normalize(&self.common_dir);
        if common.file_name()? == ".git" {
            common.parent().map(Path::to_path_buf)
        } else {
            None
        }
    }
}

/// Lexically removes `.` and `..` so `wt/.git/../..` style paths compare.
fn normalize(p: &Path) -> PathBuf {
    let p = fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The git facts an event carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitMeta {
    /// As `git rev-parse --abbrev-ref HEAD`: the branch, or `HEAD` when detached.
    pub branch: Option<String>,
    /// 40 hex of the commit HEAD points at; `None` on an unborn branch.
    pub head_sha: Option<String>,
    /// The origin remote's URL, verbatim.
    pub origin_url: Option<String>,
}

impl GitMeta {
    /// Reads branch, HEAD commit and origin URL of the worktree at `root`.
    pub fn read(root: &Path) -> GitMeta {
        let Some(dirs) = GitDirs::of_worktree(root) else {
            return GitMeta::default();
        };
        let head = fs::read_to_string(dirs.git_dir.join("HEAD")).unwrap_or_default();
        let head = head.trim();
        let (branch, head_sha) = if let Some(refname) = head.strip_prefix("ref:") {
            let refname = refname.trim();
            let branch = refname
                .strip_prefix("refs/heads/")
                .unwrap_or(refname)
                .to_string();
            (Some(branch), resolve_ref(&dirs, refname))
        } else if is_sha(head) {
            (Some("HEAD".to_string()), Some(head.to_string()))
        } else {
            (None, None)
        };
        GitMeta {
            branch,
            head_sha,
            origin_url: origin_url(&dirs.common_dir.join("config")),
        }
    }
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Resolves `refname` through loose refs (following symbolic refs a few
/// levels) and `packed-refs`.
fn resolve_ref(dirs: &GitDirs, refname: &str) -> Option<String> {
    let mut name = refname.to_string();
    for _ in 0..5 {
        // Per-worktree refs live in the worktree's git dir, shared refs in
        // the common dir; git checks the worktree first.
        let loose = [dirs.git_dir.join(&name), dirs.common_dir.join(&name)]
            .into_iter()
            .find_map(|p| fs::read_to_string(p).ok());
        match loose {
            Some(text) => {
                let t = text.trim();
                if let Some(next) = t.strip_prefix("ref:") {
                    name = next.trim().to_string();
                    continue;
                }
                return is_sha(t).then(|| t.to_string());
            }
            None => return packed_ref(&dirs.common_dir.join("packed-refs"), &name),
        }
    }
    None
}

fn packed_ref(path: &Path, refname: &str) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('^'))
        .find_map(|l| {
            let (sha, name) = l.split_once(' ')?;
            (name.trim() == refname && is_sha(sha)).then(|| sha.to_string())
        })
}

/// `url` of `[remote "origin"]` in a git config file (no includes).
fn origin_url(config: &Path) -> Option<String> {
    let text = fs::read_to_string(config).ok()?;
    let mut in_origin = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            let inner = l.trim_start_matches('[').split(']').next().unwrap_or("");
            let mut parts = inner.splitn(2, char::is_whitespace);
            let section = parts.next().unwrap_or("").to_ascii_lowercase();
            let sub = parts.next().unwrap_or("").trim().trim_matches('"');
            in_origin = section == "remote" && sub == "origin";
            continue;
        }
        if !in_origin {
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            if k.trim().eq_ignore_ascii_case("url") {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .unwrap_or(v);
                return Some(v.to_string());
            }
        }
    }
    None
}

/// `owner/repo` (subgroups kept) of a hosted remote URL; `None` for local
/// paths and `file://` URLs, as the Python CLI does.
pub fn repo_slug(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty()
        || url.starts_with('/')
        || url.starts_with("./")
        || url.starts_with("../")
        || url.starts_with("file:")
    {
        return None;
    }
    let path = if let Some((_, rest)) = url.split_once("://") {
        // scheme://[user@]host[:port]/path
        let slash = rest.find('/')?;
        &rest[slash..]
    } else {
        // scp-like: [user@]host:path (host has no '/')
        let colon = url.find(':')?;
        let host = &url[..colon];
        if host.contains('/') {
            return None;
        }
        &url[colon + 1..]
    };
    let path = path.trim().trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    (segments.len() >= 2).then(|| segments.join("/"))
}

/// The repository name (last path segment without `.git`) of any remote
/// URL, local paths included; used for the project slug.
pub fn repo_name(url: &str) -> Option<String> {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    let last = url.rsplit(['/', ':']).next()?;
    (!last.is_empty()).then(|| last.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_slug_forms() {
        for (url, want) in [
            ("https://github.com/owner/repo.git", Some("owner/repo")),
            ("https://github.com/owner/repo", Some("owner/repo")),
            ("git@github.com:owner/repo.git", Some("owner/repo")),
            ("ssh://git@github.com:22/owner/repo.git", Some("owner/repo")),
            ("git@gitlab.com:org/team/repo.git", Some("org/team/repo")),
            ("/srv/git/repo.git", None),
            ("../repo", None),
            ("file:///srv/repo.git", None),
            ("https://github.com/repo", None),
        ] {
            assert_eq!(repo_slug(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn repo_name_forms() {
        assert_eq!(
            repo_name("git@github.com:o/My_Repo.git").as_deref(),
            Some("My_Repo")
        );
        assert_eq!(
            repo_name("https://h/o/spec-kitty").as_deref(),
            Some("spec-kitty")
        );
        assert_eq!(repo_name("/srv/x/proj.git/").as_deref(), Some("proj"));
    }
}
