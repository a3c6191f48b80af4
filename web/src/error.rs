//! The web layer's one error type: renders a JSON error, never leaks database text.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// What went wrong, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The request is malformed or a value is out of range.
    #[error("{0}")]
    BadRequest(String),
    /// No or bad credentials.
    #[error("authentication required")]
    Unauthorized,
    /// Credentials are fine but the role does not allow this.
    #[error("your role does not allow this")]
    Forbidden,
    /// The thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The change conflicts with existing data (duplicate, still referenced).
    #[error("{0}")]
    Conflict(String),
    /// The body refers to something that does not exist (`no person 99`).
    #[error("{0}")]
    MissingReference(String),
    /// The body combines settings that the level rules make meaningless.
    #[error("{0}")]
    Meaningless(String),
    /// A controller with valid credentials that an admin disabled.
    #[error("controller {0} is disabled at the central service; its doors keep running on their cached policy until an admin enables it")]
    ControllerDisabled(u32),
    /// The body is larger than allowed.
    #[error("request body too large")]
    TooLarge,
    /// Anything else; details go to the log only.
    #[error("internal error")]
    Internal(String),
    /// The role allows it, but not for this caller (their own change, …).
    #[error("{0}")]
    NotAllowed(String),
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code.
    pub error: String,
    /// A human-readable message.
    pub message: String,
}

impl WebError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::ControllerDisabled(_) | Self::NotAllowed(_) => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MissingReference(_) | Self::Meaningless(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden | Self::NotAllowed(_) => "forbidden",
            Self::ControllerDisabled(_) => "controller_disabled",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::MissingReference(_) => "missing_reference",
            Self::Meaningless(_) => "meaningless_combination",
            Self::TooLarge => "too_large",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let body = ErrorBody {
            error: self.code().into(),
            message: self.to_string(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, Self::Unauthorized) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::MissingReference(what) => Self::MissingReference(what),
            StoreError::Meaningless(what) => Self::Meaningless(what),
            StoreError::Invalid(what) => Self::BadRequest(what),
            StoreError::NotAllowed(what) => Self::NotAllowed(what),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Result of a handler.
pub type WebResult<T> = Result<T, WebError>;
