//! The integration tests, one module per area, linked into a single test binary.
//!
//! One binary rather than one per file: each test binary links the whole crate and its
//! dependencies, so two dozen of them cost minutes of linking and gigabytes of disk in CI for no
//! isolation we use (every test already starts its own server, data dir and emulator).
//! Run one area with `cargo test --test integration protocol::`.

mod support;

mod admin_and_cli;
mod admin_walk;
mod atlassian_activity;
mod atlassian_connectors;
mod atlassian_emulator_contract;
mod audit_trail;
mod cli_truth;
mod deploy_config;
mod durability;
mod entra_sequences;
mod fallback;
mod filter_roundtrip;
mod filters;
mod full_disk;
mod group_sync;
mod guard_brake;
mod hostile;
mod jwt_auth;
mod lifecycle_bulk;
mod lifecycle_cleanup;
mod lifecycle_license;
mod lifecycle_reconcile;
mod lifecycle_report_groups;
mod lifecycle_warn;
mod linking;
mod links_operations;
mod login_limiter;
mod notify;
mod notify_target_down;
mod offboarding;
mod offboarding_crash;
mod okta_sequences;
mod outage;
mod oversized_requests;
mod patch_edge_cases;
mod protocol;
mod readme;
mod real_server_requests;
mod reasons;
mod reports_dir;
mod retention;
mod supersede;
mod tls;
mod undo;
mod wrong_json_types;
