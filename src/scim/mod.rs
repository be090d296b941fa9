//! The SCIM 2.0 protocol, pure: parsing, validation, filters, PATCH, projection and errors
//! (RFC 7643, RFC 7644). Nothing here performs I/O or knows about HTTP or sled; `http/` and
//! `store/` call in with JSON and get JSON or a `ScimError` back.

pub mod error;
pub mod filter;
mod filter_lexer;
pub mod identifiers;
pub mod patch;
pub mod path;
pub mod projection;
pub mod resource;
pub mod schema;

pub use error::{ScimError, ScimResult, ScimType};
