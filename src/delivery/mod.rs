//! Delivery: drains the outbox into the Atlassian targets. Per (target, user) lane in order,
//! across lanes in parallel (bounded), with exponential backoff and jitter, `Retry-After` as a
//! floor, dead letters after the configured attempts or age, and every outcome in the audit log.
//! Classification of a target's answer is `atlassian/`'s; what to do next is decided here.
//! Per-target health (`health.rs`): a down target pauses its lanes behind one probe, attempts
//! while it is down are not counted, and each target has its own concurrency budget.

mod actions;
mod groups;
mod health;
mod link;
mod notices;
mod outage;
mod removed;
mod restore;
mod retry;
mod store_gate;
mod worker;

pub use groups::GroupGuard;
pub use health::{target_notice, Health, HealthConfig};
pub use link::{link_audit, DELIVERY_ACTOR};
pub use retry::{backoff, decide, jittered, Decision};
pub use worker::{Deliverer, WorkerHandle};
