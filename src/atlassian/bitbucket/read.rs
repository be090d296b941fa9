//! Bitbucket read sequences (atlassian-dc.md §5): accounts with `lastAuthenticationTimestamp`,
//! group members, one account, licence seats. Paging is `start`/`limit`, followed by
//! `isLastPage`/`nextPageStart`.

use super::request as rq;
use super::response as rs;
use crate::atlassian::activity::AccountActivity;
use crate::atlassian::read::{PageSink, Reader};
use crate::atlassian::{Failure, Seats};

pub(in crate::atlassian) async fn for_each_account(r: &mut Reader<'_>, sink: &mut PageSink<'_>) -> Result<(), Failure> {
    let size = r.page_size(rq::PAGE_MAX);
    let mut start = 0u64;
    loop {
        let (values, next) = rs::page(&r.json(&rq::list_users(None, start, size)).await?);
        if r.emit(values.iter().filter_map(rs::detailed_user).collect(), sink).is_break() {
            return Ok(());
        }
        match next {
            Some(n) if n > start => start = n,
            Some(n) => return Err(Failure::permanent(format!("Bitbucket admin/users paged back to {n}; stopping"))),
            None => return Ok(()),
        }
    }
}

/// `admin/users?filter=<username>` (a substring match on name, display name and email), paged
/// until the exact name (case-insensitive) is found.
pub(in crate::atlassian) async fn account(
    r: &mut Reader<'_>,
    username: &str,
) -> Result<Option<AccountActivity>, Failure> {
    let size = r.page_size(rq::PAGE_MAX);
    let mut start = 0u64;
    loop {
        let (values, next) = rs::page(&r.json(&rq::list_users(Some(username), start, size)).await?);
        if let Some(found) =
            values.iter().filter_map(rs::detailed_user).find(|a| a.username.eq_ignore_ascii_case(username))
        {
            return Ok(Some(found));
        }
        match next {
            Some(n) if n > start => start = n,
            _ => return Ok(None),
        }
    }
}

pub(in crate::atlassian) async fn group_members(r: &mut Reader<'_>, group: &str) -> Result<Vec<String>, Failure> {
    let size = r.page_size(rq::PAGE_MAX);
    let mut start = 0u64;
    let mut members = Vec::new();
    loop {
        let (values, next) = rs::page(&r.json(&rq::group_members(group, start, size)).await?);
        members.extend(values.iter().filter_map(|u| u.get("name").and_then(|v| v.as_str())).map(str::to_string));
        match next {
            Some(n) if n > start => start = n,
            _ => return Ok(members),
        }
    }
}

pub(in crate::atlassian) async fn seats(r: &mut Reader<'_>) -> Result<Vec<Seats>, Failure> {
    let body = r.json(&rq::license()).await?;
    rs::license_seats(&body)
        .map(|s| vec![s])
        .ok_or_else(|| Failure::permanent("Bitbucket admin/license answered without a user limit"))
}
