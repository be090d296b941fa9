//! Tokens of a SCIM filter (RFC 7644 §3.4.2.2), for `filter.rs`.
//!
//! The lexer knows brackets, parentheses and JSON strings, and nothing else: every other run of
//! characters is a `Word`, and the parser decides from its position whether a word is an
//! attribute path, an operator, `and`/`or`/`not` or an unquoted value. That keeps the lenient
//! extension (unquoted values such as `meta.created gt 2015-10-10T14:38:21-07:00`, which contain
//! `:`, `.`, `-` and `+`) out of the lexer. Positions are counted in characters, not bytes, so an
//! error detail points at the right place for a client that sent non-ASCII text.

use super::error::{ScimError, ScimResult};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok<'a> {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A run of characters up to whitespace, a bracket, a parenthesis or a `"`.
    Word(&'a str),
    /// A JSON string literal, already decoded.
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token<'a> {
    pub tok: Tok<'a>,
    /// Character (not byte) offset of the token's first character, 0-based.
    pub pos: usize,
}

impl Tok<'_> {
    /// How an error detail names this token.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::LParen => "\"(\"".to_string(),
            Tok::RParen => "\")\"".to_string(),
            Tok::LBracket => "\"[\"".to_string(),
            Tok::RBracket => "\"]\"".to_string(),
            Tok::Word(w) => format!("\"{w}\""),
            Tok::Str(s) => format!("the string {}", serde_json::Value::String(s.clone())),
        }
    }
}

fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')
}

/// Splits `input` into tokens.
///
/// # Errors
/// `400 invalidFilter` for an unterminated string or one that is not valid JSON (a bad escape, a
/// raw control character).
pub(super) fn tokenize(input: &str) -> ScimResult<Vec<Token<'_>>> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().enumerate().peekable();
    while let Some((pos, (start, c))) = chars.next() {
        let tok = match c {
            c if c.is_whitespace() => continue,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '"' => {
                // Find the closing quote, skipping escaped characters; serde_json then decodes
                // the literal exactly as JSON would (RFC 7644 §3.4.2.2: compValue is JSON).
                let mut end = None;
                while let Some((_, (i, c))) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end =
                    end.ok_or_else(|| ScimError::invalid_filter(format!("at position {pos}: unterminated string")))?;
                let literal = &input[start..=end];
                let s: String = serde_json::from_str(literal).map_err(|e| {
                    ScimError::invalid_filter(format!("at position {pos}: invalid string literal {literal}: {e}"))
                })?;
                Tok::Str(s)
            }
            _ => {
                let mut end = start + c.len_utf8();
                while let Some((_, (i, c))) = chars.peek() {
                    if ends_word(*c) {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                Tok::Word(&input[start..end])
            }
        };
        tokens.push(Token { tok, pos });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(input: &str) -> Vec<Tok<'_>> {
        tokenize(input).expect("lexes").into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn words_stop_at_brackets_parentheses_and_whitespace() {
        assert_eq!(
            toks("emails[type eq \"work\"] and not(x pr)"),
            vec![
                Tok::Word("emails"),
                Tok::LBracket,
                Tok::Word("type"),
                Tok::Word("eq"),
                Tok::Str("work".into()),
                Tok::RBracket,
                Tok::Word("and"),
                Tok::Word("not"),
                Tok::LParen,
                Tok::Word("x"),
                Tok::Word("pr"),
                Tok::RParen,
            ]
        );
    }

    #[test]
    fn strings_are_decoded_as_json_including_escapes() {
        assert_eq!(toks(r#""a\"b\\c\u00e9]""#), vec![Tok::Str("a\"b\\cé]".into())]);
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let t = tokenize("\"é\" x").expect("lexes");
        assert_eq!(t[1].pos, 4);
    }

    #[test]
    fn unterminated_and_malformed_strings_are_invalid_filters() {
        for bad in ["\"abc", "\"abc\\\"", r#""\q""#, "\"a\u{1}\""] {
            let err = tokenize(bad).expect_err(bad);
            assert_eq!(err.scim_type, Some(super::super::error::ScimType::InvalidFilter), "{bad}");
        }
    }
}
