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

fn passwd_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the length passed; getpwuid_r fills
    // pwd with pointers into buf, which outlives their use below.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name points at a NUL-terminated string inside buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The home directory of the current user from the password database, used
/// when `HOME` is unset.
pub fn passwd_home() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: as in passwd_name.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: as in passwd_name.
    let rc = unsafe {
        libc::getpwuid_r(
            current_uid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
        return None;
    }
    // SAFETY: pw_dir points at a NUL-terminated string inside buf.
    let dir = unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) };
    Some(dir.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

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
