//! SCIM filters (RFC 7644 §3.4.2.2): the full grammar parsed into a typed tree, evaluated against
//! resources held as JSON.
//!
//! Precedence: grouping, then `not`, then `and`, then `or`. Attribute names and operators are
//! case-insensitive; value comparison follows the attribute's `caseExact` (RFC 7643 §2.2).
//! Lenient where real IdPs are sloppy: unquoted values (`externalId eq jyoung`), `not(` with or
//! without a space. Anything else that does not parse is `400 invalidFilter`, never ignored:
//! a filter silently read as "everyone" would make an IdP's match-by-`userName` pick the wrong
//! user.
//!
//! The tree is what `store/` consumes (index lookups for `userName eq`, `externalId eq`) and what
//! `matches` evaluates for everything else; its `Display` prints a canonical form that parses
//! back to the same tree. Names are resolved through the schema registry at evaluation time, so
//! an attribute the schema does not know simply never matches. Input is hostile: nesting and
//! length are bounded so no filter can exhaust the stack.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde_json::Value;

use super::error::{ScimError, ScimResult};
use super::filter_lexer::{tokenize, Tok, Token};
use super::path::{attr_path_detail, AttrPath};
use super::schema::{AttrDef, AttrType, Container, ResourceSchema};

/// Deepest nesting of parentheses, `not (…)` and value filters. Real IdP filters nest two or
/// three levels; the bound keeps a hostile `((((…` from recursing the parser off the stack.
pub const MAX_NESTING: usize = 32;

/// Most attribute expressions in one filter. `and`/`or` chains are parsed in a loop, but they
/// build a tree as deep as the chain is long, and evaluating, printing and dropping it recurse.
pub const MAX_TERMS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    const ALL: [CompareOp; 9] = [
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

    /// The operator as the RFC spells it (lower case).
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// An operator keyword in any case (RFC 7644 §3.4.2.2: "attribute operators … are case
    /// insensitive").
    pub fn from_keyword(word: &str) -> Option<CompareOp> {
        Self::ALL.into_iter().find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    /// `co`, `sw`, `ew`: defined on strings only.
    pub fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }

    /// `gt`, `ge`, `lt`, `le`.
    pub fn is_ordering(self) -> bool {
        matches!(self, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le)
    }

    /// Whether `ord` (attribute value compared with the filter's value) satisfies the operator;
    /// the substring operators are not orderings and never hold here.
    fn holds(self, ord: Ordering) -> bool {
        match self {
            CompareOp::Eq => ord == Ordering::Equal,
            CompareOp::Ne => ord != Ordering::Equal,
            CompareOp::Gt => ord == Ordering::Greater,
            CompareOp::Ge => ord != Ordering::Less,
            CompareOp::Lt => ord == Ordering::Less,
            CompareOp::Le => ord != Ordering::Greater,
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attrPath op compValue`; `value` is the JSON literal (string, number, bool or null).
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Value,
    },
    /// `attrPath pr`
    Present(AttrPath),
    /// `attrPath "[" valFilter "]"`: some element of the multi-valued attribute matches `filter`,
    /// whose paths are relative to the element.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

/// Parses a filter expression.
///
/// # Errors
/// `400 invalidFilter` with a detail naming the position and what was expected.
pub fn parse_filter(input: &str) -> ScimResult<Filter> {
    let mut parser = Parser {
        tokens: tokenize(input)?,
        next: 0,
        end: input.chars().count(),
        nesting: 0,
        terms: 0,
        in_value_filter: false,
    };
    if parser.tokens.is_empty() {
        return Err(ScimError::invalid_filter("the filter is empty"));
    }
    let filter = parser.or_expr()?;
    if parser.peek().is_some() {
        return Err(parser.expected("\"and\", \"or\" or the end of the filter"));
    }
    // The limits hold for the canonical form too, so a filter we accept always prints (`Display`)
    // to one we accept. Only Entra's `emails[a or b].value eq "x"` prints deeper than it was
    // written (`emails[(a or b) and value eq "x"]`); everything else prints at most as deep.
    if printed_depth(&filter) > MAX_NESTING {
        return Err(ScimError::invalid_filter(format!(
            "nested more than {MAX_NESTING} levels deep (counting the parentheses of its standard form)"
        )));
    }
    Ok(filter)
}

fn err_at(pos: usize, detail: impl fmt::Display) -> ScimError {
    ScimError::invalid_filter(format!("at position {pos}: {detail}"))
}

/// A recursive-descent parser over the tokens, one method per precedence level of
/// RFC 7644 §3.4.2.2 (`or` < `and` < `not`/grouping < attribute expression).
struct Parser<'a> {
    tokens: Vec<Token<'a>>,
    next: usize,
    /// Character length of the input: the position reported for "found the end".
    end: usize,
    nesting: usize,
    terms: usize,
    /// Inside `attr[…]`: valFilter does not allow another value path (RFC 7644 §3.4.2.2 ABNF).
    in_value_filter: bool,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Token<'a>> {
        self.tokens.get(self.next)
    }

    fn peek_tok(&self) -> Option<&Tok<'a>> {
        self.peek().map(|t| &t.tok)
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek_tok(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    /// "at position N: expected X, found Y" for the next token.
    fn expected(&self, what: &str) -> ScimError {
        match self.peek() {
            Some(t) => err_at(t.pos, format!("expected {what}, found {}", t.tok.describe())),
            None => err_at(self.end, format!("expected {what}, found the end of the filter")),
        }
    }

    /// `FILTER SP "or" SP FILTER`, left-associative.
    fn or_expr(&mut self) -> ScimResult<Filter> {
        let mut left = self.and_expr()?;
        while self.at_keyword("or") {
            self.next += 1;
            let right = self.and_expr()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `FILTER SP "and" SP FILTER`, left-associative, binding tighter than `or`.
    fn and_expr(&mut self) -> ScimResult<Filter> {
        let mut left = self.unary()?;
        while self.at_keyword("and") {
            self.next += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `"(" FILTER ")"`, `"not" "(" FILTER ")"` or an attribute expression.
    fn unary(&mut self) -> ScimResult<Filter> {
        match self.peek_tok() {
            Some(Tok::LParen) => {
                self.next += 1;
                self.group(&Tok::RParen, "\")\"")
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") => {
                self.next += 1;
                if self.peek_tok() != Some(&Tok::LParen) {
                    return Err(self.expected("\"(\" after \"not\" (the grammar is not (filter))"));
                }
                self.next += 1;
                Ok(Filter::Not(Box::new(self.group(&Tok::RParen, "\")\"")?)))
            }
            Some(Tok::Word(w)) if !w.eq_ignore_ascii_case("and") && !w.eq_ignore_ascii_case("or") => self.attr_expr(),
            _ => Err(self.expected("an attribute name, \"(\" or \"not\"")),
        }
    }

    /// The inside of a group whose opening token was just consumed, up to and including `close`.
    fn group(&mut self, close: &Tok<'_>, close_name: &str) -> ScimResult<Filter> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            let pos = self.tokens.get(self.next.saturating_sub(1)).map_or(0, |t| t.pos);
            return Err(err_at(pos, format!("nested more than {MAX_NESTING} levels deep")));
        }
        let inner = self.or_expr()?;
        if self.peek_tok() != Some(close) {
            return Err(self.expected(&format!("\"and\", \"or\" or {close_name}")));
        }
        self.next += 1;
        self.nesting -= 1;
        Ok(inner)
    }

    /// `attrPath SP "pr"`, `attrPath SP compareOp SP compValue` or `attrPath "[" valFilter "]"`.
    fn attr_expr(&mut self) -> ScimResult<Filter> {
        let Some(Token { tok: Tok::Word(word), pos }) = self.peek().cloned() else {
            return Err(self.expected("an attribute name"));
        };
        self.next += 1;
        let path = attr_path_detail(word).map_err(|d| err_at(pos, format!("invalid attribute path {d}")))?;
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(err_at(pos, format!("more than {MAX_TERMS} attribute expressions")));
        }
        match self.peek_tok() {
            Some(Tok::LBracket) => {
                if self.in_value_filter {
                    return Err(self.expected("an operator (value filters cannot be nested)"));
                }
                if path.sub.is_some() {
                    return Err(err_at(pos, "a value filter follows an attribute, not a sub-attribute"));
                }
                self.next += 1;
                self.in_value_filter = true;
                let mut filter = self.group(&Tok::RBracket, "\"]\"")?;
                self.in_value_filter = false;
                if let Some(sub_test) = self.value_path_sub_attr()? {
                    filter = Filter::And(Box::new(filter), Box::new(sub_test));
                }
                Ok(Filter::ValuePath { path, filter: Box::new(filter) })
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                self.next += 1;
                Ok(Filter::Present(path))
            }
            Some(Tok::Word(w)) => match CompareOp::from_keyword(w) {
                Some(op) => {
                    self.next += 1;
                    let value = self.comp_value()?;
                    Ok(Filter::Compare { path, op, value })
                }
                None => Err(self.expected("an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr)")),
            },
            _ => Err(self.expected("an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr) or \"[\"")),
        }
    }

    /// Entra's matching filter `emails[type eq "work"].value eq "…"` (MS-TUT "/Users": every
    /// matching attribute must be filterable): not in the RFC 7644 ABNF, which allows a
    /// sub-attribute after a value filter only in PATCH paths. Read as a condition on the same
    /// element, so the whole is `emails[type eq "work" and value eq "…"]`. `None` when no
    /// `.sub` follows the closing bracket.
    fn value_path_sub_attr(&mut self) -> ScimResult<Option<Filter>> {
        let Some(Token { tok: Tok::Word(word), pos }) = self.peek().cloned() else {
            return Ok(None);
        };
        let Some(sub) = word.strip_prefix('.') else {
            return Ok(None);
        };
        let sub_path = attr_path_detail(sub)
            .ok()
            .filter(|p| p.urn.is_none() && p.sub.is_none())
            .ok_or_else(|| err_at(pos, format!("invalid sub-attribute \"{word}\" after a value filter")))?;
        // An attribute expression like any other: it is one in the printed form.
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(err_at(pos, format!("more than {MAX_TERMS} attribute expressions")));
        }
        self.next += 1;
        match self.peek_tok() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                self.next += 1;
                Ok(Some(Filter::Present(sub_path)))
            }
            Some(Tok::Word(w)) => match CompareOp::from_keyword(w) {
                Some(op) => {
                    self.next += 1;
                    let value = self.comp_value()?;
                    Ok(Some(Filter::Compare { path: sub_path, op, value }))
                }
                None => Err(self.expected("an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr)")),
            },
            _ => Err(self.expected("an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr)")),
        }
    }

    /// `compValue = false / null / true / number / string`, plus unquoted strings (lenient).
    fn comp_value(&mut self) -> ScimResult<Value> {
        let value = match self.peek_tok() {
            Some(Tok::Str(s)) => Value::String(s.clone()),
            Some(Tok::Word(w)) => bare_value(w),
            _ => return Err(self.expected("a value (a quoted string, a number, true, false or null)")),
        };
        self.next += 1;
        Ok(value)
    }
}

/// An unquoted value: the JSON literals keep their meaning; anything else is the string as
/// written (Entra's documentation and Microsoft's Postman collection send `externalId eq jyoung`).
/// A number is a number only if it prints back exactly as written, so `1.50` or `007` (an id?)
/// stay strings and nothing the client wrote is lost.
fn bare_value(word: &str) -> Value {
    match word {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => match serde_json::from_str::<Value>(word) {
            Ok(Value::Number(n)) if n.to_string() == word => Value::Number(n),
            _ => Value::String(word.to_string()),
        },
    }
}

impl fmt::Display for Filter {
    /// Lower-case operators, JSON-quoted values, and parentheses only where the tree needs them
    /// (an `or` under an `and`, a right-nested chain), so the output parses back to `self`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn part(f: &mut fmt::Formatter<'_>, filter: &Filter, parens: bool) -> fmt::Result {
            if parens {
                write!(f, "({filter})")
            } else {
                write!(f, "{filter}")
            }
        }
        match self {
            Filter::Or(a, b) => {
                part(f, a, false)?;
                f.write_str(" or ")?;
                part(f, b, matches!(**b, Filter::Or(..)))
            }
            Filter::And(a, b) => {
                part(f, a, matches!(**a, Filter::Or(..)))?;
                f.write_str(" and ")?;
                part(f, b, matches!(**b, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            // `Value`'s Display is compact JSON: strings come out quoted and escaped.
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

/// How many levels of parentheses and brackets `Display` prints around the deepest part of
/// `filter`: the `nesting` that `parse_filter` counts when it reads the printed form back. Mirrors
/// the `part(…, parens)` choices of `Display`.
fn printed_depth(filter: &Filter) -> usize {
    let is_or = |f: &Filter| usize::from(matches!(f, Filter::Or(..)));
    let is_chain = |f: &Filter| usize::from(matches!(f, Filter::Or(..) | Filter::And(..)));
    match filter {
        Filter::Or(a, b) => printed_depth(a).max(printed_depth(b) + is_or(b)),
        Filter::And(a, b) => (printed_depth(a) + is_or(a)).max(printed_depth(b) + is_chain(b)),
        Filter::Not(inner) | Filter::ValuePath { filter: inner, .. } => printed_depth(inner) + 1,
        Filter::Compare { .. } | Filter::Present(_) => 0,
    }
}

/// Where a filter's paths are resolved: against a whole resource and its schema, or against one
/// element of a multi-valued complex attribute (the inside of `emails[…]`).
#[derive(Clone, Copy)]
enum Scope<'a> {
    Resource(&'a Value, &'a ResourceSchema),
    Element(&'a Value, &'a AttrDef),
}

/// Stands in for the resource when only definitions are needed (`validate`).
static NO_VALUE: Value = Value::Null;

impl<'a> Scope<'a> {
    /// The attribute `path` names (its sub-attribute is left to the caller) and its value, or
    /// `None` if the schema does not know it.
    fn resolve(self, path: &AttrPath) -> Option<(&'a AttrDef, Option<&'a Value>)> {
        match self {
            Scope::Resource(resource, schema) => {
                let (container, def) = schema.resolve(path.urn.as_deref(), &path.name)?;
                // RFC 7643 §3.3: extension attributes live in an object keyed by the schema URN.
                let holder = match container {
                    Container::Core => Some(resource),
                    Container::Extension(urn) => get_ci(resource, urn),
                };
                Some((def, holder.and_then(|h| get_ci(h, &def.name))))
            }
            Scope::Element(element, parent) => {
                if path.urn.is_some() {
                    return None;
                }
                let def = parent.sub(&path.name)?;
                Some((def, get_ci(element, &def.name)))
            }
        }
    }
}

impl Filter {
    /// Whether `resource` (a whole User or Group as JSON) matches.
    pub fn matches(&self, resource: &Value, schema: &ResourceSchema) -> bool {
        self.eval(Scope::Resource(resource, schema))
    }

    /// Whether one element of the multi-valued complex attribute `parent` matches; paths in the
    /// filter name sub-attributes of `parent` (the inside of `emails[type eq "work"]`).
    pub fn matches_element(&self, element: &Value, parent: &AttrDef) -> bool {
        self.eval(Scope::Element(element, parent))
    }

    fn eval(&self, scope: Scope<'_>) -> bool {
        match self {
            Filter::And(a, b) => a.eval(scope) && b.eval(scope),
            Filter::Or(a, b) => a.eval(scope) || b.eval(scope),
            Filter::Not(inner) => !inner.eval(scope),
            Filter::Present(path) => {
                scope.resolve(path).is_some_and(|(def, value)| is_present_at(def, value, path.sub.as_deref()))
            }
            Filter::Compare { path, op, value } => scope
                .resolve(path)
                .is_some_and(|(def, found)| compare_attr(def, found, path.sub.as_deref(), *op, value)),
            Filter::ValuePath { path, filter } => {
                let Some((def, value)) = scope.resolve(path) else {
                    return false;
                };
                if matches!(scope, Scope::Element(..)) || def.kind != AttrType::Complex || path.sub.is_some() {
                    return false;
                }
                // "any element matches" — and every condition must hold for the same element.
                elements(value).iter().any(|e| filter.eval(Scope::Element(e, def)))
            }
        }
    }

    /// Rejects comparisons the schema forbids (ordering on booleans or binaries), as RFC 7644
    /// §3.4.2.2 asks, before any resource is read.
    ///
    /// # Errors
    /// `400 invalidFilter`.
    pub fn validate(&self, schema: &ResourceSchema) -> ScimResult<()> {
        self.check(Scope::Resource(&NO_VALUE, schema))
    }

    fn check(&self, scope: Scope<'_>) -> ScimResult<()> {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => a.check(scope).and_then(|()| b.check(scope)),
            Filter::Not(inner) => inner.check(scope),
            Filter::Present(_) => Ok(()),
            Filter::Compare { path, op, .. } => {
                let target = scope.resolve(path).and_then(|(def, _)| comparison_target(def, path.sub.as_deref()));
                match target {
                    // RFC 7644 §3.4.2.2: gt/ge/lt/le on Boolean or Binary "MUST" fail with
                    // invalidFilter; co/sw/ew on a Boolean has no meaning either.
                    Some(t)
                        if (op.is_ordering() && matches!(t.kind, AttrType::Boolean | AttrType::Binary))
                            || (op.is_substring() && t.kind == AttrType::Boolean) =>
                    {
                        let kind = format!("{:?}", t.kind).to_lowercase();
                        Err(ScimError::invalid_filter(format!(
                            "\"{op}\" cannot be applied to the {kind} attribute \"{path}\""
                        )))
                    }
                    _ => Ok(()),
                }
            }
            Filter::ValuePath { path, filter } => match scope.resolve(path) {
                Some((def, _)) => filter.check(Scope::Element(&NO_VALUE, def)),
                None => Ok(()),
            },
        }
    }
}

/// A JSON key, case-insensitively (RFC 7643 §2.1); the exact spelling is tried first because
/// stored resources use the canonical names.
fn get_ci<'v>(holder: &'v Value, key: &str) -> Option<&'v Value> {
    let object = holder.as_object()?;
    object.get(key).or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// The values of an attribute: the elements of an array, or the single value.
fn elements(value: Option<&Value>) -> &[Value] {
    match value {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => &[],
        Some(single) => std::slice::from_ref(single),
    }
}

/// `pr` (RFC 7644 §3.4.2.2): "has a non-empty value, or … contains a non-empty node". Null, "",
/// [] and {} are all unassigned (RFC 7643 §2.5).
fn is_present(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(items)) => items.iter().any(|v| is_present(Some(v))),
        Some(Value::Object(fields)) => fields.values().any(|v| is_present(Some(v))),
        Some(_) => true,
    }
}

/// Presence of an attribute, or of a sub-attribute in any of its values.
fn is_present_at(def: &AttrDef, value: Option<&Value>, sub: Option<&str>) -> bool {
    match sub {
        None => is_present(value),
        Some(s) => def.sub(s).is_some_and(|sd| elements(value).iter().any(|e| is_present(get_ci(e, &sd.name)))),
    }
}

/// The definition values are compared under: the named sub-attribute, or for a complex
/// attribute named alone its `value` sub-attribute (`emails eq "x"`, `manager eq "id"`).
fn comparison_target<'d>(def: &'d AttrDef, sub: Option<&str>) -> Option<&'d AttrDef> {
    match sub {
        Some(s) => def.sub(s),
        None if def.kind == AttrType::Complex => def.sub("value"),
        None => Some(def),
    }
}

/// `attrPath op compValue` against an attribute's value. A multi-valued attribute matches if any
/// of its values does (RFC 7644 §3.4.2.2).
fn compare_attr(def: &AttrDef, found: Option<&Value>, sub: Option<&str>, op: CompareOp, comp: &Value) -> bool {
    if sub.is_some_and(|s| def.sub(s).is_none()) {
        return false;
    }
    if comp.is_null() {
        // Unassigned and null are equivalent (RFC 7643 §2.5): `eq null` asks "absent?".
        let present = is_present_at(def, found, sub);
        return match op {
            CompareOp::Eq => !present,
            CompareOp::Ne => present,
            _ => false,
        };
    }
    let Some(target) = comparison_target(def, sub) else {
        return false;
    };
    let values: Vec<&Value> = if std::ptr::eq(target, def) {
        elements(found).iter().filter(|v| !v.is_null()).collect()
    } else {
        elements(found).iter().flat_map(|e| elements(get_ci(e, &target.name))).filter(|v| !v.is_null()).collect()
    };
    if values.is_empty() {
        // An absent attribute is not equal to anything, and matches nothing else.
        return op == CompareOp::Ne;
    }
    values.into_iter().any(|v| compare_value(v, target, op, comp))
}

/// One value against `comp`, by the attribute's type (RFC 7643 §2.3) and `caseExact` (§2.2).
fn compare_value(value: &Value, def: &AttrDef, op: CompareOp, comp: &Value) -> bool {
    match def.kind {
        // Entra sends booleans as "True"/"False" (idp-scim.md §0 item 2); accept either form.
        AttrType::Boolean => match (as_bool(value), as_bool(comp)) {
            (Some(a), Some(b)) if op == CompareOp::Eq => a == b,
            (Some(a), Some(b)) if op == CompareOp::Ne => a != b,
            _ => false,
        },
        AttrType::Integer | AttrType::Decimal if !op.is_substring() => match numeric_cmp(value, comp) {
            Some(ord) => op.holds(ord),
            None => compare_text(value, comp, op, def.case_exact),
        },
        AttrType::DateTime if !op.is_substring() => match (instant(value), instant(comp)) {
            (Some(a), Some(b)) => op.holds(a.cmp(&b)),
            _ => compare_text(value, comp, op, def.case_exact),
        },
        _ => compare_text(value, comp, op, def.case_exact),
    }
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Integers compare exactly; anything else (decimals, numeric strings) as f64.
fn numeric_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    fn int(v: &Value) -> Option<i64> {
        match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
    fn float(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
    if let (Some(x), Some(y)) = (int(a), int(b)) {
        return Some(x.cmp(&y));
    }
    float(a)?.partial_cmp(&float(b)?)
}

/// An xsd:dateTime as an instant (RFC 7643 §2.3.5). RFC 3339 first; a value without an offset is
/// read as UTC rather than falling back to string order.
fn instant(value: &Value) -> Option<DateTime<FixedOffset>> {
    let s = value.as_str()?.trim();
    DateTime::parse_from_rfc3339(s)
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc().fixed_offset()))
}

/// A scalar as text, so an unquoted `externalId eq 12345` still finds the string "12345".
fn text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

/// String comparison; `caseExact: false` folds with Unicode `to_lowercase`, not ASCII only.
/// Ordering is lexicographic by code point.
fn compare_text(value: &Value, comp: &Value, op: CompareOp, case_exact: bool) -> bool {
    let (Some(a), Some(b)) = (text(value), text(comp)) else {
        return false;
    };
    let (a, b) = if case_exact { (a, b) } else { (Cow::Owned(a.to_lowercase()), Cow::Owned(b.to_lowercase())) };
    match op {
        CompareOp::Co => a.contains(&*b),
        CompareOp::Sw => a.starts_with(&*b),
        CompareOp::Ew => a.ends_with(&*b),
        _ => op.holds(a.cmp(&b)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::error::ScimType;
    use super::super::schema::Schema;
    use super::*;
    use serde_json::json;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

    /// A small User resource type with one attribute of every kind the evaluator distinguishes.
    fn user_schema() -> ResourceSchema {
        let core: Schema = serde_json::from_value(json!({
            "id": CORE_USER,
            "attributes": [
                {"name": "userName", "type": "string"},
                {"name": "displayName", "type": "string"},
                {"name": "title", "type": "string"},
                {"name": "active", "type": "boolean"},
                {"name": "loginCount", "type": "integer"},
                {"name": "score", "type": "decimal"},
                {"name": "photo", "type": "binary"},
                {"name": "name", "type": "complex", "subAttributes": [
                    {"name": "givenName", "type": "string"},
                    {"name": "familyName", "type": "string"}
                ]},
                {"name": "emails", "type": "complex", "multiValued": true, "subAttributes": [
                    {"name": "value", "type": "string"},
                    {"name": "type", "type": "string"},
                    {"name": "primary", "type": "boolean"}
                ]},
                {"name": "nicknames", "type": "string", "multiValued": true}
            ]
        }))
        .expect("core schema");
        let enterprise: Schema = serde_json::from_value(json!({
            "id": ENTERPRISE,
            "attributes": [
                {"name": "employeeNumber", "type": "string"},
                {"name": "manager", "type": "complex", "subAttributes": [
                    {"name": "value", "type": "string", "caseExact": true},
                    {"name": "$ref", "type": "reference"},
                    {"name": "displayName", "type": "string"}
                ]}
            ]
        }))
        .expect("enterprise schema");
        ResourceSchema::from_parts("User", "/Users", core, vec![enterprise])
    }

    fn group_schema() -> ResourceSchema {
        let core: Schema = serde_json::from_value(json!({
            "id": "urn:ietf:params:scim:schemas:core:2.0:Group",
            "attributes": [
                {"name": "displayName", "type": "string"},
                {"name": "members", "type": "complex", "multiValued": true, "subAttributes": [
                    {"name": "value", "type": "string", "caseExact": true},
                    {"name": "display", "type": "string"}
                ]}
            ]
        }))
        .expect("group schema");
        ResourceSchema::from_parts("Group", "/Groups", core, vec![])
    }

    fn babs() -> Value {
        json!({
            "schemas": [CORE_USER, ENTERPRISE],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "bjensen",
            "userName": "Bjensen@Example.com",
            "displayName": "Babs Jensen",
            "active": true,
            "loginCount": 10,
            "score": 2.5,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "nicknames": ["Babs", "B"],
            "title": "",
            "meta": {"created": "2015-10-10T21:38:21Z", "lastModified": "2011-05-13T04:42:34Z"},
            ENTERPRISE: {
                "employeeNumber": "701984",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
            }
        })
    }

    fn parse(input: &str) -> Filter {
        parse_filter(input).unwrap_or_else(|e| panic!("{input:?} should parse: {e}"))
    }

    fn matches(input: &str) -> bool {
        parse(input).matches(&babs(), &user_schema())
    }

    fn attr(name: &str) -> AttrPath {
        AttrPath { urn: None, name: name.to_string(), sub: None }
    }

    fn pr(name: &str) -> Filter {
        Filter::Present(attr(name))
    }

    fn and(a: Filter, b: Filter) -> Filter {
        Filter::And(Box::new(a), Box::new(b))
    }

    fn or(a: Filter, b: Filter) -> Filter {
        Filter::Or(Box::new(a), Box::new(b))
    }

    fn not(a: Filter) -> Filter {
        Filter::Not(Box::new(a))
    }

    fn assert_invalid_filter(input: &str) -> ScimError {
        match parse_filter(input) {
            Err(e) => {
                assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidFilter)), "{input:?}: {e}");
                e
            }
            Ok(f) => panic!("{input:?} should be rejected, parsed as {f:?}"),
        }
    }

    // Grammar and precedence (RFC 7644 §3.4.2.2).

    #[test]
    fn and_binds_tighter_than_or_on_either_side() {
        assert_eq!(parse("a pr or b pr and c pr"), or(pr("a"), and(pr("b"), pr("c"))));
        assert_eq!(parse("a pr and b pr or c pr"), or(and(pr("a"), pr("b")), pr("c")));
    }

    #[test]
    fn and_and_or_chains_are_left_associative() {
        assert_eq!(parse("a pr and b pr and c pr"), and(and(pr("a"), pr("b")), pr("c")));
        assert_eq!(parse("a pr or b pr or c pr"), or(or(pr("a"), pr("b")), pr("c")));
    }

    #[test]
    fn not_applies_only_to_its_parenthesised_group() {
        assert_eq!(parse("not (a pr) and b pr"), and(not(pr("a")), pr("b")));
        assert_eq!(parse("not(a pr or b pr)"), not(or(pr("a"), pr("b"))));
        assert_eq!(parse("b pr or not (a pr) and c pr"), or(pr("b"), and(not(pr("a")), pr("c"))));
    }

    #[test]
    fn parentheses_override_precedence() {
        assert_eq!(parse("(a pr or b pr) and c pr"), and(or(pr("a"), pr("b")), pr("c")));
        assert_eq!(parse("((a pr))"), pr("a"));
    }

    #[test]
    fn every_comparison_operator_parses_in_any_case() {
        for op in CompareOp::ALL {
            for spelled in [op.as_str().to_string(), op.as_str().to_uppercase()] {
                let f = parse(&format!("title {spelled} \"x\""));
                assert_eq!(f, Filter::Compare { path: attr("title"), op, value: json!("x") });
            }
        }
        assert_eq!(parse("title PR"), pr("title"));
    }

    #[test]
    fn keywords_are_case_insensitive_and_extra_whitespace_is_tolerated() {
        assert_eq!(parse("  a   pr   AND  NOT  ( b pr )   Or c pr "), or(and(pr("a"), not(pr("b"))), pr("c")));
        assert_eq!(parse("a pr\tand\nb pr"), and(pr("a"), pr("b")));
    }

    #[test]
    fn a_sub_attribute_after_a_value_filter_is_a_condition_on_the_same_element() {
        // Regression: Entra matches on `emails[type eq "work"].value eq "…"` (MS-TUT "/Users").
        let f = parse(r#"emails[type eq "work"].value eq "babs@example.com""#);
        assert_eq!(f, parse(r#"emails[type eq "work" and value eq "babs@example.com"]"#));
        assert_eq!(parse(r#"emails[type eq "work"].value pr"#), parse(r#"emails[type eq "work" and value pr]"#));
        assert_invalid_filter(r#"emails[type eq "work"].value"#);
        assert_invalid_filter(r#"emails[type eq "work"].value.x eq "a""#);
        assert_invalid_filter(r#"emails[type eq "work"]. eq "a""#);
    }

    #[test]
    fn value_paths_parse_with_their_inner_filter() {
        let f = parse("emails[type eq \"work\" and value co \"@x\"]");
        let inner = and(
            Filter::Compare { path: attr("type"), op: CompareOp::Eq, value: json!("work") },
            Filter::Compare { path: attr("value"), op: CompareOp::Co, value: json!("@x") },
        );
        assert_eq!(f, Filter::ValuePath { path: attr("emails"), filter: Box::new(inner) });
    }

    #[test]
    fn urn_qualified_paths_split_at_the_last_colon() {
        let f = parse(&format!("{ENTERPRISE}:manager.value eq \"x\""));
        let Filter::Compare { path, .. } = f else { panic!("compare") };
        assert_eq!(path.urn.as_deref(), Some(ENTERPRISE));
        assert_eq!((path.name.as_str(), path.sub.as_deref()), ("manager", Some("value")));
    }

    #[test]
    fn compare_values_are_json_literals() {
        let value = |input: &str| match parse(input) {
            Filter::Compare { value, .. } => value,
            other => panic!("{other:?}"),
        };
        assert_eq!(value(r#"a eq "x\"y\u00e9""#), json!("x\"yé"));
        assert_eq!(value("a eq 42"), json!(42));
        assert_eq!(value("a eq -1.5"), json!(-1.5));
        assert_eq!(value("a eq true"), json!(true));
        assert_eq!(value("a eq false"), json!(false));
        assert_eq!(value("a eq null"), Value::Null);
        assert_eq!(value("a eq \"\""), json!(""));
    }

    #[test]
    fn unquoted_values_are_taken_as_strings() {
        let value = |input: &str| match parse(input) {
            Filter::Compare { value, .. } => value,
            other => panic!("{other:?}"),
        };
        assert_eq!(value("externalId eq jyoung"), json!("jyoung"));
        assert_eq!(value("userName sw O"), json!("O"));
        assert_eq!(
            value("meta.created gt 2015-10-10T14:38:21.8617979-07:00"),
            json!("2015-10-10T14:38:21.8617979-07:00")
        );
        assert_eq!(value("a eq True"), json!("True"));
        // Numbers that would not print back as written stay strings, so nothing is lost.
        assert_eq!(value("a eq 1.50"), json!("1.50"));
        assert_eq!(value("a eq 007"), json!("007"));
        assert_eq!(parse("(externalId eq jyoung)"), parse("externalId eq \"jyoung\""));
        assert_eq!(parse("emails[type eq work]"), parse("emails[type eq \"work\"]"), "a bare value ends at ']'");
    }

    // Errors.

    #[test]
    fn garbage_is_rejected_as_invalid_filter() {
        for bad in [
            "",
            "   ",
            "userName",
            "userName eq",
            "userName xx \"a\"",
            "userName equals \"a\"",
            "userName eq \"a\" and",
            "userName eq \"a\" or",
            "and userName eq \"a\"",
            "userName eq \"a\" and or title pr",
            "(userName eq \"a\"",
            "userName eq \"a\")",
            "((userName pr)",
            "()",
            "not userName pr",
            "not",
            "not ()",
            "userName eq \"a\" title pr",
            "userName eq \"a\" garbage",
            "userName eq \"unterminated",
            "userName eq \"bad \\q escape\"",
            "userName pr pr",
            "emails[type eq \"work\"",
            "emails[type eq \"work\"]]",
            "emails[]",
            "emails[emails[type pr]]",
            "emails.value[type pr]",
            "[type pr]",
            "]",
            "\"userName\" eq \"a\"",
            "1userName eq \"a\"",
            "user name eq \"a\"",
            "name.givenName.x eq \"a\"",
            "foo:bar eq \"a\"",
            "urn: eq \"a\"",
            "userName eq (\"a\")",
            "userName eq [a]",
            "userName eq \"a\" and (title pr",
            "userName eq \"a\" not (title pr)",
        ] {
            assert_invalid_filter(bad);
        }
    }

    #[test]
    fn error_details_name_the_position_and_what_was_expected() {
        let e = assert_invalid_filter("userName eq \"a\" and");
        assert!(e.detail.contains("position 19"), "{}", e.detail);
        assert!(e.detail.contains("expected an attribute name"), "{}", e.detail);
        let e = assert_invalid_filter("userName xx \"a\"");
        assert!(e.detail.contains("position 9") && e.detail.contains("operator"), "{}", e.detail);
        let e = assert_invalid_filter("(userName pr");
        assert!(e.detail.contains("\")\"") && e.detail.contains("end of the filter"), "{}", e.detail);
    }

    #[test]
    fn deep_nesting_is_rejected_instead_of_recursing() {
        let parens = format!("{}a pr{}", "(".repeat(64), ")".repeat(64));
        assert_invalid_filter(&parens);
        let nots = format!("{}a pr{}", "not (".repeat(64), ")".repeat(64));
        assert_invalid_filter(&nots);
        assert_invalid_filter(&"(".repeat(100_000));
        let ok = format!("{}a pr{}", "not (".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(parse_filter(&ok).is_ok());
    }

    #[test]
    fn long_chains_are_bounded_and_the_longest_accepted_one_evaluates_and_prints() {
        let chain = |n: usize| vec!["userName eq \"x\""; n].join(" or ");
        assert_invalid_filter(&chain(MAX_TERMS + 1));
        let f = parse(&chain(MAX_TERMS));
        assert!(!f.matches(&babs(), &user_schema()));
        assert!(f.validate(&user_schema()).is_ok());
        assert_eq!(parse(&f.to_string()), f);
    }

    // Evaluation.

    #[test]
    fn user_name_compares_case_insensitively() {
        assert!(matches("userName eq \"bjensen@example.com\""));
        assert!(matches("userName eq \"BJENSEN@EXAMPLE.COM\""));
        assert!(!matches("userName eq \"bjensen\""));
    }

    #[test]
    fn case_insensitive_comparison_folds_unicode_not_just_ascii() {
        let user = json!({"userName": "Émile.Ğüneş"});
        assert!(parse("userName eq \"émile.ğüneş\"").matches(&user, &user_schema()));
        assert!(parse("userName sw \"ÉMILE\"").matches(&user, &user_schema()));
    }

    #[test]
    fn id_and_external_id_compare_case_exactly() {
        assert!(matches("externalId eq \"bjensen\""));
        assert!(!matches("externalId eq \"BJensen\""));
        assert!(matches("id eq \"2819c223-7f76-453a-919d-413861904646\""));
        assert!(!matches("id eq \"2819C223-7F76-453A-919D-413861904646\""));
    }

    #[test]
    fn attribute_names_and_json_keys_are_case_insensitive() {
        assert!(matches("USERNAME EQ \"bjensen@example.com\""));
        assert!(matches("DisplayName eq \"Babs Jensen\""));
        assert!(matches("name.FamilyName eq \"Jensen\""));
        let shouty = json!({"USERNAME": "x", "Name": {"GIVENNAME": "Y"}});
        assert!(parse("userName eq \"x\" and name.givenName eq \"y\"").matches(&shouty, &user_schema()));
    }

    #[test]
    fn substring_operators_follow_case_exactness() {
        assert!(matches("userName co \"JENSEN\""));
        assert!(matches("userName sw \"bj\""));
        assert!(matches("userName ew \"EXAMPLE.COM\""));
        assert!(!matches("userName sw \"example\""));
        assert!(matches("externalId co \"jen\""));
        assert!(!matches("externalId co \"JEN\""));
        assert!(matches("title co \"\""), "every string contains the empty string");
    }

    #[test]
    fn ne_is_true_for_different_or_absent_values_but_unknown_attributes_never_match() {
        assert!(matches("displayName ne \"Someone Else\""));
        assert!(!matches("displayName ne \"babs jensen\""));
        assert!(!matches("name.middleName ne \"x\""), "not in the schema");
        assert!(parse("displayName ne \"x\"").matches(&json!({}), &user_schema()));
        assert!(!matches("nickName ne \"x\""));
        assert!(!matches("nickName eq \"x\""));
        assert!(matches("not (nickName eq \"x\")"));
    }

    #[test]
    fn string_ordering_is_lexicographic() {
        assert!(matches("displayName gt \"Babs\""));
        assert!(matches("displayName ge \"babs jensen\""));
        assert!(matches("displayName lt \"c\""));
        assert!(matches("displayName le \"Babs Jensen\""));
        assert!(!matches("displayName lt \"Babs\""));
    }

    #[test]
    fn date_times_compare_as_instants_across_offsets() {
        // 14:38:21.86-07:00 is 21:38:21.86Z, just after `created`; as strings it would sort before.
        assert!(!matches("meta.created gt 2015-10-10T14:38:21.8617979-07:00"));
        assert!(matches("meta.created lt \"2015-10-10T14:38:21.8617979-07:00\""));
        assert!(matches("meta.created eq \"2015-10-10T23:38:21+02:00\""));
        assert!(matches("meta.created ge \"2015-10-10T21:38:21\""), "no offset reads as UTC");
        assert!(matches("meta.lastModified le \"2011-05-13T04:42:34Z\""));
        assert!(matches("meta.created sw \"2015-10\""));
        assert!(matches("meta.created gt \"2015-09\""), "unparseable values compare as strings");
    }

    #[test]
    fn integers_and_decimals_compare_numerically() {
        assert!(matches("loginCount gt 5"), "10 > 5 though \"10\" < \"5\"");
        assert!(matches("loginCount eq 10"));
        assert!(matches("loginCount le \"10\""));
        assert!(!matches("loginCount lt 10"));
        assert!(matches("score gt 2.25"));
        assert!(matches("score eq 2.5"));
        assert!(matches("score lt 10"));
        assert!(matches("score eq 2.50"), "an unquoted 2.50 is kept as text but still numeric");
    }

    #[test]
    fn booleans_support_eq_and_ne_and_accept_string_spellings() {
        assert!(matches("active eq true"));
        assert!(!matches("active eq false"));
        assert!(matches("active ne false"));
        assert!(matches("active eq \"True\""));
        assert!(matches("active eq True"));
        assert!(!matches("active gt false"));
        let entra = json!({"active": "False"});
        assert!(parse("active eq false").matches(&entra, &user_schema()));
    }

    #[test]
    fn present_means_a_non_empty_value() {
        assert!(matches("userName pr"));
        assert!(matches("emails pr"));
        assert!(matches("name pr"));
        assert!(matches("emails.type pr"));
        assert!(!matches("title pr"), "an empty string is unassigned");
        assert!(!matches("nickName pr"));
        let empty = json!({"emails": [], "name": {}, "displayName": null, "nicknames": [null]});
        for f in ["emails pr", "name pr", "displayName pr", "nicknames pr", "name.givenName pr"] {
            assert!(!parse(f).matches(&empty, &user_schema()), "{f}");
        }
    }

    #[test]
    fn eq_null_asks_whether_the_attribute_is_absent() {
        assert!(matches("title eq null"));
        assert!(!matches("name.middleName eq null"), "unknown attribute");
        assert!(!matches("userName eq null"));
        assert!(matches("userName ne null"));
        assert!(!matches("title ne null"));
        assert!(!matches("userName gt null"));
    }

    #[test]
    fn a_multi_valued_attribute_matches_if_any_value_matches() {
        assert!(matches("emails.value eq \"babs@jensen.org\""), "the second email, not only the first");
        assert!(matches("emails.type eq \"home\""));
        assert!(matches("nicknames eq \"b\""));
        assert!(!matches("emails.value eq \"nobody@example.com\""));
    }

    #[test]
    fn a_complex_attribute_without_sub_attribute_compares_its_value() {
        assert!(matches("emails eq \"BJENSEN@example.com\""));
        assert!(matches("emails co \"jensen.org\""));
        assert!(matches(&format!("{ENTERPRISE}:manager eq \"26118915-6090-4610-87e4-49d8ca9f808d\"")));
        assert!(!matches("name eq \"Barbara\""), "name has no value sub-attribute");
    }

    #[test]
    fn a_value_path_needs_one_element_to_satisfy_every_condition() {
        assert!(matches("emails[type eq \"work\" and value co \"@example.com\"]"));
        assert!(
            !matches("emails[type eq \"work\" and value co \"@jensen.org\"]"),
            "conditions met by different emails"
        );
        assert!(matches("emails[type eq \"home\" or primary eq true]"));
        assert!(matches("emails[not (type eq \"work\")]"));
        assert!(matches("emails[primary pr] and userName pr"));
        assert!(!matches("emails[display pr]"), "unknown sub-attribute");
        assert!(!matches("userName[value pr]"), "not a complex attribute");
        assert!(matches("name[givenName eq \"barbara\"]"), "a single complex value is one element");
    }

    #[test]
    fn urn_qualified_attributes_resolve_into_their_extension() {
        assert!(matches(&format!("{ENTERPRISE}:employeeNumber eq \"701984\"")));
        assert!(matches(&format!("{ENTERPRISE}:manager.value eq \"26118915-6090-4610-87e4-49d8ca9f808d\"")));
        assert!(!matches(&format!("{ENTERPRISE}:manager.value eq \"26118915-6090-4610-87E4-49D8CA9F808D\"")));
        assert!(matches(&format!("{}:EMPLOYEENUMBER eq \"701984\"", ENTERPRISE.to_uppercase())));
        assert!(!matches("employeeNumber eq \"701984\""), "unqualified, it is not a core attribute");
    }

    #[test]
    fn core_attributes_may_be_qualified_with_the_core_schema_urn() {
        assert!(matches(&format!("{CORE_USER}:userName eq \"bjensen@example.com\"")));
        assert!(matches(&format!("{CORE_USER}:name.givenName eq \"Barbara\"")));
        assert!(matches(&format!("{CORE_USER}:id pr")));
    }

    #[test]
    fn unquoted_values_evaluate_like_quoted_strings() {
        assert!(matches("externalId eq bjensen"));
        assert!(matches("userName sw B"));
        let numeric_external = json!({"externalId": "12345"});
        assert!(parse("externalId eq 12345").matches(&numeric_external, &user_schema()));
    }

    #[test]
    fn group_members_are_found_by_value() {
        let group = json!({
            "displayName": "Admins",
            "members": [{"value": "u1", "display": "One"}, {"value": "2819c223", "display": "Two"}]
        });
        let g = group_schema();
        assert!(parse("members[value eq \"2819c223\"]").matches(&group, &g));
        assert!(parse("members.value eq \"u1\"").matches(&group, &g));
        assert!(!parse("members.value eq \"U1\"").matches(&group, &g), "member ids are case-exact");
        assert!(parse("displayName eq \"admins\"").matches(&group, &g));
    }

    #[test]
    fn matches_element_resolves_paths_against_the_parent_attribute() {
        let schema = user_schema();
        let (_, emails) = schema.resolve(None, "emails").expect("emails");
        let work = json!({"value": "bjensen@example.com", "type": "work", "primary": true});
        assert!(parse("type eq \"WORK\" and primary eq true").matches_element(&work, emails));
        assert!(!parse("type eq \"home\"").matches_element(&work, emails));
        assert!(!parse("userName pr").matches_element(&work, emails), "not a sub-attribute");
        assert!(!parse(&format!("{CORE_USER}:type pr")).matches_element(&work, emails));
    }

    #[test]
    fn anything_but_an_object_matches_nothing() {
        for resource in [json!(null), json!([]), json!("userName"), json!(3)] {
            assert!(!parse("userName pr").matches(&resource, &user_schema()));
        }
    }

    // Validation.

    #[test]
    fn validation_rejects_ordering_on_booleans_and_binaries_and_substrings_on_booleans() {
        let schema = user_schema();
        for bad in [
            "active gt true",
            "active le false",
            "photo lt \"AAAA\"",
            "active co \"t\"",
            "active sw \"t\"",
            "emails[primary ge true]",
            "userName pr or not (emails.primary gt false)",
        ] {
            let err = parse(bad).validate(&schema).expect_err(bad);
            assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{bad}");
        }
    }

    #[test]
    fn validation_accepts_sensible_and_unknown_comparisons() {
        let schema = user_schema();
        for ok in [
            "active eq true",
            "photo eq \"AAAA\"",
            "photo pr",
            "loginCount gt 3",
            "meta.created gt \"2015-01-01T00:00:00Z\"",
            "unknownThing gt true",
            "emails[type eq \"work\"]",
            "urn:example:unknown:thing gt 1",
        ] {
            assert_eq!(parse(ok).validate(&schema), Ok(()), "{ok}");
        }
    }

    // Display.

    #[test]
    fn display_prints_a_canonical_form_that_parses_back_to_the_same_tree() {
        for input in [
            "userName eq \"bjensen\"",
            "USERNAME EQ bjensen",
            "a pr or b pr and c pr",
            "(a pr or b pr) and c pr",
            "a pr and (b pr and c pr)",
            "a pr or (b pr or c pr)",
            "a pr and b pr and c pr",
            "not (a pr) and not(b pr or c pr)",
            "emails[type eq \"work\" and value co \"@x\"] or userName sw O",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"x\"",
            "title eq \"quote \\\" backslash \\\\ tab \\t é\"",
            "loginCount ge 10 and score lt -2.5 and active eq false and title eq null",
            "meta.created gt 2015-10-10T14:38:21.8617979-07:00",
            "a eq 1.50",
        ] {
            let tree = parse(input);
            let printed = tree.to_string();
            assert_eq!(parse(&printed), tree, "{input:?} printed as {printed:?}");
            assert_eq!(parse(&printed).to_string(), printed, "canonical form is stable");
        }
        assert_eq!(parse("NOT(a PR) AND b Eq x").to_string(), "not (a pr) and b eq \"x\"");
        assert_eq!(parse("(a pr or b pr) and (c pr and d pr)").to_string(), "(a pr or b pr) and (c pr and d pr)");
    }

    #[test]
    fn mangled_inputs_never_panic() {
        let seeds = [
            "emails[type eq \"work\" and value co \"@x\"] or not (userName sw \"O\")",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"x\\u00e9\"",
            "meta.created gt 2015-10-10T14:38:21.8617979-07:00 and loginCount le 10",
            "(a pr or (b pr and not(c eq null))) and emails[primary eq true]",
            "userName eq \"é\u{1F600}\" and name.givenName ne true",
        ];
        let specials = ['(', ')', '[', ']', '"', '\\', ' ', ':', '.', 'é', '\u{0}', '\u{1F600}', 'n', 'o', 't'];
        let schema = user_schema();
        let resource = babs();
        let check = |input: &str| {
            if let Ok(f) = parse_filter(input) {
                let _ = f.matches(&resource, &schema);
                let _ = f.validate(&schema);
                let printed = f.to_string();
                assert_eq!(parse_filter(&printed).as_ref(), Ok(&f), "{input:?} -> {printed:?}");
            }
        };
        // Deterministic pseudo-random edits on top of every truncation, deletion and insertion.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rand = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut count = 0;
        for seed in seeds {
            let chars: Vec<char> = seed.chars().collect();
            for i in 0..=chars.len() {
                check(&chars[..i].iter().collect::<String>());
                check(&chars[i..].iter().collect::<String>());
                if i < chars.len() {
                    let mut deleted = chars.clone();
                    deleted.remove(i);
                    check(&deleted.iter().collect::<String>());
                }
                for c in specials {
                    let mut inserted = chars.clone();
                    inserted.insert(i, c);
                    check(&inserted.iter().collect::<String>());
                    count += 1;
                }
            }
            for _ in 0..2000 {
                let mut mangled = chars.clone();
                for _ in 0..1 + rand(4) {
                    let at = rand(mangled.len() + 1);
                    match rand(3) {
                        0 if at < mangled.len() => {
                            mangled.remove(at);
                        }
                        1 => mangled.insert(at, specials[rand(specials.len())]),
                        _ => {
                            let from = rand(chars.len());
                            mangled.insert(at, chars[from]);
                        }
                    }
                }
                check(&mangled.iter().collect::<String>());
                count += 1;
            }
        }
        assert!(count > 10_000);
    }

    // Round-trip bug, reproduced with the fuzz target `filter_parser` (fuzz/README.md): Entra's
    // sub-attribute form `emails[a or b].value eq "x"` prints as `emails[(a or b) and value eq "x"]`,
    // one level deeper and one attribute expression more than it was written, so at either limit
    // the parser accepted a filter whose own print it then rejected.

    #[test]
    fn entra_sub_attribute_form_at_the_nesting_limit_must_not_print_past_it() {
        let nested = |levels: usize| {
            format!(
                "{}emails[type eq \"a\" or type eq \"b\"].value eq \"x\"{}",
                "not(".repeat(levels),
                ")".repeat(levels)
            )
        };
        // 31 `not(` + the brackets = 32 levels as written, 33 once printed: rejected.
        let err = parse_filter(&nested(MAX_NESTING - 1)).expect_err("its print would be too deep");
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
        assert!(err.detail.contains("nested more than"), "{}", err.detail);
        // One level less fits, printed too.
        let tree = parse(&nested(MAX_NESTING - 2));
        assert_eq!(parse(&tree.to_string()), tree);
    }

    #[test]
    fn entra_sub_attribute_test_counts_against_the_term_limit() {
        let chain = |filler: usize| format!("{}emails[type eq \"a\"].value eq \"x\"", "a pr and ".repeat(filler));
        // filler + `emails` + `type` + `.value` = MAX_TERMS + 1 expressions: rejected.
        let err = parse_filter(&chain(MAX_TERMS - 2)).expect_err("one expression too many");
        assert!(err.detail.contains("attribute expressions"), "{}", err.detail);
        let tree = parse(&chain(MAX_TERMS - 3));
        assert_eq!(parse(&tree.to_string()), tree);
    }
}
