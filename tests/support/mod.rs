//! Shared test support: the in-process server and the Atlassian DC emulator.
#![allow(dead_code)]

pub mod atlassian_emulator;
pub mod child;
pub mod server;
pub mod smtp;
pub mod webhook;
