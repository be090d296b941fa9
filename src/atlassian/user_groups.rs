//! The groups one account belongs to in a target ([`Connector::groups_of`]), for the reports of
//! lifecycle runs: the admin reviewing who a cleanup deactivates wants to see what access each
//! account has. One documented read per product (atlassian-dc.md, "Groups of user"):
//!
//! - Jira: `GET /rest/api/2/user?username=&expand=groups` (`groups.items[].name`), the same call
//!   as `Connector::account`.
//! - Confluence: `GET /rest/api/user/memberof?username=&start=&limit=` (10.0.3 OpenAPI), paged
//!   `{results[].name, _links.next}`.
//! - Crowd: `GET /rest/usermanagement/1/user/group/direct?username=&start-index=&max-results=`
//!   (Crowd REST usermanagement, `{"groups":[{"name"}]}`), a short page is the last.
//! - Bitbucket: `GET /rest/api/1.0/admin/users/more-members?context=&start=&limit=` (8.14
//!   OpenAPI), paged `{values[].name, isLastPage, nextPageStart}`.
//!
//! An account the target does not have (404) belongs to no group.

use serde_json::Value;

use super::read::Reader;
use super::request::Request;
use super::{Connector, Failure, Product};

/// Groups asked for per page (each product's documented maximum is higher).
const PAGE: u32 = 500;

/// The first request for `username`'s groups on `product`, starting at `start`.
fn request(product: Product, username: &str, start: u64) -> Request {
    match product {
        Product::Jira => Request::get("/rest/api/2/user").query("username", username).query("expand", "groups"),
        Product::Confluence => Request::get("/rest/api/user/memberof")
            .query("username", username)
            .query("start", start.to_string())
            .query("limit", PAGE.to_string()),
        Product::Crowd => Request::get("/rest/usermanagement/1/user/group/direct")
            .query("username", username)
            .query("start-index", start.to_string())
            .query("max-results", PAGE.to_string()),
        Product::Bitbucket => Request::get("/rest/api/1.0/admin/users/more-members")
            .query("context", username)
            .query("start", start.to_string())
            .query("limit", PAGE.to_string()),
    }
}

fn names(items: Option<&Value>) -> Vec<String> {
    items
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|g| g.get("name").and_then(Value::as_str)).map(str::to_string).collect())
        .unwrap_or_default()
}

/// One answer: the group names, and where the next page starts (`None` on the last).
fn page(product: Product, body: &Value, start: u64) -> (Vec<String>, Option<u64>) {
    match product {
        Product::Jira => (names(body.pointer("/groups/items")), None),
        Product::Confluence => {
            let found = names(body.get("results"));
            let next = body.pointer("/_links/next").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
            let more = !found.is_empty() && (next || found.len() >= PAGE as usize);
            let at = start + found.len() as u64;
            (found, more.then_some(at))
        }
        Product::Crowd => {
            let found = names(body.get("groups"));
            let at = start + found.len() as u64;
            let more = found.len() >= PAGE as usize;
            (found, more.then_some(at))
        }
        Product::Bitbucket => {
            let found = names(body.get("values"));
            let last = body.get("isLastPage").and_then(Value::as_bool).unwrap_or(true);
            let next = if last { None } else { body.get("nextPageStart").and_then(Value::as_u64) };
            (found, next.filter(|n| *n > start))
        }
    }
}

impl Connector {
    /// The groups `username` belongs to (all pages), in the product's order; empty when the
    /// target has no such account.
    ///
    /// # Errors
    /// As [`Connector::group_members`]: permanent for a refusal, retryable once the read
    /// policy's waits are used up.
    pub async fn groups_of(&self, username: &str) -> Result<Vec<String>, Failure> {
        let product = self.product();
        let mut r = Reader::new(self);
        let mut out = Vec::new();
        let mut start = 0u64;
        loop {
            let req = request(product, username, start);
            let reply = r.send(&req).await?;
            if reply.status == 404 {
                return Ok(out);
            }
            let body = r.expect_json(&req, &reply)?;
            let (found, next) = page(product, &body, start);
            out.extend(found);
            match next {
                Some(n) => start = n,
                None => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_product_asks_its_documented_call() {
        assert_eq!(request(Product::Jira, "al b", 0).target(), "/rest/api/2/user?username=al%20b&expand=groups");
        assert_eq!(
            request(Product::Confluence, "al", 500).target(),
            "/rest/api/user/memberof?username=al&start=500&limit=500"
        );
        assert_eq!(
            request(Product::Crowd, "al", 0).target(),
            "/rest/usermanagement/1/user/group/direct?username=al&start-index=0&max-results=500"
        );
        assert_eq!(
            request(Product::Bitbucket, "al", 0).target(),
            "/rest/api/1.0/admin/users/more-members?context=al&start=0&limit=500"
        );
    }

    #[test]
    fn pages_are_read_to_the_end_in_each_products_shape() {
        let jira = json!({"name": "al", "groups": {"size": 2, "items": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(page(Product::Jira, &jira, 0), (vec!["a".into(), "b".into()], None));
        let conf =
            json!({"results": [{"type": "group", "name": "c"}], "_links": {"next": "/rest/api/user/memberof?start=1"}});
        assert_eq!(page(Product::Confluence, &conf, 0), (vec!["c".into()], Some(1)));
        assert_eq!(page(Product::Confluence, &json!({"results": []}), 3), (vec![], None));
        assert_eq!(page(Product::Crowd, &json!({"groups": [{"name": "d"}]}), 0), (vec!["d".into()], None));
        let bb = json!({"values": [{"name": "e"}], "isLastPage": false, "nextPageStart": 1});
        assert_eq!(page(Product::Bitbucket, &bb, 0), (vec!["e".into()], Some(1)));
        let stuck = json!({"values": [], "isLastPage": false, "nextPageStart": 0});
        assert_eq!(page(Product::Bitbucket, &stuck, 0).1, None, "a page that does not advance ends the read");
    }
}
