//! The machine identity `node_id`, computed exactly as the Python CLI does.
//!
//! Python: `sha256(f"{socket.gethostname()}:{getpass.getuser()}").hexdigest()[:12]`.
//! `getpass.getuser()` looks at `LOGNAME`, `USER`, `LNAME`, `USERNAME` (first
//! non-empty wins) and only then at the password database; we follow the same
//! order so both tools stamp the same `node_id` on the same machine, and the
//! Lamport clock they share (`clock.json`) stays one clock.
//!
//! Also [`new_ulid`], the fresh ids each event (and causation) gets.

use sha2::{Digest, Sha256};

/// A fresh ULID: the current time in milliseconds and 80 random bits read
/// straight from the OS. `ulid::Ulid::new` would first seed a userspace
/// ChaCha generator whose CPU-feature probe (`cpuid`, which traps in a VM)
/// costs a one-shot CLI more than the id itself; one id per event needs
/// no generator.
pub fn new_ulid() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut random = [0u8; 16];
    // As `Ulid::new`: no entropy from the OS is a broken system, not an
    // error a caller could handle.
    getrandom::fill(&mut random).expect("the OS random number source failed");
    ulid::Ulid::from_parts(ms, u128::from_le_bytes(random)).to_string()
}

/// First 12 lowercase hex characters of sha256("<hostname>:<username>").
pub fn node_id() -> String {
    node_id_for(&hostname(), &username())
}

/// The same hash for given inputs; pure, for tests and for callers that
/// already know both names.
pub fn node_id_for(hostname: &str, username: &str) -> String {
    let digest = Sha256::digest(format!("{hostname}:{username}").as_bytes());
    let mut out = String::with_capacity(12);
    for byte in &digest[..6] {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Is `s` a well-formed node id (12 lowercase hex characters)?
pub fn is_node_id(s: &str) -> bool {
    s.len() == 12
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The host name as `socket.gethostname()` returns it (uname nodename).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for buf.len() bytes; gethostname writes at most that
    // many and we stop at the first NUL ourselves.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The user name as `getpass.getuser()` returns it.
pub fn username() -> String {
    for var in ["LOGNAME", "USER", "LNAME", "USERNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return v;
            }
        }
    }
    passwd_name(current_uid()).unwrap_or_else(|| current_uid().to_string())
}

/// The real uid of this process.
pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The password database's name for `uid`: straight from `/etc/passwd`
/// when the name service reads that file first (what glibc would answer),
/// else through glibc. A command pays glibc's name-service set-up, about
/// 50 µs here, whenever `LOGNAME` and `USER` are unset (services, CI,
/// containers); reading the file takes a few.
fn passwd_name(uid: u32) -> Option<String> {
    passwd_name_from_files(uid).or_else(|| passwd_name_nss(uid))
}

fn passwd_name_from_files(uid: u32) -> Option<String> {
    let nsswitch = std::fs::read_to_string("/etc/nsswitch.conf").ok()?;
    if !passwd_files_first(&nsswitch) {
        return None;
    }
    name_in_passwd(&std::fs::read_to_string("/etc/passwd").ok()?, uid)
}

/// Whether `nsswitch.conf` makes `files` the first source of `passwd`
/// (its last `passwd:` line counts, as glibc reads it).
fn passwd_files_first(nsswitch: &str) -> bool {
    nsswitch
        .lines()
        .filter_map(|l| {
            l.split('#')
                .next()
                .unwrap_or("")
                .trim()
                .strip_prefix("passwd:")
        })
        .next_back()
        .and_then(|sources| sources.split_whitespace().next())
        == Some("files")
}

/// The name of the first entry of `/etc/passwd` text with `uid`. `None`
/// for a file with NIS `+`/`-` entries, whose meaning is glibc's to decide.
fn name_in_passwd(passwd: &str, uid: u32) -> Option<String> {
    let lines = || passwd.lines().map(str::trim_start);
    if lines().any(|l| l.starts_with('+') || l.starts_with('-')) {
        return None;
    }
    lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|l| {
            let mut fields = l.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?;
            (id.parse() == Ok(uid) && !name.is_empty()).then(|| name.to_string())
        })
}

fn passwd_name_nss(uid: u32) -> Option<String> {
    passwd_field(uid, |p| p.pw_name)
}

/// The home directory of the current user from the password database, used
/// when `HOME` is unset.
pub fn passwd_home() -> Option<String> {
    passwd_field(current_uid(), |p| p.pw_dir)
}

/// One string field of `uid`'s entry, through glibc (`getpwuid_r`).
fn passwd_field(uid: u32, field: fn(&libc::passwd) -> *mut libc::c_char) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the length passed; getpwuid_r fills
    // pwd with pointers into buf, which outlives their use below.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    let value = field(&pwd);
    if rc != 0 || result.is_null() || value.is_null() {
        return None;
    }
    // SAFETY: a non-null field points at a NUL-terminated string inside buf.
    let value = unsafe { std::ffi::CStr::from_ptr(value) };
    Some(value.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passwd_file_gives_the_name_glibc_gives() {
        for uid in [0, current_uid()] {
            if let Some(name) = passwd_name_from_files(uid) {
                assert_eq!(Some(name), passwd_name_nss(uid), "uid {uid}");
            }
        }
    }

    #[test]
    fn the_passwd_file_is_read_only_when_the_name_service_reads_it_first() {
        assert!(passwd_files_first(
            "# c\npasswd:         files systemd\ngroup: files\n"
        ));
        assert!(passwd_files_first(
            "passwd: files [NOTFOUND=return] sss # x\n"
        ));
        assert!(!passwd_files_first("passwd: sss files\n"));
        assert!(!passwd_files_first("passwd: compat\n"));
        assert!(!passwd_files_first("group: files\n"));
        assert!(!passwd_files_first("passwd: files\npasswd: ldap files\n"));
        assert!(!passwd_files_first("# passwd: files\n"));
    }

    #[test]
    fn a_uid_names_its_first_entry_and_nis_entries_defer_to_glibc() {
        let text = "root:x:0:0:root:/root:/bin/sh\n\nann:x:1000:1000::/home/ann:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        assert_eq!(name_in_passwd(text, 1000).as_deref(), Some("ann"));
        assert_eq!(name_in_passwd(text, 0).as_deref(), Some("root"));
        assert_eq!(name_in_passwd(text, 7), None);
        assert_eq!(name_in_passwd("ann:x:notanumber:1::/:/bin/sh\n", 0), None);
        assert_eq!(
            name_in_passwd("ann:x:1000:1::/:/bin/sh\n+@nis::::::\n", 1000),
            None
        );
    }

    #[test]
    fn matches_python_hashlib_for_known_input() {
        // python3 -c 'import hashlib;print(hashlib.sha256(b"host:user").hexdigest()[:12])'
        assert_eq!(node_id_for("host", "user"), "2e1a29e6f4ef");
    }

    #[test]
    fn new_ulids_are_current_distinct_and_well_formed() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let (a, b) = (new_ulid(), new_ulid());
        assert_ne!(a, b);
        for id in [&a, &b] {
            let u = ulid::Ulid::from_string(id).expect("a ULID");
            assert_eq!(u.to_string(), *id, "canonical form");
            assert!(u.timestamp_ms() >= before, "{id} is from before the call");
        }
    }

    #[test]
    fn node_id_is_twelve_lower_hex() {
        let id = node_id();
        assert!(is_node_id(&id), "{id}");
        assert!(!is_node_id("ABCDEF123456"));
        assert!(!is_node_id("abc"));
    }
}
