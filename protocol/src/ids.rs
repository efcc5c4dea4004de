//! The id and slug rules of the contract: ULIDs, UUIDs, work-package ids and
//! feature slugs. Pure predicates, shared by validation, the CLI's argument
//! checks and the daemon.

/// Is `s` a ULID as we write them: 26 chars of Crockford base32, upper case,
/// first char <= '7' (128-bit bound)?
pub fn is_ulid(s: &str) -> bool {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    s.len() == 26 && s.as_bytes()[0] <= b'7' && s.bytes().all(|b| ALPHABET.contains(&b))
}

/// Is `s` a hyphenated UUID (any version; the contract's are v4)?
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Is `s` a work package id (`WP` and two digits)?
pub fn is_wp_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 4 && b.starts_with(b"WP") && b[2].is_ascii_digit() && b[3].is_ascii_digit()
}

/// Is `s` a feature slug (`NNN-lowercase-kebab`)?
pub fn is_feature_slug(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 4
        && b[..3].iter().all(u8::is_ascii_digit)
        && b[3] == b'-'
        && b[4..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulid_rules() {
        assert!(is_ulid("01JMBY7K8N3QRVX2DPFG5HWT4E"));
        assert!(!is_ulid("01JMBY7K8N3QRVX2DPFG5HWT4"), "25 chars");
        assert!(!is_ulid("01jmby7k8n3qrvx2dpfg5hwt4e"), "lower case");
        assert!(!is_ulid("01JMBY7K8N3QRVX2DPFG5HWT4I"), "I is not Crockford");
        assert!(!is_ulid("81JMBY7K8N3QRVX2DPFG5HWT4E"), "overflows 128 bits");
    }
}
