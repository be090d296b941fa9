//! Crowd read sequences (atlassian-dc.md §4): accounts with `lastAuthenticated` /
//! `lastActive`, direct group members, one account. Crowd answers XML unless asked for JSON;
//! every request asks for JSON (`request.rs`).

use super::request as rq;
use super::response as rs;
use crate::atlassian::activity::AccountActivity;
use crate::atlassian::read::{PageSink, Reader};
use crate::atlassian::Failure;

/// `search?entity-type=user&expand=user,attributes`, offset-paged by `start-index`. An entity
/// that comes without its attributes (expansion not honoured) gets them from
/// `GET /user/attribute?username=` — one call per such user.
pub(in crate::atlassian) async fn for_each_account(r: &mut Reader<'_>, sink: &mut PageSink<'_>) -> Result<(), Failure> {
    let size = r.page_size(rq::PAGE_MAX);
    let mut start = 0u64;
    loop {
        let entities = rs::users(&r.json(&rq::search_users(start, size)).await?);
        let mut page = Vec::with_capacity(entities.len());
        for entity in &entities {
            let Some(mut account) = rs::account(entity) else {
                continue;
            };
            if !account.activity_reported {
                let body = r.json(&rq::user_attributes(&account.username)).await?;
                if let Some(attrs) = rs::attribute_list(&body) {
                    account.last_active = rs::last_active(attrs);
                    account.activity_reported = true;
                }
            }
            page.push(account);
        }
        if r.emit(page, sink).is_break() || entities.len() < size as usize {
            return Ok(());
        }
        start += entities.len() as u64;
    }
}

/// `GET /user?username=&expand=attributes`.
pub(in crate::atlassian) async fn account(
    r: &mut Reader<'_>,
    username: &str,
) -> Result<Option<AccountActivity>, Failure> {
    let req = rq::get_user_with_attributes(username);
    let reply = r.send(&req).await?;
    if reply.status == 404 {
        return Ok(None);
    }
    let body = r.expect_json(&req, &reply)?;
    Ok(rs::account(&body))
}

/// Direct members (`group/user/direct`, §4), offset-paged; nested members are not included.
pub(in crate::atlassian) async fn group_members(r: &mut Reader<'_>, group: &str) -> Result<Vec<String>, Failure> {
    let size = r.page_size(rq::PAGE_MAX);
    let mut start = 0u64;
    let mut members = Vec::new();
    loop {
        let users = rs::users(&r.json(&rq::group_members(group, start, size)).await?);
        let n = users.len();
        members.extend(users.iter().filter_map(|u| u.get("name").and_then(|v| v.as_str())).map(str::to_string));
        if n < size as usize {
            return Ok(members);
        }
        start += n as u64;
    }
}
