//! Rules for the strings that identify people and groups (`userName`, group `displayName`,
//! `externalId`): they become unique keys here and usernames in Atlassian, so characters that
//! are invisible or that reorder text are refused, and uniqueness compares a folded form
//! (Unicode NFKC, then lower case) in which look-alikes such as full-width letters collide.
//! Cross-script homoglyphs (Latin "a" vs Cyrillic "а") stay distinct: they are different names
//! in every product we deliver to, and refusing non-Latin scripts would lock real people out.

use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

use super::error::{ScimError, ScimResult};

/// The identifying attributes checked on every write.
pub const IDENTIFIERS: [&str; 3] = ["userName", "displayName", "externalId"];

/// Longest identifier accepted, in characters.
pub const MAX_IDENTIFIER_CHARS: usize = 512;

/// Characters that render as nothing or change text direction (zero-width, bidi controls,
/// word joiners, BOM). A name carrying one can look identical to another name.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Refuses control characters (NUL included), invisible or direction-changing characters, blank
/// values and overlong values in the identifying attributes.
///
/// # Errors
/// 400 `invalidValue` naming the attribute and the offending character's code point.
pub fn check_identifiers(attrs: &Map<String, Value>) -> ScimResult<()> {
    for name in IDENTIFIERS {
        let Some(Value::String(v)) = attrs.get(name) else { continue };
        if let Some(c) = v.chars().find(|c| c.is_control() || is_invisible(*c)) {
            return Err(ScimError::invalid_value(format!(
                "{name} contains the invisible or control character U+{:04X}, which is not allowed in names.",
                c as u32
            )));
        }
        if v.chars().count() > MAX_IDENTIFIER_CHARS {
            return Err(ScimError::invalid_value(format!("{name} is longer than {MAX_IDENTIFIER_CHARS} characters.")));
        }
        if name != "externalId" && v.trim().is_empty() {
            return Err(ScimError::invalid_value(format!("{name} must not be blank.")));
        }
    }
    Ok(())
}

/// The form unique names are compared in: NFKC, then Unicode lower case.
pub fn fold(s: &str) -> String {
    // ASCII is unchanged by NFKC; skipping it spares every IdP lookup the Unicode tables.
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.nfkc().collect::<String>().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn full_width_and_case_variants_fold_to_the_same_name() {
        assert_eq!(fold("ＡＤＭＩＮ"), fold("admin"));
        assert_eq!(fold("Åsa"), fold("åsa"));
        assert_ne!(fold("аdmin"), fold("admin"), "Cyrillic а is a different letter");
    }

    #[test]
    fn invisible_control_and_bidi_characters_are_refused_in_names() {
        for bad in ["ad\u{200B}min", "adm\u{0000}in", "ad\u{202E}nim", "\u{FEFF}admin", "a\tb"] {
            let e = check_identifiers(&attrs(json!({"userName": bad}))).expect_err(bad);
            assert_eq!(e.status, 400);
            assert!(e.detail.contains("U+"), "{}", e.detail);
        }
        assert!(check_identifiers(&attrs(json!({"externalId": "x\u{0000}y"}))).is_err());
        assert!(check_identifiers(&attrs(json!({"userName": "   "}))).is_err());
        assert!(check_identifiers(&attrs(json!({"userName": "josé.müller@例え.jp", "externalId": ""}))).is_ok());
        assert!(check_identifiers(&attrs(json!({"userName": "x".repeat(513)}))).is_err());
    }
}
