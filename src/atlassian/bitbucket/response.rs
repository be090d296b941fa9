//! Pure reading of Bitbucket answers: paged group lists.

use serde_json::Value;

/// One page of `more-members`: the group names and the next page start, if any.
pub(super) fn group_page(body: &Value) -> (Vec<String>, Option<u64>) {
    let names = body
        .get("values")
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(|g| g.get("name").and_then(Value::as_str)).map(str::to_string).collect())
        .unwrap_or_default();
    let last = body.get("isLastPage").and_then(Value::as_bool).unwrap_or(true);
    let next = if last { None } else { body.get("nextPageStart").and_then(Value::as_u64) };
    (names, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn group_pages_are_followed_until_the_last() {
        let (names, next) = group_page(&json!({"values": [{"name": "a"}, {"name": "b"}],
            "isLastPage": false, "nextPageStart": 2}));
        assert_eq!((names, next), (vec!["a".to_string(), "b".to_string()], Some(2)));
        assert_eq!(group_page(&json!({"values": [], "isLastPage": true})).1, None);
    }
}
