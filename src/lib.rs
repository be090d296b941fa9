//! scimbridge: a SCIM 2.0 service provider for Entra ID and Okta that turns provisioning events
//! into changes in Atlassian Data Center. See `DESIGN.md` in the shared folder for the data flow:
//! http → scim → policy → store (one transaction) → delivery → atlassian.

pub mod admin;
pub mod admin_held;
pub mod admin_links;
pub mod admin_tokens;
pub mod atlassian;
pub mod audit_view;
pub mod auth;
pub mod cli;
pub mod cli_held;
pub mod cli_lifecycle;
pub mod cli_links;
pub mod cli_remote;
pub mod cli_signals;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod guard;
pub mod http;
pub mod intake;
pub mod intake_links;
pub mod intake_reasons;
pub mod lifecycle;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod reason;
pub mod redact;
pub mod retention;
pub mod scim;
pub mod secret;
pub mod server;
pub mod store;
