//! Request authentication: API tokens for people and integrations, controller
//! credentials for the sync API; who was authenticated, for the request log.

use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tobira_firmware::ControllerId;

use crate::error::WebError;
use crate::store::auth::{ControllerAuth, Principal, Role};
use crate::store::now_ms;
use crate::AppState;

/// Where the authenticating extractor leaves the caller's name (`token:NAME#ID`,
/// `controller:ID`) for the request log; never a secret.
#[derive(Debug, Clone, Default)]
pub struct ActorSlot(Arc<OnceLock<String>>);

impl ActorSlot {
    /// The caller, if one was authenticated.
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }

    /// Records a page user (`session:NAME`) for the request log.
    pub(crate) fn note_page(&self, user: &str) {
        let _ = self.0.set(format!("session:{user}"));
    }

    fn note(parts: &Parts, actor: impl FnOnce() -> String) {
        if let Some(slot) = parts.extensions.get::<ActorSlot>() {
            let _ = slot.0.set(actor());
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A caller of the JSON API with a valid token, whatever its role (reads);
/// state changes take an [`Authorized`] caller instead.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
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
            Some(p) => {
                ActorSlot::note(parts, || match p.token_id {
                    Some(id) => format!("{}#{id}", p.actor),
                    None => p.actor.clone(),
                });
                Ok(Caller(p))
            }
            None => Err(WebError::Unauthorized),
        }
    }
}

/// What a route asks of its caller's role. The typed extractors below check
/// it from the request head, so a handler that names one in front of its body
/// extractor refuses a wrong role before a byte of the body is read.
pub trait Requirement {
    /// Whether `role` may make the request.
    fn allows(role: Role) -> bool;
}

/// Reads: any authenticated role (the pages' start page, own account).
#[derive(Debug, Clone, Copy)]
pub struct Read;

impl Requirement for Read {
    fn allows(_: Role) -> bool {
        true
    }
}

/// Changes configuration: zones, doors, people, cards, schedules, bookings.
#[derive(Debug, Clone, Copy)]
pub struct Manage;

impl Requirement for Manage {
    fn allows(role: Role) -> bool {
        role.can_manage()
    }
}

/// Operates: card lifecycle actions, alarm acknowledgement.
#[derive(Debug, Clone, Copy)]
pub struct Operate;

impl Requirement for Operate {
    fn allows(role: Role) -> bool {
        role.can_operate()
    }
}

/// Administers: users, tokens, controllers, threat levels.
#[derive(Debug, Clone, Copy)]
pub struct Administer;

impl Requirement for Administer {
    fn allows(role: Role) -> bool {
        role == Role::Admin
    }
}

/// A caller whose role meets `R`, checked before the body is read.
#[derive(Debug, Clone)]
pub struct Authorized<R> {
    /// Who is calling.
    pub principal: Principal,
    requirement: PhantomData<R>,
}

impl<R> Authorized<R> {
    /// Name recorded in the audit log.
    pub fn actor(&self) -> &str {
        &self.principal.actor
    }
}

/// A caller that may manage configuration.
pub type Manager = Authorized<Manage>;
/// A caller that may operate (card actions, alarms).
pub type Operator = Authorized<Operate>;
/// An admin caller.
pub type Admin = Authorized<Administer>;

impl<R: Requirement + Send + Sync> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        if !R::allows(principal.role) {
            return Err(WebError::Forbidden);
        }
        Ok(Authorized {
            principal,
            requirement: PhantomData,
        })
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
        ActorSlot::note(parts, || format!("controller:{}", id.0));
        match state
            .store
            .authenticate_controller(id, secret, now_ms())
            .await?
        {
            ControllerAuth::Accepted { connected } => {
                if connected {
                    tracing::info!(controller = id.0, "controller connected");
                }
                Ok(ControllerCaller(id))
            }
            ControllerAuth::Disabled => Err(WebError::ControllerDisabled(id.0)),
            ControllerAuth::Refused => Err(WebError::Unauthorized),
        }
    }
}

/// Signs off the monthly machine-room review: the security reviewer, or an
/// admin. Facilities and operators make the changes the review looks at, so
/// they do not sign it off.
#[derive(Debug, Clone, Copy)]
pub struct SignOffReview;

impl Requirement for SignOffReview {
    fn allows(role: Role) -> bool {
        matches!(role, Role::Admin | Role::Security)
    }
}

/// A caller that may sign off the monthly review.
pub type Reviewer = Authorized<SignOffReview>;
