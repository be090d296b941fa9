//! List and search parameters (RFC 7644 §3.4.2, §3.4.3) from a query string or a
//! `SearchRequest` body, validated into one `ListParams`.

use serde_json::Value;

use crate::config::Limits;
use crate::scim::filter::{parse_filter, Filter};
use crate::scim::path::{parse_attr_path, AttrPath};
use crate::scim::projection::Projection;
use crate::scim::{ScimError, ScimResult};

/// Query string pairs, in order, with names as sent.
pub type Pairs = Vec<(String, String)>;

/// `application/x-www-form-urlencoded` decoding (`+` is a space, invalid UTF-8 becomes U+FFFD),
/// the decoding actix's `Query` extractor uses, without its serde layer: this runs on every list.
pub fn parse_pairs(query: &str) -> Pairs {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A parameter by name, case-insensitively (clients differ in `startIndex` vs `startindex`).
pub fn param<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

pub struct ListParams {
    pub filter: Option<Filter>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    pub start_index: usize,
    pub count: usize,
    pub projection: Projection,
}

fn int_param(name: &str, v: Option<&Value>) -> ScimResult<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| ScimError::invalid_value(format!("{name} must be an integer.")))
        }
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, not '{s}'."))),
        Some(_) => Err(ScimError::invalid_value(format!("{name} must be an integer."))),
    }
}

fn list_param(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
        _ => None,
    }
}

impl ListParams {
    /// From a query string.
    ///
    /// # Errors
    /// 400 `invalidFilter` or `invalidValue` with the parameter named.
    pub fn from_query(pairs: &Pairs, limits: &Limits) -> ScimResult<ListParams> {
        let get = |n: &str| param(pairs, n).map(|s| Value::String(s.to_string()));
        Self::build(
            get("filter").as_ref(),
            get("sortBy").as_ref(),
            get("sortOrder").as_ref(),
            get("startIndex").as_ref(),
            get("count").as_ref(),
            get("attributes").as_ref(),
            get("excludedAttributes").as_ref(),
            limits,
        )
    }

    /// From a `SearchRequest` body (POST `/.search`).
    ///
    /// # Errors
    /// As `from_query`, plus 400 `invalidSyntax` if the body is not an object.
    pub fn from_search(body: &Value, limits: &Limits) -> ScimResult<ListParams> {
        let obj =
            body.as_object().ok_or_else(|| ScimError::invalid_syntax("A SearchRequest must be a JSON object."))?;
        let get = |n: &str| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        Self::build(
            get("filter").as_ref(),
            get("sortBy").as_ref(),
            get("sortOrder").as_ref(),
            get("startIndex").as_ref(),
            get("count").as_ref(),
            get("attributes").as_ref(),
            get("excludedAttributes").as_ref(),
            limits,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        filter: Option<&Value>,
        sort_by: Option<&Value>,
        sort_order: Option<&Value>,
        start_index: Option<&Value>,
        count: Option<&Value>,
        attributes: Option<&Value>,
        excluded: Option<&Value>,
        limits: &Limits,
    ) -> ScimResult<ListParams> {
        let filter = match filter {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.len() > limits.max_filter_length => {
                return Err(ScimError::invalid_filter(format!(
                    "The filter is longer than {} characters.",
                    limits.max_filter_length
                )))
            }
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(parse_filter(s)?),
            Some(_) => return Err(ScimError::invalid_filter("filter must be a string.")),
        };
        let sort_by = match sort_by.and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() => Some(parse_attr_path(s.trim())?),
            _ => None,
        };
        let descending = match sort_order.and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("ascending") => false,
            Some("descending") => true,
            Some(other) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder must be ascending or descending, not '{other}'."
                )))
            }
        };
        // RFC 7644 §3.4.2.4: startIndex < 1 is 1, a negative count is 0.
        let start_index = int_param("startIndex", start_index)?.unwrap_or(1).max(1) as usize;
        let count =
            int_param("count", count)?.map(|c| c.max(0) as usize).unwrap_or(limits.max_results).min(limits.max_results);
        let projection = Projection::parse(list_param(attributes).as_deref(), list_param(excluded).as_deref())?;
        Ok(ListParams { filter, sort_by, descending, start_index, count, projection })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_form_decoded_in_order() {
        let pairs = parse_pairs("filter=userName%20eq%20%22a+b%40x.com%22&startIndex=2&count&%FF=x");
        assert_eq!(param(&pairs, "filter"), Some("userName eq \"a b@x.com\""));
        assert_eq!(param(&pairs, "STARTINDEX"), Some("2"));
        assert_eq!(param(&pairs, "count"), Some(""));
        assert_eq!(pairs[3].0, "\u{FFFD}");
    }
}
