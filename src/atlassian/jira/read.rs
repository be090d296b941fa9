//! Jira read sequences (atlassian-dc.md §2.2–§2.4, §2.7, §2.8): the account listing with last
//! login, group members, one account, application-role seats.

use serde_json::Value;

use super::request as rq;
use super::response as rs;
use crate::atlassian::activity::AccountActivity;
use crate::atlassian::read::{PageSink, Reader};
use crate::atlassian::version::JIRA_USER_LIST;
use crate::atlassian::{Failure, Seats};

/// Lists every user: `GET /user/list` (cursor), or `GET /user/search` (offset) on a Jira that
/// answers 404 for `/user/list` — a resource that "never returns 404" (§2.2) only does so when it
/// does not exist (before 10.3).
///
/// `lastLoginTime` is read from the listing bean. Whether listings carry it is unverified
/// (§10.1), so until one listed bean has carried it, a bean without it is confirmed with
/// `GET /user` (one call per such user; the spec's `UserBean` has the field), and absence there
/// means "never". Once the listing is seen to carry the field, its absence means "never" without
/// a call. A Jira that exposes the field nowhere (before 10.x) gives nobody a time, and the
/// listing is refused by [`crate::atlassian::ReadPolicy::require_activity`].
pub(in crate::atlassian) async fn for_each_account(r: &mut Reader<'_>, sink: &mut PageSink<'_>) -> Result<(), Failure> {
    let size = r.page_size(rq::LIST_MAX);
    let mut listing_carries = false;
    // Chosen by release where it is known; a 404 of the first page still falls back below.
    if let Ok(Some(v)) = r.s.version().await {
        if !v.at_least(JIRA_USER_LIST) {
            tracing::info!(target_name = %r.s.target_name(), version = %v, "Jira before 10.3 has no /user/list; listing with /user/search.");
            return search_all(r, sink, listing_carries).await;
        }
    }
    let mut cursor: Option<String> = None;
    loop {
        let req = rq::user_list(cursor.as_deref(), size);
        let reply = r.send(&req).await?;
        if reply.status == 404 && cursor.is_none() {
            tracing::info!(target_name = %r.s.target_name(), "Jira has no /user/list (before 10.3); listing with /user/search.");
            return search_all(r, sink, listing_carries).await;
        }
        let body = r.expect_json(&req, &reply)?;
        let (beans, next) = rs::stream_page(&body);
        let page = accounts(r, &beans, &mut listing_carries).await?;
        if r.emit(page, sink).is_break() {
            return Ok(());
        }
        match next {
            None => return Ok(()),
            Some(n) if beans.is_empty() || cursor.as_deref() == Some(n.as_str()) => {
                return Err(Failure::permanent(format!(
                    "Jira /user/list returned cursor {n:?} again or an empty non-final page; stopping to avoid a loop"
                )))
            }
            Some(n) => cursor = Some(n),
        }
    }
}

async fn search_all(r: &mut Reader<'_>, sink: &mut PageSink<'_>, mut listing_carries: bool) -> Result<(), Failure> {
    let size = r.page_size(rq::SEARCH_MAX);
    let mut start = 0u64;
    loop {
        let body = r.json(&rq::user_search(start, size)).await?;
        let beans = body.as_array().cloned().unwrap_or_default();
        let page = accounts(r, &beans, &mut listing_carries).await?;
        if r.emit(page, sink).is_break() {
            return Ok(());
        }
        // No paging metadata: a short page is the last one.
        if beans.len() < size as usize {
            return Ok(());
        }
        start += beans.len() as u64;
    }
}

/// Turns listing beans into accounts, confirming a missing `lastLoginTime` with `GET /user`
/// while the listing has not yet shown that it carries the field.
async fn accounts(
    r: &mut Reader<'_>,
    beans: &[Value],
    listing_carries: &mut bool,
) -> Result<Vec<AccountActivity>, Failure> {
    let mut page = Vec::with_capacity(beans.len());
    for bean in beans {
        let Some((mut account, carried)) = rs::activity(bean) else {
            continue;
        };
        if carried {
            *listing_carries = true;
        } else if *listing_carries {
            account.activity_reported = true;
        } else {
            if let Some(full) = lookup(r, &account.username).await? {
                account.last_active = full.last_active;
            }
            account.activity_reported = true;
        }
        page.push(account);
    }
    Ok(page)
}

async fn lookup(r: &mut Reader<'_>, username: &str) -> Result<Option<AccountActivity>, Failure> {
    let req = rq::get_user(username, false);
    let reply = r.send(&req).await?;
    if reply.status == 404 {
        return Ok(None);
    }
    let body = r.expect_json(&req, &reply)?;
    Ok(rs::activity(&body).map(|(a, _)| a))
}

/// `GET /user?username=&expand=groups`: the account with its groups. A bean without
/// `lastLoginTime` has `activity_reported: false`: one bean cannot tell "never" from "this Jira
/// does not say" (§2.7), so the caller decides (the listing can tell, see above).
pub(in crate::atlassian) async fn account(
    r: &mut Reader<'_>,
    username: &str,
) -> Result<Option<AccountActivity>, Failure> {
    lookup(r, username).await
}

pub(in crate::atlassian) async fn group_members(r: &mut Reader<'_>, group: &str) -> Result<Vec<String>, Failure> {
    let size = r.page_size(rq::SEARCH_MAX);
    let mut start = 0u64;
    let mut members = Vec::new();
    loop {
        let (names, last) = rs::member_page(&r.json(&rq::group_members(group, start, size)).await?);
        let n = names.len() as u64;
        members.extend(names);
        if last || n == 0 {
            return Ok(members);
        }
        start += n;
    }
}

pub(in crate::atlassian) async fn seats(r: &mut Reader<'_>, role: Option<&str>) -> Result<Vec<Seats>, Failure> {
    let body = r.json(&rq::application_roles(role)).await?;
    let beans = match body {
        Value::Array(list) => list,
        one => vec![one],
    };
    Ok(beans.iter().filter_map(rs::role_seats).collect())
}
