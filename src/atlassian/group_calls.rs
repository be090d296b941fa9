//! The call sequences every product's group management shares (create, delete); each product
//! keeps only its requests and the status that means "already there" (`<product>/group.rs`).

use super::classify::failure;
use super::client::Session;
use super::request::Request;
use super::{Effect, Failure};

/// Whether `probe` (a read of the group) finds it: 200 yes, 404 no, anything else a failure.
async fn exists(s: &mut Session<'_>, probe: &Request) -> Result<bool, Failure> {
    let reply = s.send(probe).await?;
    match reply.status {
        404 => Ok(false),
        _ if reply.is_success() => Ok(true),
        _ => Err(failure(&reply, s.now())),
    }
}

/// A create whose answer for an existing group is `exists_status` (409 on Confluence and
/// Bitbucket): that answer is "already done".
pub(super) async fn create(s: &mut Session<'_>, create: &Request, exists_status: u16) -> Result<Effect, Failure> {
    let reply = s.send(create).await?;
    match reply.status {
        st if st == exists_status => Ok(Effect::AlreadyDone),
        _ if reply.is_success() => Ok(Effect::Applied),
        _ => Err(failure(&reply, s.now())),
    }
}

/// A create for products that answer a duplicate name with the same 400 as an invalid one (Jira,
/// Crowd): existence is read first with `probe`, and again after a 400, for a group created
/// meanwhile.
pub(super) async fn create_after_probe(
    s: &mut Session<'_>,
    probe: &Request,
    create: &Request,
) -> Result<Effect, Failure> {
    if exists(s, probe).await? {
        return Ok(Effect::AlreadyDone);
    }
    let reply = s.send(create).await?;
    if reply.is_success() {
        return Ok(Effect::Applied);
    }
    if reply.status == 400 && exists(s, probe).await? {
        return Ok(Effect::AlreadyDone);
    }
    Err(failure(&reply, s.now()))
}

/// An idempotent delete: 404 (no such group) is "already done".
pub(super) async fn delete(s: &mut Session<'_>, delete: &Request) -> Result<Effect, Failure> {
    let reply = s.send(delete).await?;
    match reply.status {
        404 => Ok(Effect::AlreadyDone),
        _ if reply.is_success() => Ok(Effect::Applied),
        _ => Err(failure(&reply, s.now())),
    }
}
