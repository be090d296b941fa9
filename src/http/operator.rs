//! The operator of an admin API request: the admin token's name, and the CLI user when the CLI
//! forwarded one (`X-Scimbridge-Operator`), with a fresh run id (see `store::Operator`).

use actix_web::{HttpMessage, HttpRequest};

use super::error::ApiResult;
use crate::auth::Principal;
use crate::scim::ScimError;
use crate::store::{Operator, OPERATOR_HEADER};

/// The operator of `req` (authenticated by the middleware before any admin handler runs).
///
/// # Errors
/// 400 when the forwarded operator header is not a plain user name.
pub(super) fn operator(req: &HttpRequest) -> ApiResult<Operator> {
    let token = req.extensions().get::<Principal>().map(|p| p.name.clone()).unwrap_or_else(|| "unknown".into());
    let forwarded = match req.headers().get(OPERATOR_HEADER) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            ScimError::invalid_value(format!("{OPERATOR_HEADER} must be a plain user name (visible ASCII)."))
        })?),
    };
    Operator::from_admin(&token, forwarded).map_err(|e| ScimError::invalid_value(e).into())
}
