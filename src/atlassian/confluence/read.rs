//! Confluence read sequences (atlassian-dc.md §3): accounts with last login, group members,
//! one account, licence seats.

use super::request as rq;
use super::response as rs;
use crate::atlassian::activity::AccountActivity;
use crate::atlassian::read::{PageSink, Reader};
use crate::atlassian::{Failure, Seats};

/// Two passes, both offset-paged (`start`/`limit`):
/// 1. `admin/users/list/active?expand=lastLogin`: every licensed, enabled user with last login
///    (the only listing that has it; §3, S23);
/// 2. `user/list?expand=status`: every user; only the disabled ones are emitted (the enabled
///    licensed ones came in pass 1), with `active: false` and `activity_reported: false`,
///    since Confluence reports no last login for them.
///
/// Enabled but unlicensed users appear in neither emitted set: they hold no seat and cannot log
/// in. Partitioning by status keeps memory bounded (no set of names from pass 1).
pub(in crate::atlassian) async fn for_each_account(r: &mut Reader<'_>, sink: &mut PageSink<'_>) -> Result<(), Failure> {
    let size = r.page_size(rq::PAGE_MAX);
    let mut start = 0u64;
    loop {
        let (results, more) = rs::page(&r.json(&rq::active_users(start, size)).await?, size);
        start += results.len() as u64;
        if r.emit(results.iter().filter_map(rs::licensed_user).collect(), sink).is_break() {
            return Ok(());
        }
        if !more {
            break;
        }
    }
    let mut start = 0u64;
    loop {
        let (results, more) = rs::page(&r.json(&rq::all_users(start, size)).await?, size);
        start += results.len() as u64;
        let disabled =
            results.iter().filter(|p| rs::is_enabled(p) == Some(false)).filter_map(|p| rs::listed_user(p, false));
        if r.emit(disabled.collect(), sink).is_break() || !more {
            return Ok(());
        }
    }
}

/// `GET /rest/api/user?username=&expand=status`. Confluence has no per-user last login over
/// REST, so `activity_reported` is false; the listing has it for licensed users.
pub(in crate::atlassian) async fn account(
    r: &mut Reader<'_>,
    username: &str,
) -> Result<Option<AccountActivity>, Failure> {
    let req = rq::get_user_status(username);
    let reply = r.send(&req).await?;
    if reply.status == 404 {
        return Ok(None);
    }
    let body = r.expect_json(&req, &reply)?;
    Ok(rs::listed_user(&body, rs::is_enabled(&body).unwrap_or(true)))
}

pub(in crate::atlassian) async fn group_members(r: &mut Reader<'_>, group: &str) -> Result<Vec<String>, Failure> {
    let size = r.page_size(rq::PAGE_MAX);
    let mut start = 0u64;
    let mut members = Vec::new();
    loop {
        let (results, more) = rs::page(&r.json(&rq::group_members(group, start, size)).await?, size);
        start += results.len() as u64;
        members.extend(results.iter().filter_map(|p| p.get("username").and_then(|v| v.as_str())).map(str::to_string));
        if !more {
            return Ok(members);
        }
    }
}

/// `license/maxUsers` and `license/userCount` (§3). A negative maximum is read as unlimited
/// (how the module reports an unlimited licence is unverified).
pub(in crate::atlassian) async fn seats(r: &mut Reader<'_>) -> Result<Vec<Seats>, Failure> {
    let max = rs::count(&r.json(&rq::license_max_users()).await?)
        .ok_or_else(|| Failure::permanent("Confluence license/maxUsers answered without a count"))?;
    let used = rs::count(&r.json(&rq::license_user_count()).await?)
        .ok_or_else(|| Failure::permanent("Confluence license/userCount answered without a count"))?;
    Ok(vec![Seats {
        total: u64::try_from(max).ok(),
        used: u64::try_from(used).unwrap_or(0),
        detail: "confluence".into(),
    }])
}
