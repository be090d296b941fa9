//! The paged, rate-limit-aware read side of [`Connector`]: the public read methods, the
//! [`Reader`] that waits out retryable answers (bounded), and the page sink that keeps
//! [`ReadStats`]. Product sequences live in `<product>/read.rs`; this file knows no product path.
//!
//! Waiting: a read is idempotent, so 429/503 (with `Retry-After`, atlassian-dc.md §1.2), other
//! 5xx and "no answer" are waited out and the same request sent again. The wait is the target's
//! hint cut to [`ReadPolicy::max_wait`], else [`ReadPolicy::default_wait`]; after
//! [`ReadPolicy::max_waits`] waits in one call the classified failure is returned, exactly as
//! `classify.rs` classifies writes.

use std::ops::ControlFlow;

use serde_json::Value;

use super::activity::{AccountActivity, ReadPolicy, ReadStats, Seats};
use super::classify::{failure, Reply};
use super::client::{Connector, Session};
use super::request::Request;
use super::types::{Failure, Product};
use super::{bitbucket, confluence, crowd, jira};

/// The callback a listing hands each page to; `Break` stops the listing.
pub(crate) type PageSink<'f> = dyn FnMut(Vec<AccountActivity>) -> ControlFlow<()> + Send + 'f;

/// Sends read requests with bounded waits, and counts.
pub(crate) struct Reader<'a> {
    pub s: Session<'a>,
    pub policy: ReadPolicy,
    pub stats: ReadStats,
    waits_left: u32,
}

impl<'a> Reader<'a> {
    pub fn new(conn: &'a Connector) -> Reader<'a> {
        let policy = conn.read_policy().clone();
        Reader { s: Session::for_reading(conn), waits_left: policy.max_waits, policy, stats: ReadStats::default() }
    }

    /// The page size to ask for, capped at the product's documented maximum.
    pub fn page_size(&self, cap: u32) -> u32 {
        self.policy.page_size.clamp(1, cap)
    }

    /// Sends `req` until it gets an answer that is not retryable, or the waits run out.
    /// Returns any non-retryable answer (2xx, 404…) for the caller to interpret.
    ///
    /// # Errors
    /// The retryable [`Failure`] (with the target's `retry_after`) once `max_waits` are used.
    pub async fn send(&mut self, req: &Request) -> Result<Reply, Failure> {
        loop {
            let outcome = self.s.send(req).await;
            // Reads keep no call history: a listing of 100,000 accounts would otherwise keep
            // every call.
            self.s.calls.clear();
            let retry = match outcome {
                Ok(reply) => {
                    self.stats.requests += 1;
                    if reply.is_success() {
                        return Ok(reply);
                    }
                    match failure(&reply, self.s.now()) {
                        Failure::Permanent { .. } => return Ok(reply),
                        retryable => retryable,
                    }
                }
                Err(no_answer) => no_answer,
            };
            let Failure::Retryable { retry_after, ref reason } = retry else {
                return Err(retry);
            };
            if self.waits_left == 0 {
                return Err(retry);
            }
            self.waits_left -= 1;
            self.stats.waits += 1;
            let wait = retry_after.unwrap_or(self.policy.default_wait).min(self.policy.max_wait);
            tracing::warn!(
                target_name = %self.s.target_name(),
                path = %req.log_path(),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                waits_left = self.waits_left,
                error = %reason,
                "Atlassian read deferred; waiting before asking again."
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends `req` and parses a 2xx JSON body.
    ///
    /// # Errors
    /// The classified failure of a non-2xx answer; Permanent when the body is not JSON (or was
    /// cut at the page cap: lower `page_size`).
    pub async fn json(&mut self, req: &Request) -> Result<Value, Failure> {
        let reply = self.send(req).await?;
        self.expect_json(req, &reply)
    }

    pub fn expect_json(&self, req: &Request, reply: &Reply) -> Result<Value, Failure> {
        if !reply.is_success() {
            return Err(failure(reply, self.s.now()));
        }
        reply.json().ok_or_else(|| {
            Failure::permanent(format!(
                "{} {} answered {} with a body that is not JSON ({} bytes; a page cut at the size cap means page_size is too large)",
                req.method,
                req.log_path(),
                reply.status,
                reply.body.len()
            ))
        })
    }

    /// Hands a page to the callback and counts it.
    pub fn emit(&mut self, page: Vec<AccountActivity>, sink: &mut PageSink<'_>) -> ControlFlow<()> {
        if page.is_empty() {
            return ControlFlow::Continue(());
        }
        for a in &page {
            self.stats.accounts += 1;
            self.stats.inactive += u64::from(!a.active);
            if a.activity_reported {
                self.stats.activity_reported += 1;
                self.stats.never_active += u64::from(a.last_active.is_none());
            }
        }
        let flow = sink(page);
        if flow.is_break() {
            self.stats.stopped_early = true;
        }
        flow
    }
}

impl Connector {
    /// Streams every account of the target to `on_page`, one page at a time (memory is bounded
    /// by the page size). Inactive accounts are included and flagged. `on_page` returning
    /// `ControlFlow::Break(())` stops the listing (`ReadStats::stopped_early`).
    ///
    /// Per product (atlassian-dc.md): Jira `GET /user/list` (cursor; `/user/search` on a Jira
    /// without it), Confluence `admin/users/list/active?expand=lastLogin` then the deactivated
    /// users of `user/list`, Crowd `search?entity-type=user&expand=user,attributes`, Bitbucket
    /// `admin/users`.
    ///
    /// # Errors
    /// A [`Failure`] when a page fails permanently, or stays retryable after the policy's waits,
    /// or when no account carried any activity figure (see [`ReadPolicy::require_activity`]).
    /// Pages already handed over stay handed over: on `Err` the caller must discard the
    /// partial listing rather than act on it.
    pub async fn for_each_account<F>(&self, mut on_page: F) -> Result<ReadStats, Failure>
    where
        F: FnMut(Vec<AccountActivity>) -> ControlFlow<()> + Send,
    {
        let mut r = Reader::new(self);
        let sink: &mut PageSink<'_> = &mut on_page;
        let outcome = match self.product() {
            Product::Jira => jira::read::for_each_account(&mut r, sink).await,
            Product::Confluence => confluence::read::for_each_account(&mut r, sink).await,
            Product::Crowd => crowd::read::for_each_account(&mut r, sink).await,
            Product::Bitbucket => bitbucket::read::for_each_account(&mut r, sink).await,
        };
        let stats = r.stats;
        let outcome = outcome.and_then(|()| check_activity(self.product(), &stats, r.policy.require_activity));
        match &outcome {
            Ok(()) => tracing::info!(
                target_name = %self.name(),
                product = %self.product(),
                accounts = stats.accounts,
                never_active = stats.never_active,
                requests = stats.requests,
                waits = stats.waits,
                "Atlassian account listing finished."
            ),
            Err(e) => tracing::warn!(
                target_name = %self.name(),
                product = %self.product(),
                accounts = stats.accounts,
                error = %e,
                "Atlassian account listing failed."
            ),
        }
        outcome.map(|()| stats)
    }

    /// Usernames of the members of `group` (active and inactive), all pages.
    ///
    /// # Errors
    /// Permanent when the group does not exist (404) or the credentials lack permission;
    /// retryable as for [`Connector::for_each_account`].
    pub async fn group_members(&self, group: &str) -> Result<Vec<String>, Failure> {
        let mut r = Reader::new(self);
        match self.product() {
            Product::Jira => jira::read::group_members(&mut r, group).await,
            Product::Confluence => confluence::read::group_members(&mut r, group).await,
            Product::Crowd => crowd::read::group_members(&mut r, group).await,
            Product::Bitbucket => bitbucket::read::group_members(&mut r, group).await,
        }
    }

    /// One account, or `None` when the target has no such user.
    ///
    /// # Errors
    /// As [`Connector::group_members`].
    pub async fn account(&self, username: &str) -> Result<Option<AccountActivity>, Failure> {
        let mut r = Reader::new(self);
        match self.product() {
            Product::Jira => jira::read::account(&mut r, username).await,
            Product::Confluence => confluence::read::account(&mut r, username).await,
            Product::Crowd => crowd::read::account(&mut r, username).await,
            Product::Bitbucket => bitbucket::read::account(&mut r, username).await,
        }
    }

    /// Licence seats. Jira: one entry per application role (or only `license_group_or_role`, a
    /// role key such as `jira-software`); Confluence and Bitbucket: their one licence (the
    /// argument is ignored).
    ///
    /// # Errors
    /// Permanent for Crowd, whose application-authenticated REST API has no seat count; for an
    /// unknown Jira role key (404); otherwise as [`Connector::group_members`].
    pub async fn seats(&self, license_group_or_role: Option<&str>) -> Result<Vec<Seats>, Failure> {
        let mut r = Reader::new(self);
        match self.product() {
            Product::Jira => jira::read::seats(&mut r, license_group_or_role).await,
            Product::Confluence => confluence::read::seats(&mut r).await,
            Product::Crowd => Err(Failure::permanent(
                "Crowd reports no licence seat count to applications: its usermanagement REST API has none, and the admin licensing API needs an administrator user, not application credentials",
            )),
            Product::Bitbucket => bitbucket::read::seats(&mut r).await,
        }
    }

    /// Groups whose members cleanup never touches (the product's administrators).
    pub fn admin_groups(product: Product) -> &'static [&'static str] {
        super::activity::admin_groups(product)
    }
}

/// The guard of [`ReadPolicy::require_activity`]: a complete listing in which not one account
/// has a last-activity time is refused. On every product "field absent" reads as "never", so a
/// version that does not expose the field at all would otherwise look like a directory of
/// never-logged-in users.
fn check_activity(product: Product, stats: &ReadStats, required: bool) -> Result<(), Failure> {
    let with_time = stats.activity_reported - stats.never_active;
    if required && !stats.stopped_early && stats.accounts > 0 && with_time == 0 {
        return Err(Failure::permanent(format!(
            "{product} listed {} accounts but gave a last activity time for none of them; this version may not expose it, so the listing is refused rather than reporting everyone as never logged in",
            stats.accounts
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_without_any_activity_figure_is_refused() {
        let stats = ReadStats { accounts: 3, ..ReadStats::default() };
        assert!(matches!(check_activity(Product::Jira, &stats, true), Err(Failure::Permanent { .. })));
        assert!(check_activity(Product::Jira, &stats, false).is_ok());
        let all_never = ReadStats { accounts: 3, activity_reported: 3, never_active: 3, ..ReadStats::default() };
        assert!(check_activity(Product::Bitbucket, &all_never, true).is_err());
        let some = ReadStats { accounts: 3, activity_reported: 2, never_active: 1, ..ReadStats::default() };
        assert!(check_activity(Product::Jira, &some, true).is_ok());
        assert!(check_activity(Product::Jira, &ReadStats::default(), true).is_ok());
    }
}
