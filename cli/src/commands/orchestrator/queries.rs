//! The read-only subcommands: `contract-version`, `feature-state`,
//! `list-ready`. They read the log and the WP files and write nothing.

use super::envelope::{CONTRACT_VERSION, J, MIN_PROVIDER_VERSION};
use super::{resolve_feature, Answer, Fail};
use crate::feature::{self, Feature};
use crate::status::reducer::Snapshot;
use crate::status::store;
use serde_json::Value;
use spec_kitty_protocol::Lane;
use std::collections::{BTreeMap, BTreeSet};

pub fn contract_version(provider: Option<&str>) -> Answer {
    if let Some(p) = provider {
        let mismatch = |data| Fail {
            code: "CONTRACT_VERSION_MISMATCH",
            data,
        };
        match pep440_below_minimum(p) {
            None => {
                return Err(mismatch(J::O(vec![("provider_version", J::s(p))])));
            }
            Some(true) => {
                return Err(mismatch(J::O(vec![
                    ("provider_version", J::s(p)),
                    ("min_supported_provider_version", J::s(MIN_PROVIDER_VERSION)),
                    ("api_version", J::s(CONTRACT_VERSION)),
                ])));
            }
            Some(false) => {}
        }
    }
    Ok(J::O(vec![
        ("api_version", J::s(CONTRACT_VERSION)),
        ("min_supported_provider_version", J::s(MIN_PROVIDER_VERSION)),
    ]))
}

/// Whether `v` (a PEP 440 version, as Python's `packaging` reads it) is
/// below [`MIN_PROVIDER_VERSION`]; `None` when it is not a version.
fn pep440_below_minimum(v: &str) -> Option<bool> {
    let s = v.trim().to_ascii_lowercase();
    let s = s.strip_prefix('v').unwrap_or(&s);
    let (s, _local) = match s.split_once('+') {
        Some((a, l))
            if !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)) =>
        {
            (a, Some(l))
        }
        Some(_) => return None,
        None => (s, None),
    };
    let s = match s.split_once('!') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            if epoch.trim_start_matches('0').is_empty() {
                rest
            } else {
                return Some(false); // any epoch > 0 is newer
            }
        }
        Some(_) => return None,
        None => s,
    };
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (release, mut rest) = s.split_at(end);
    // A trailing dot belongs to a suffix separator (`1.0.post1`).
    let release = match release.strip_suffix('.') {
        Some(r) if !rest.is_empty() => {
            rest = &s[end - 1..];
            r
        }
        _ => release,
    };
    let parts: Vec<u64> = release
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let mut pre = false;
    let mut post = false;
    let mut dev = false;
    let sep = |r: &str| r.trim_start_matches(['.', '-', '_']).to_string();
    let mut r = rest.to_string();
    let take = |r: &mut String, words: &[&str]| -> bool {
        let t = sep(r);
        for w in words {
            if let Some(after) = t.strip_prefix(w) {
                let after = sep(after);
                let digits =
                    after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                *r = after[digits..].to_string();
                return true;
            }
        }
        false
    };
    if take(
        &mut r,
        &["alpha", "beta", "preview", "pre", "rc", "a", "b", "c"],
    ) {
        pre = true;
    }
    if take(&mut r, &["post", "rev", "r"]) {
        post = true;
    }
    if take(&mut r, &["dev"]) {
        dev = true;
    }
    if !r.is_empty() {
        return None;
    }
    let min = [0u64, 1, 0];
    let n = parts.len().max(min.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    for i in 0..n {
        match at(&parts, i).cmp(&at(&min, i)) {
            std::cmp::Ordering::Less => return Some(true),
            std::cmp::Ordering::Greater => return Some(false),
            std::cmp::Ordering::Equal => {}
        }
    }
    // The same release: a pre-release or dev release of it comes before.
    Some(pre || (dev && !post))
}

/// What the read commands share: the reduced log (plus WPs it does not
/// know yet whose frontmatter has moved on, as every write path sees them)
/// and each WP file's dependencies, by WP id.
struct Read {
    snap: Snapshot,
    deps: BTreeMap<String, Vec<String>>,
    /// WP files that cannot be read (2.1.3 lists their ids too).
    unreadable: Vec<String>,
}

fn read(feat: &Feature) -> Result<Read, Fail> {
    let snap = store::snapshot(feat).map_err(|e| Fail::internal(&e))?;
    let (wps, bad) = feature::load_wps_lenient(feat).map_err(|e| Fail::internal(&e))?;
    let deps = wps
        .into_iter()
        .map(|w| (w.meta.wp_id, w.meta.dependencies))
        .collect();
    Ok(Read {
        snap,
        deps,
        unreadable: bad.into_iter().map(|b| b.wp_id).collect(),
    })
}

fn lane_of(snap: &Snapshot, wp: &str) -> Option<Lane> {
    snap.work_packages.get(wp).map(|s| s.lane)
}

pub fn feature_state(slug: &str) -> Answer {
    let (_, feat) = resolve_feature(slug)?;
    let r = read(&feat)?;
    let counts = r.snap.summary();
    let summary = Lane::ALL
        .iter()
        .map(|l| {
            (
                l.as_wire(),
                J::V(Value::from(counts.get(l).copied().unwrap_or(0))),
            )
        })
        .collect();
    let ids: BTreeSet<&String> = r
        .deps
        .keys()
        .chain(&r.unreadable)
        .chain(r.snap.work_packages.keys())
        .collect();
    let wps = ids
        .into_iter()
        .map(|id| {
            J::O(vec![
                ("wp_id", J::s(id)),
                (
                    "lane",
                    J::s(lane_of(&r.snap, id).unwrap_or(Lane::Planned).as_wire()),
                ),
                (
                    "dependencies",
                    J::strings(r.deps.get(id).map_or(&[][..], |d| d.as_slice())),
                ),
                // 2.1.3 reads a key its snapshot never has (`last_actor`;
                // the snapshot says `actor`), so it is always null there.
                ("last_actor", J::V(Value::Null)),
            ])
        })
        .collect();
    Ok(J::O(vec![
        ("feature_slug", J::s(slug)),
        ("summary", J::O(summary)),
        ("work_packages", J::A(wps)),
    ]))
}

pub fn list_ready(slug: &str) -> Answer {
    let (_, feat) = resolve_feature(slug)?;
    let r = read(&feat)?;
    let ready = r
        .deps
        .iter()
        .filter(|(id, deps)| {
            lane_of(&r.snap, id).unwrap_or(Lane::Planned) == Lane::Planned
                && deps.iter().all(|d| lane_of(&r.snap, d) == Some(Lane::Done))
        })
        .map(|(id, deps)| {
            J::O(vec![
                ("wp_id", J::s(id)),
                ("lane", J::s(Lane::Planned.as_wire())),
                ("dependencies_satisfied", true.into()),
                ("recommended_base", J::opt(deps.last().map(String::as_str))),
            ])
        })
        .collect();
    Ok(J::O(vec![
        ("feature_slug", J::s(slug)),
        ("ready_work_packages", J::A(ready)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::pep440_below_minimum as below;

    #[test]
    fn versions_compare_as_pythons_packaging_does() {
        assert_eq!(below("1.0.0"), Some(false));
        assert_eq!(below("0.1.0"), Some(false));
        assert_eq!(below("0.1"), Some(false));
        assert_eq!(below("v0.2"), Some(false));
        assert_eq!(below("0.0.9"), Some(true));
        assert_eq!(below("0.1.0rc1"), Some(true));
        assert_eq!(below("0.1.0.dev3"), Some(true));
        assert_eq!(below("0.1.0.post1"), Some(false));
        assert_eq!(below("1!0.0.1"), Some(false));
        assert_eq!(below("0.1.0+local.1"), Some(false));
        assert_eq!(below("abc"), None);
        assert_eq!(below(""), None);
        assert_eq!(below("1.x"), None);
    }
}
