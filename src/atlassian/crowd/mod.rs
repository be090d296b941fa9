//! Crowd Data Center (`{base}/rest/usermanagement/1`), authenticated as an *application*
//! (Basic with the application name and password; the caller IP must be allow-listed).
//! atlassian-dc.md §4 and §7; vendor reference:
//! <https://developer.atlassian.com/server/crowd/crowd-rest-resources/> and
//! <https://support.atlassian.com/crowd/kb/how-to-deactivate-activate-a-user-through-api>.
//!
//! Quirks handled here: Crowd answers XML unless asked for JSON; `PUT /user` replaces the whole
//! user, so (de)activation reads the user and sends every field back; adding an existing
//! membership answers 409. When Jira or Confluence use Crowd as their directory, (de)activation
//! must happen here, because the application-side directory is read-only.

mod client;
mod fallback;
mod group;
mod profile;
pub(super) mod read;
mod request;
mod response;

pub(super) use client::{execute, health};
