//! The serial number of a document, derived from its content. (Its timestamp, the only field
//! that depends on when it was made, is `gantry_model::time::now`.)

use sha2::{Digest as _, Sha256};

/// `urn:uuid:` + a name-based UUID of `content`: the first 16 bytes of SHA-256(content) with
/// the version set to 8 and the RFC 9562 variant — RFC 9562 §5.8 / Appendix B.2 describe
/// exactly this "name-based UUIDv8 with SHA-256". Identical content gives an identical serial
/// number; any change gives another.
pub fn serial_number(content: &[u8]) -> String {
    let h = Sha256::digest(content);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_is_a_version_8_uuid_of_the_content() {
        let a = serial_number(b"one");
        assert_eq!(a, serial_number(b"one"));
        assert_ne!(a, serial_number(b"two"));
        let uuid = a.strip_prefix("urn:uuid:").unwrap();
        let parts: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('8'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert!(
            uuid.bytes()
                .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
