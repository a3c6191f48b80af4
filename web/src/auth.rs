//! Request authentication: API tokens for people and integrations, controller
//! credentials for the sync API.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tobira_firmware::ControllerId;

use crate::error::WebError;
use crate::store::auth::{Principal, Role};
use crate::AppState;

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A caller of the JSON API with a valid token.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// Refuses unless the role may manage configuration.
    pub fn manager(&self) -> Result<&Principal, WebError> {
        self.0
            .role
            .can_manage()
            .then_some(&self.0)
            .ok_or(WebError::Forbidden)
    }

    /// Refuses unless the role may operate (card actions, alarms).
    pub fn operator(&self) -> Result<&Principal, WebError> {
        self.0
            .role
            .can_operate()
            .then_some(&self.0)
            .ok_or(WebError::Forbidden)
    }

    /// Refuses unless admin.
    pub fn admin(&self) -> Result<&Principal, WebError> {
        (self.0.role == Role::Admin)
            .then_some(&self.0)
            .ok_or(WebError::Forbidden)
    }

    /// Name recorded in the audit log.
    pub fn actor(&self) -> &str {
        &self.0.actor
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(WebError::Unauthorized)?;
        match state.store.verify_token(token).await? {
            Some(p) => Ok(Caller(p)),
            None => Err(WebError::Unauthorized),
        }
    }
}

/// A controller with valid credentials.
#[derive(Debug, Clone, Copy)]
pub struct ControllerCaller(pub ControllerId);

impl FromRequestParts<AppState> for ControllerCaller {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (id, secret) = bearer(parts)
            .and_then(tobira_protocol::parse_controller_token)
            .ok_or(WebError::Unauthorized)?;
        if state.store.verify_controller(id, secret).await? {
            Ok(ControllerCaller(id))
        } else {
            Err(WebError::Unauthorized)
        }
    }
}
