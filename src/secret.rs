//! A secret string (token, password) whose Debug and Display never print it, and the check
//! that refuses a placeholder shipped in an example (`deploy/k8s/secret.yaml`) as a real secret.

use serde::{Deserialize, Deserializer};

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that must send or hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Fragments that mark a value as a placeholder someone forgot to replace (compared ignoring
/// case). Each is far too unlikely in a random token to refuse a real one.
const PLACEHOLDER_FRAGMENTS: &[&str] =
    &["change-me", "change_me", "changeme", "replace", "placeholder", "example", "xxxx", "your-", "your_"];

/// Why `value` looks like a placeholder rather than a secret, or `None`. Caught: the fragments
/// above (so every value shipped in `deploy/k8s/secret.yaml`, which all start `REPLACE-with`),
/// `<...>` templates, `…`, and a value that is one character repeated.
pub fn placeholder_reason(value: &str) -> Option<String> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    if let Some(f) = PLACEHOLDER_FRAGMENTS.iter().find(|f| lower.contains(*f)) {
        return Some(format!("it contains '{f}', so it is a placeholder, not a secret"));
    }
    if (v.contains('<') && v.contains('>')) || v.contains('…') || v.contains("...") {
        return Some("it is a template (<...>), not a secret".into());
    }
    let mut chars = v.chars();
    if let Some(first) = chars.next() {
        if v.chars().count() > 1 && chars.all(|c| c == first) {
            return Some(format!("it is '{first}' repeated, not a secret"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{placeholder_reason, Secret};

    #[test]
    fn placeholders_are_recognised_and_random_tokens_are_not() {
        for p in [
            "REPLACE-with-a-random-token-of-32-characters",
            "change-me-please-0123456789",
            "<your admin token here>",
            "token-xxxxxxxxxxxxxxxx",
            "https://example.com-token",
            "aaaaaaaaaaaaaaaaaaaa",
            "PLACEHOLDER",
            "…",
        ] {
            assert!(placeholder_reason(p).is_some(), "{p}");
        }
        for real in [
            "scb_4f0c9e1b2a7d48c0b1e2f3a4b5c6d7e8",
            "9Qw3nM5kT0pLz8vB2xY4rC6sD1fG7hJ9kL3mN5pQ",
            "test-token-0123456789abcdef",
        ] {
            assert_eq!(placeholder_reason(real), None, "{real}");
        }
    }

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
