//! Property: a SCIM filter (RFC 7644 §3.4.2.2) survives printing. Every tree the parser can
//! produce prints (`Display`) to text that parses back to the same tree, and any text the parser
//! accepts prints to text that parses back to what it parsed. `store/` and the audit log rely on
//! the printed form meaning exactly what the client sent.
//!
//! Failing seeds are kept in `tests/filter_roundtrip.proptest-regressions` and replayed first.

use proptest::prelude::*;
use proptest::string::string_regex;
use scimbridge::scim::filter::{parse_filter, CompareOp, Filter};
use scimbridge::scim::path::AttrPath;
use serde_json::{Number, Value};

const OPS: [CompareOp; 9] = [
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Co,
    CompareOp::Sw,
    CompareOp::Ew,
    CompareOp::Gt,
    CompareOp::Ge,
    CompareOp::Lt,
    CompareOp::Le,
];

/// Words the grammar reserves where an attribute expression may start (`not (…)`, and the
/// connectives); a bare attribute of that name cannot be written, so the parser never yields one.
fn is_reserved(name: &str) -> bool {
    ["and", "or", "not"].iter().any(|w| w.eq_ignore_ascii_case(name))
}

/// `ATTRNAME = ALPHA *(nameChar)` (RFC 7644 §3.10), plus the `$ref` that RFC 7643 uses.
fn attr_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => string_regex("[a-zA-Z][a-zA-Z0-9_-]{0,12}").expect("regex"),
        2 => prop::sample::select(vec![
            "userName", "emails", "value", "type", "primary", "displayName", "members", "meta", "lastModified",
            "externalId", "active", "name", "givenName", "NOT", "pr", "eq", "urn", "$ref", "$REF",
        ])
        .prop_map(str::to_string),
    ]
}

/// `urn:…` up to the last `:` before the attribute: real schema URNs and arbitrary segments with
/// dots, digits and non-ASCII letters (anything but whitespace, controls, quotes and brackets).
fn urn() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "URN:IETF:params:scim:schemas:core:2.0:Group",
        ])
        .prop_map(str::to_string),
        (prop::sample::select(vec!["urn", "URN", "Urn"]), prop::collection::vec("[a-zA-Z0-9.\\-_é日]{1,6}", 1..4))
            .prop_map(|(head, segments)| format!("{head}:{}", segments.join(":"))),
    ]
}

fn attr_path(allow_sub: bool) -> impl Strategy<Value = AttrPath> {
    let sub = if allow_sub { prop::option::weighted(0.3, attr_name()).boxed() } else { Just(None).boxed() };
    (prop::option::weighted(0.2, urn()), attr_name(), sub)
        .prop_map(|(urn, name, sub)| AttrPath { urn, name, sub })
        .prop_filter("a bare and/or/not is a keyword, not an attribute", |p| {
            p.urn.is_some() || p.sub.is_some() || !is_reserved(&p.name)
        })
}

/// A number exactly as the parser keeps one: the unquoted literal must print back as written,
/// otherwise it stays a string. Integers always do; a float does when serde_json reads its own
/// shortest form back to the same bits.
fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        prop::num::f64::NORMAL.prop_filter_map("serde_json reads the number back as printed", |f| {
            let n = Number::from_f64(f)?;
            let back: Number = serde_json::from_str(&n.to_string()).ok()?;
            (back.to_string() == n.to_string()).then_some(n)
        }),
        prop::sample::select(vec![0.5, -0.0, 1e300, 2.5e-8, 100.0]).prop_filter_map("finite", Number::from_f64),
    ]
}

fn comp_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => any::<String>().prop_map(Value::String),
        2 => string_regex(r#"[a-z"\\/\[\]() \x00-\x1f\x7fé\u{2028}\u{1F600}]{0,12}"#).expect("regex").prop_map(Value::String),
        1 => prop::sample::select(vec!["true", "false", "null", "1", "007", "1.50", "and", "", "2015-10-10T14:38:21-07:00"])
            .prop_map(|s| Value::String(s.to_string())),
        2 => number().prop_map(Value::Number),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
}

fn compare_or_present(allow_sub: bool) -> impl Strategy<Value = Filter> {
    prop_oneof![
        3 => (attr_path(allow_sub), prop::sample::select(OPS.to_vec()), comp_value())
            .prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
        1 => attr_path(allow_sub).prop_map(Filter::Present),
    ]
}

/// Trees of and/or/not over `leaf`.
fn combine(leaf: BoxedStrategy<Filter>, depth: u32) -> BoxedStrategy<Filter> {
    leaf.prop_recursive(depth, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
    .boxed()
}

/// Any filter tree the grammar can express: a value path (`emails[…]`) follows an attribute
/// without a sub-attribute and holds no other value path.
fn filter_tree() -> impl Strategy<Value = Filter> {
    let value_filter = combine(compare_or_present(true).boxed(), 3);
    let value_path = (attr_path(false), value_filter)
        .prop_map(|(path, filter)| Filter::ValuePath { path, filter: Box::new(filter) });
    let leaf = prop_oneof![3 => compare_or_present(true), 1 => value_path].boxed();
    combine(leaf, 5)
}

/// Random choices for [`render`], consumed in a cycle.
struct Noise<'a> {
    bytes: &'a [u8],
    next: usize,
}

impl Noise<'_> {
    fn pick<'s>(&mut self, options: &[&'s str]) -> &'s str {
        let b = self.bytes.get(self.next % self.bytes.len().max(1)).copied().unwrap_or(0);
        self.next += 1;
        options[usize::from(b) % options.len()]
    }

    fn chance(&mut self, in_256: u8) -> bool {
        let b = self.bytes.get(self.next % self.bytes.len().max(1)).copied().unwrap_or(0);
        self.next += 1;
        b < in_256
    }

    fn gap(&mut self) -> &'static str {
        self.pick(&[" ", " ", " ", "  ", "\t", "\u{a0}", "\u{2028}", " \n "])
    }

    fn case(&mut self, word: &str) -> String {
        match self.pick(&["lower", "lower", "upper", "title"]) {
            "upper" => word.to_uppercase(),
            "title" => word[..1].to_uppercase() + &word[1..],
            _ => word.to_string(),
        }
    }
}

/// Writes `tree` the way clients do, not the canonical way: keywords in any case, any
/// whitespace, redundant parentheses, `not(` without a space, unquoted values, Entra's
/// `emails[type eq "work"].value eq "x"`. The result need not parse back to `tree`: the property
/// only asks that whatever it parses to survives printing.
fn render(tree: &Filter, noise: &mut Noise<'_>) -> String {
    let wrap = |inner: String, noise: &mut Noise<'_>, needed: bool| {
        if needed || noise.chance(24) {
            format!("({inner})")
        } else {
            inner
        }
    };
    match tree {
        Filter::And(a, b) | Filter::Or(a, b) => {
            let (word, is_and) = if matches!(tree, Filter::And(..)) { ("and", true) } else { ("or", false) };
            let left = render(a, noise);
            let left = wrap(left, noise, is_and && matches!(**a, Filter::Or(..)));
            let right = render(b, noise);
            let right = wrap(right, noise, matches!(**b, Filter::Or(..)) || (is_and && matches!(**b, Filter::And(..))));
            format!("{left}{}{}{}{right}", noise.gap(), noise.case(word), noise.gap())
        }
        Filter::Not(inner) => format!("{}{}({})", noise.case("not"), noise.pick(&["", " "]), render(inner, noise)),
        Filter::Present(path) => format!("{path}{}{}", noise.gap(), noise.case("pr")),
        Filter::Compare { path, op, value } => {
            let value = match value {
                Value::String(s) if noise.chance(64) && !s.is_empty() => s.clone(),
                other => other.to_string(),
            };
            format!("{path}{}{}{}{value}", noise.gap(), noise.case(op.as_str()), noise.gap())
        }
        Filter::ValuePath { path, filter } => match &**filter {
            Filter::And(first, last) if noise.chance(96) => match &**last {
                Filter::Compare { path: sub, .. } | Filter::Present(sub) if sub.urn.is_none() && sub.sub.is_none() => {
                    let inner = render(first, noise);
                    format!("{path}[{inner}].{}", render(last, noise))
                }
                _ => format!("{path}[{}]", render(filter, noise)),
            },
            _ => format!("{path}[{}]", render(filter, noise)),
        },
    }
}

/// Filter-shaped text: generated trees written the way clients write them, sometimes with one
/// character cut out or doubled so that parsing fails (or succeeds) in unexpected places.
fn filter_text() -> impl Strategy<Value = String> {
    (
        filter_tree(),
        prop::collection::vec(any::<u8>(), 1..64),
        prop::option::weighted(0.3, any::<prop::sample::Index>()),
        any::<bool>(),
    )
        .prop_map(|(tree, bytes, cut, double)| {
            let text = render(&tree, &mut Noise { bytes: &bytes, next: 0 });
            let Some(at) = cut else { return text };
            let chars: Vec<char> = text.chars().collect();
            let at = at.index(chars.len());
            let mut out: String = chars[..at].iter().collect();
            if double {
                out.push(chars[at]);
                out.push(chars[at]);
            }
            out.extend(&chars[at + 1..]);
            out
        })
}

/// The heart of both properties: printed text parses to `tree` and prints identically again.
fn assert_prints_back(tree: &Filter, origin: &str) -> Result<(), TestCaseError> {
    let printed = tree.to_string();
    let again = parse_filter(&printed)
        .map_err(|e| TestCaseError::fail(format!("{origin}: the print {printed:?} does not parse: {}", e.detail)))?;
    prop_assert_eq!(&again, tree, "{}: printed as {:?}", origin, printed);
    prop_assert_eq!(again.to_string(), printed, "{}: printing is not stable", origin);
    Ok(())
}

/// 2048 cases a property by default; `PROPTEST_CASES=100000 cargo test --test integration filter_roundtrip`
/// for a longer hunt.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2048);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_generated_filter_tree_prints_and_parses_back_to_itself(tree in filter_tree()) {
        assert_prints_back(&tree, "generated tree")?;
    }

    #[test]
    fn any_filter_text_the_parser_accepts_prints_back_to_the_same_tree(text in filter_text()) {
        if let Ok(tree) = parse_filter(&text) {
            assert_prints_back(&tree, &format!("{text:?}"))?;
        }
    }

    #[test]
    fn arbitrary_text_never_panics_and_what_parses_prints_back(text in "\\PC{0,40}") {
        if let Ok(tree) = parse_filter(&text) {
            assert_prints_back(&tree, &format!("{text:?}"))?;
        }
    }
}

/// Enough of `filter_text` parses for the second property to mean something.
#[test]
fn enough_generated_filter_text_parses_for_the_property_to_mean_something() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = filter_text();
    let parsed = (0..2000)
        .filter(|_| {
            let text = strategy.new_tree(&mut runner).expect("generates").current();
            parse_filter(&text).is_ok()
        })
        .count();
    eprintln!("{parsed} of 2000 generated texts parse");
    assert!(parsed >= 400, "only {parsed} of 2000 generated texts parse; the strategy needs work");
}
