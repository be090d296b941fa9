//! Attribute paths (RFC 7644 §3.10) and PATCH paths (§3.5.2):
//! `[URN ":"] attrName ["." subAttr]` and `attrPath ["[" valFilter "]"] ["." subAttr]`.
//!
//! Parsing only: names keep the client's spelling and are resolved (case-insensitively) through
//! the schema registry by whoever applies the path. The same attribute-path parser serves the
//! filter grammar, which is why its core returns a bare detail string that each caller wraps in
//! its own `scimType` (`invalidPath` here, `invalidFilter` in `filter.rs`).

use std::fmt;

use super::error::{ScimError, ScimResult};
use super::filter::{parse_filter, Filter};

/// An attribute reference as written by the client (original spelling kept; resolve it through
/// `ResourceSchema::resolve`, which ignores case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix, if the client wrote one.
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

/// The target of a PATCH operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    /// `emails[type eq "work"]`: the elements the operation applies to.
    pub filter: Option<Filter>,
    /// `emails[type eq "work"].value`: the sub-attribute after the filter.
    pub sub: Option<String>,
}

/// `$ref` is not an ATTRNAME by the ABNF, yet RFC 7643 uses it as a sub-attribute name
/// (`members.$ref`, `manager.$ref`), so paths must accept it.
const REF_NAME: &str = "$ref";

/// RFC 7644 §3.10: `ATTRNAME = ALPHA *(nameChar)`, `nameChar = "-" / "_" / DIGIT / ALPHA`.
pub(crate) fn is_attr_name(s: &str) -> bool {
    if s.eq_ignore_ascii_case(REF_NAME) {
        return true;
    }
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses `[URN:]name[.sub]`, returning a detail (without `scimType`) on failure so the filter
/// parser can report it as `invalidFilter`.
pub(crate) fn attr_path_detail(input: &str) -> Result<AttrPath, String> {
    if input.is_empty() {
        return Err("empty attribute path".to_string());
    }
    let is_urn = input.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    // URN split rule: the URN runs up to the last ':'; what follows is `name[.sub]`. Dots inside
    // the URN (`…:enterprise:2.0:User`) are therefore never mistaken for a sub-attribute.
    let (urn, rest) = match input.rsplit_once(':') {
        Some((urn, rest)) if is_urn => {
            let body = urn.get(4..).unwrap_or_default();
            if body.is_empty() || body.split(':').any(str::is_empty) {
                return Err(format!("\"{input}\": the schema URN has an empty segment"));
            }
            if let Some(c) = urn.chars().find(|c| c.is_whitespace() || c.is_control() || "\"[]()".contains(*c)) {
                return Err(format!("\"{input}\": character {c:?} is not allowed in a schema URN"));
            }
            (Some(urn.to_string()), rest)
        }
        Some(_) => return Err(format!("\"{input}\": ':' is only allowed after a schema URN (\"urn:…:attribute\")")),
        None => (None, input),
    };
    let mut parts = rest.split('.');
    let name = parts.next().unwrap_or_default();
    let sub = parts.next();
    if parts.next().is_some() {
        return Err(format!("\"{input}\": at most one sub-attribute may follow the attribute name"));
    }
    for part in std::iter::once(name).chain(sub) {
        if !is_attr_name(part) {
            return Err(if part.is_empty() {
                format!("\"{input}\": missing attribute name")
            } else {
                format!("\"{input}\": \"{part}\" is not an attribute name (a letter, then letters, digits, '-' or '_')")
            });
        }
    }
    Ok(AttrPath { urn, name: name.to_string(), sub: sub.map(str::to_string) })
}

/// Parses `[URN:]name[.sub]`.
///
/// # Errors
/// `400 invalidPath` for an empty name or characters outside ATTRNAME.
pub fn parse_attr_path(input: &str) -> ScimResult<AttrPath> {
    attr_path_detail(input.trim()).map_err(|d| ScimError::invalid_path(format!("invalid path {d}")))
}

/// Byte offset of the `]` that closes the `[` at byte offset `open`, skipping quoted strings (a
/// `]` inside `value eq "a]b"` does not close the filter).
fn closing_bracket(input: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in input.get(open..)?.char_indices() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (true, false, _) => {}
            (false, _, '"') => in_string = true,
            (false, _, '[') => depth += 1,
            (false, _, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            (false, _, _) => {}
        }
    }
    None
}

/// Parses a PATCH `path`.
///
/// # Errors
/// `400 invalidPath`, or `invalidFilter` for a bad bracketed filter.
pub fn parse_patch_path(input: &str) -> ScimResult<PatchPath> {
    let input = input.trim();
    let bad = |d: String| ScimError::invalid_path(format!("invalid path \"{input}\": {d}"));
    let Some(open) = input.find('[') else {
        return Ok(PatchPath { attr: parse_attr_path(input)?, filter: None, sub: None });
    };
    let attr = attr_path_detail(&input[..open]).map_err(bad)?;
    if attr.sub.is_some() {
        return Err(bad("a value filter must follow a multi-valued attribute, not a sub-attribute".into()));
    }
    let close = closing_bracket(input, open).ok_or_else(|| bad("'[' is never closed".into()))?;
    // RFC 7644 §3.5.2: `valuePath = attrPath "[" valFilter "]"`; the filter's own errors stay
    // `invalidFilter` so the client learns which half of the path is wrong.
    let filter = parse_filter(&input[open + 1..close])?;
    let sub = match &input[close + 1..] {
        "" => None,
        rest => match rest.strip_prefix('.') {
            Some(s) if is_attr_name(s) => Some(s.to_string()),
            _ => return Err(bad(format!("expected \".subAttribute\" or the end after ']', found \"{rest}\""))),
        },
    };
    Ok(PatchPath { attr, filter: Some(filter), sub })
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::error::ScimType;
    use super::super::filter::CompareOp;
    use super::*;
    use serde_json::json;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn path(urn: Option<&str>, name: &str, sub: Option<&str>) -> AttrPath {
        AttrPath { urn: urn.map(str::to_string), name: name.to_string(), sub: sub.map(str::to_string) }
    }

    #[test]
    fn a_plain_name_has_no_urn_and_no_sub_attribute() {
        assert_eq!(parse_attr_path("userName"), Ok(path(None, "userName", None)));
    }

    #[test]
    fn a_dotted_name_carries_its_sub_attribute() {
        assert_eq!(parse_attr_path("name.givenName"), Ok(path(None, "name", Some("givenName"))));
    }

    #[test]
    fn the_urn_runs_to_the_last_colon_even_when_it_contains_dots() {
        assert_eq!(
            parse_attr_path(&format!("{ENTERPRISE}:employeeNumber")),
            Ok(path(Some(ENTERPRISE), "employeeNumber", None))
        );
        assert_eq!(
            parse_attr_path(&format!("{ENTERPRISE}:manager.value")),
            Ok(path(Some(ENTERPRISE), "manager", Some("value")))
        );
        assert_eq!(
            parse_attr_path("URN:ietf:params:scim:schemas:core:2.0:User:userName"),
            Ok(path(Some("URN:ietf:params:scim:schemas:core:2.0:User"), "userName", None))
        );
    }

    #[test]
    fn the_original_spelling_is_kept() {
        assert_eq!(parse_attr_path("Name.FamilyName"), Ok(path(None, "Name", Some("FamilyName"))));
    }

    #[test]
    fn dollar_ref_is_accepted_as_a_name() {
        assert_eq!(parse_attr_path("members.$ref"), Ok(path(None, "members", Some("$ref"))));
    }

    #[test]
    fn names_with_digits_dashes_and_underscores_are_accepted() {
        assert_eq!(parse_attr_path("x509Certificates"), Ok(path(None, "x509Certificates", None)));
        assert_eq!(parse_attr_path("a-b_c"), Ok(path(None, "a-b_c", None)));
    }

    #[test]
    fn malformed_attribute_paths_are_invalid_paths() {
        for bad in [
            "",
            " ",
            "1abc",
            "-a",
            "a b",
            "a.b.c",
            "a.",
            ".a",
            "a..b",
            "a:b",
            "urn:",
            "urn:x",
            "urn::x",
            "urn:a::b",
            "urn:a:",
            "a[",
            "é",
            "emails[type eq \"x\"]",
            "$refx",
            "a$ref",
        ] {
            let err = parse_attr_path(bad).expect_err(bad);
            assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{bad:?}");
            assert_eq!(err.status, 400);
        }
    }

    #[test]
    fn a_patch_path_without_brackets_is_just_an_attribute_path() {
        let p = parse_patch_path("name.givenName").expect("parses");
        assert_eq!(p, PatchPath { attr: path(None, "name", Some("givenName")), filter: None, sub: None });
        let p = parse_patch_path(&format!("{ENTERPRISE}:manager")).expect("parses");
        assert_eq!(p.attr, path(Some(ENTERPRISE), "manager", None));
    }

    #[test]
    fn a_member_removal_path_carries_its_filter() {
        let p = parse_patch_path("members[value eq \"2819c223\"]").expect("parses");
        assert_eq!(p.attr, path(None, "members", None));
        assert_eq!(p.sub, None);
        assert_eq!(
            p.filter,
            Some(Filter::Compare { path: path(None, "value", None), op: CompareOp::Eq, value: json!("2819c223") })
        );
    }

    #[test]
    fn a_sub_attribute_after_the_filter_is_kept_apart_from_the_attribute() {
        let p = parse_patch_path("emails[type eq \"work\"].value").expect("parses");
        assert_eq!(p.attr, path(None, "emails", None));
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p = parse_patch_path("addresses[type eq \"work\"].streetAddress").expect("parses");
        assert_eq!(p.sub.as_deref(), Some("streetAddress"));
    }

    #[test]
    fn brackets_and_quotes_inside_the_filter_string_do_not_end_it() {
        let p = parse_patch_path(r#"emails[value eq "a]\"[b"].display"#).expect("parses");
        assert_eq!(
            p.filter,
            Some(Filter::Compare { path: path(None, "value", None), op: CompareOp::Eq, value: json!("a]\"[b") })
        );
        assert_eq!(p.sub.as_deref(), Some("display"));
    }

    #[test]
    fn a_urn_qualified_attribute_may_carry_a_filter() {
        let p =
            parse_patch_path("urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq \"work\"]").expect("parses");
        assert_eq!(p.attr, path(Some("urn:ietf:params:scim:schemas:core:2.0:User"), "emails", None));
    }

    #[test]
    fn a_bad_filter_inside_brackets_is_an_invalid_filter() {
        for bad in ["members[value xx \"1\"]", "members[]", "members[value eq]", "emails[type eq \"w\" and]"] {
            let err = parse_patch_path(bad).expect_err(bad);
            assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{bad}");
        }
    }

    #[test]
    fn malformed_patch_paths_are_invalid_paths() {
        for bad in [
            "",
            "emails[type eq \"work\"",
            "emails[type eq \"work\"]value",
            "emails[type eq \"work\"].",
            "emails[type eq \"work\"].a.b",
            "emails[type eq \"work\"][x pr]",
            "emails.value[type eq \"work\"]",
            "[type eq \"work\"]",
            "emails]",
            "emails[type eq \"work]",
        ] {
            let err = parse_patch_path(bad).expect_err(bad);
            assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{bad:?}: {err}");
        }
    }

    #[test]
    fn paths_print_as_they_parse() {
        for text in [
            "userName",
            "name.givenName",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "emails[type eq \"work\"].value",
            "members[value eq \"2819c223\"]",
        ] {
            let p = parse_patch_path(text).expect(text);
            assert_eq!(p.to_string(), text);
            assert_eq!(parse_patch_path(&p.to_string()), Ok(p));
        }
    }
}
