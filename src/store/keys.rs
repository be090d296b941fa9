//! Key encodings. Composite keys join parts with 0x00, which cannot occur in ids (UUIDs) and is
//! rejected in userName/displayName/externalId by the SCIM layer's string rules.

pub const SEP: u8 = 0;

pub fn decode_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[8 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    u64::from_be_bytes(buf)
}

pub fn pair(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(SEP);
    k.extend_from_slice(b.as_bytes());
    k
}

pub fn prefix(a: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(SEP);
    k
}

pub fn seq_pair(a: &str, seq: u64) -> Vec<u8> {
    let mut k = prefix(a);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The part after the first separator, as text.
pub fn second(key: &[u8]) -> Option<&str> {
    let pos = key.iter().position(|b| *b == SEP)?;
    std::str::from_utf8(&key[pos + 1..]).ok()
}

/// The part before the first separator, as text.
pub fn first(key: &[u8]) -> Option<&str> {
    let pos = key.iter().position(|b| *b == SEP)?;
    std::str::from_utf8(&key[..pos]).ok()
}

/// An id as the 16-byte UUID the in-memory mirrors keep, if it is one in the canonical form the
/// store writes (lower-case, hyphenated), so the UUID turns back into the same text.
pub fn uuid_of(id: &str) -> Option<uuid::Uuid> {
    if id.len() != 36 || id.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    uuid::Uuid::try_parse(id).ok()
}

/// Folding for unique, case-insensitive indexes: NFKC then Unicode lower case, so look-alike
/// spellings of one name collide (see `scim::identifiers`).
pub fn fold(s: &str) -> String {
    crate::scim::identifiers::fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_split_at_the_separator() {
        assert_eq!(second(&pair("g1", "u1")), Some("u1"));
        assert_eq!(first(&pair("g1", "u1")), Some("g1"));
        assert!(pair("a", "b").starts_with(&prefix("a")));
        assert_eq!(decode_u64(&42u64.to_be_bytes()), 42);
    }

    #[test]
    fn only_canonical_ids_become_uuids() {
        let id = "0192a4e0-0000-7000-8000-00000000000a";
        assert_eq!(uuid_of(id).map(|u| u.hyphenated().to_string()).as_deref(), Some(id));
        for other in ["0192A4E0-0000-7000-8000-00000000000A", "0192a4e000007000800000000000000a", "legacy-7", ""] {
            assert_eq!(uuid_of(other), None, "{other}");
        }
    }

    #[test]
    fn folding_is_unicode_aware() {
        assert_eq!(fold("ÅSA@X.COM"), "åsa@x.com");
    }
}
