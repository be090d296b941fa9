//! Delivery: drains the outbox into the Atlassian targets. Per (target, user) lane in order,
//! across lanes in parallel (bounded), with exponential backoff and jitter, `Retry-After` as a
//! floor, dead letters after the configured attempts or age, and every outcome in the audit log.
//! Classification of a target's answer is `atlassian/`'s; what to do next is decided here.

mod actions;
mod groups;
mod link;
mod restore;
mod retry;
mod store_gate;
mod worker;

pub use groups::GroupGuard;
pub use link::{link_audit, DELIVERY_ACTOR};
pub use retry::{backoff, decide, jittered, Decision};
pub use worker::{Deliverer, WorkerHandle};
