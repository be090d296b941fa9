//! The mass-offboarding brake (issue 12 §1): a pure rule over counts in a sliding window that
//! decides whether a destructive intent (deactivate, delete, anonymize, remove_license) is
//! delivered or held. The store applies it where intents enter the outbox, in the same
//! transaction (`store/guard_held.rs`), and keeps the held queue; `admin_held.rs` lets an
//! operator approve or reject what it holds.

mod config;
mod notice;
mod rule;

pub use config::{validate, GuardFile};
pub use notice::{brake_engaged_notice, held_notification, BrakeFacts};
pub use rule::{is_destructive, Guard, Verdict, Window};
