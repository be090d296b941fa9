//! The one mapping from errors to HTTP responses: every 4xx and 5xx carries an RFC 7644 §3.12
//! body and `application/scim+json`. Internal error text goes to the log, never to the client.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::scim::ScimError;
use crate::store::StoreError;

pub const SCIM_JSON: &str = "application/scim+json";

/// An error a handler returns.
#[derive(Debug)]
pub struct ApiError(pub ScimError);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> Self {
        ApiError(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if !matches!(e, StoreError::Scim(_)) {
            tracing::error!(error = %e, "Storage failed while serving a request.");
        }
        ApiError(e.to_scim())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn error_response(&self) -> HttpResponse {
        error_response(&self.0)
    }
}

/// The response for a SCIM error.
pub fn error_response(e: &ScimError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut b = HttpResponse::build(status);
    b.content_type(SCIM_JSON);
    if e.status == 401 {
        b.insert_header(("WWW-Authenticate", "Bearer realm=\"scimbridge\""));
    }
    if e.status == 429 || e.status == 503 {
        b.insert_header(("Retry-After", "1"));
    }
    b.body(e.to_body().to_string())
}

pub type ApiResult<T> = Result<T, ApiError>;
