//! The failed-login limiter throttles failures only: an attacker (or a misconfigured client)
//! sending wrong tokens from the IdP's own address (a NAT, a proxy not in `trusted_proxies`)
//! never gets the IdP's valid requests refused.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::support::server::{assert_scim_error, TestServer};

const WRONG: &str = "Bearer wrong-token-from-the-same-nat-0000";

/// About 50 wrong-token requests a second for `secs` from loopback, as statuses.
async fn wrong_token_flood(s: &TestServer, secs: u64) -> Vec<u16> {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut statuses = Vec::new();
    while Instant::now() < until {
        tick.tick().await;
        statuses.push(s.send_raw(Method::GET, "/Users", None, &[], Some(WRONG)).await.status.as_u16());
    }
    statuses
}

/// The IdP's own traffic meanwhile, from the same address: reads and creates with the valid token.
async fn valid_traffic(s: &TestServer, secs: u64) -> Vec<u16> {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut statuses = Vec::new();
    let mut i = 0;
    while Instant::now() < until {
        i += 1;
        let r = if i % 2 == 0 {
            s.get("/Users?filter=userName%20eq%20%22nobody%22").await
        } else {
            s.post("/Users", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("idp{i}@example.com")}))
                .await
        };
        statuses.push(r.status.as_u16());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    statuses
}

#[tokio::test]
async fn wrong_tokens_from_the_idps_address_never_get_its_valid_requests_refused() {
    let s = TestServer::start().await;
    let (wrong, valid) = tokio::join!(wrong_token_flood(&s, 4), valid_traffic(&s, 4));
    let refused = valid.iter().filter(|c| **c == 429).count();
    assert!(valid.len() >= 20, "the valid client made too few requests to judge: {valid:?}");
    assert_eq!(refused, 0, "valid requests refused: {refused} of {} ({valid:?})", valid.len());
    assert!(valid.iter().all(|c| *c == 200 || *c == 201), "{valid:?}");
    // The wrong ones are still throttled: 30 a minute are answered 401, the rest 429.
    let throttled = wrong.iter().filter(|c| **c == 429).count();
    assert!(wrong.len() >= 100, "{} wrong-token requests", wrong.len());
    assert!(throttled * 10 >= wrong.len() * 7, "only {throttled} of {} wrong-token requests throttled", wrong.len());
    assert!(wrong.iter().all(|c| *c == 401 || *c == 429), "{wrong:?}");
}

#[tokio::test]
async fn an_address_over_its_failed_login_limit_still_admits_the_valid_token_and_keeps_refusing_wrong_ones() {
    let s = TestServer::start().await;
    for _ in 0..40 {
        s.send_raw(Method::GET, "/Users", None, &[], Some(WRONG)).await;
    }
    let r = s.send_raw(Method::GET, "/Users", None, &[], Some(WRONG)).await;
    assert_scim_error(&r, 429, None);
    assert!(r.header("retry-after").is_some());
    // The valid credential is admitted, and its success does not reset the address's limit.
    assert_eq!(s.get("/Users").await.status.as_u16(), 200);
    let r = s.send_raw(Method::GET, "/Users", None, &[], Some(WRONG)).await;
    assert_scim_error(&r, 429, None);
    // No credential at all is a failure too.
    assert_scim_error(&s.send_raw(Method::GET, "/Users", None, &[], None).await, 429, None);
}
