//! The JSON API under `/api/v1`: routes, the OpenAPI document, and the
//! response sets every handler documents.

mod access;
mod approvals;
mod cards;
mod credentials;
mod doors;
mod enrollment_jobs;
pub(crate) mod events;
pub(crate) mod history;
mod imports;
mod lockdowns;
mod monitor;
mod people;
pub(crate) mod reports;
mod review;
mod reviews;
mod sites;
mod tamper;
mod zones;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::Ref;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr};
use utoipa::{IntoParams, OpenApi};

use crate::error::ErrorBody;
pub use crate::json::Input;
use crate::store::alarms::AlarmState;
use crate::store::lockdowns::LockdownState;
use crate::store::queries::{Order, ReasonCode};
use crate::store::resources::{CardState, Id, Level, Millis, Outcome, PersonKind, Uid};
use crate::AppState;

fn bounded_cursor<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let cursor = String::deserialize(d)?;
    if cursor.chars().count() > 200 {
        return Err(serde::de::Error::custom(
            "cursor longer than 200 characters",
        ));
    }
    Ok(Some(cursor))
}

/// Paging parameters of list endpoints.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next` value of the previous page.
    #[param(max_length = 200)]
    #[serde(default, deserialize_with = "bounded_cursor")]
    pub cursor: Option<String>,
}

impl Paging {
    fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
        .into()
}

fn error_set(codes: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    codes
        .iter()
        .map(|code| {
            let description = match code {
                400 => "Malformed request or value out of range",
                401 => "Missing, unknown or expired token",
                403 => "The token's role does not allow this",
                404 => "No such resource",
                409 => "Conflicts with existing data (duplicate, naming the clashing key; still referred to; illegal transition)",
                422 => "Refers to something that does not exist (`missing_reference`), or combines settings the level rules make meaningless (`meaningless_combination`)",
                413 => "Request body too large",
                _ => "Internal error (details are logged, never shown)",
            };
            (code.to_string(), error_response(description))
        })
        .collect()
}

macro_rules! error_sets {
    ($($(#[$m:meta])* $name:ident = [$($code:literal),*];)*) => {
        $(
            $(#[$m])*
            #[derive(Debug)]
            pub struct $name;
            impl utoipa::IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    error_set(&[$($code),*])
                }
            }
        )*
    };
}

error_sets! {
    /// Errors of a read without a path id.
    ReadErrors = [400, 401, 500];
    /// Errors of an admin-only read without a path id.
    AdminReadErrors = [400, 401, 403, 500];
    /// Errors of a read of one resource.
    GetErrors = [400, 401, 404, 500];
    /// Errors of a create.
    CreateErrors = [400, 401, 403, 409, 413, 422, 500];
    /// Errors of an update of one resource.
    UpdateErrors = [400, 401, 403, 404, 409, 413, 422, 500];
    /// Errors of a delete or a body-less action on one resource.
    ActionErrors = [400, 401, 403, 404, 409, 500];
    /// Errors of an action on one resource with a small body (a comment).
    BodyActionErrors = [400, 401, 403, 404, 409, 413, 500];
    /// Errors of a bulk import (a file refused as a whole is a 400).
    ImportErrors = [400, 401, 403, 413, 500];
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tbr_…")
                    .description(Some("API token from `tobira central token create`"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of `/api/v1`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tobira central service API",
        version = "1",
        description = "Configuration, card lifecycle, events, occupancy, alarms and audit of a Tobira access-control estate. Authenticate with `Authorization: Bearer tbr_…`."
    ),
    paths(
        sites::list_sites, sites::create_site, sites::get_site, sites::update_site, sites::delete_site,
        sites::set_site_threat, sites::list_holidays, sites::put_holiday, sites::delete_holiday,
        zones::list_zones, zones::create_zone, zones::get_zone, zones::update_zone, zones::delete_zone,
        zones::set_zone_threat,
        zones::list_schedules, zones::create_schedule, zones::get_schedule, zones::update_schedule,
        zones::delete_schedule,
        doors::list_doors, doors::create_door, doors::get_door, doors::update_door, doors::delete_door,
        doors::list_controllers, doors::create_controller, doors::get_controller,
        people::list_people, people::create_person, people::get_person, people::update_person,
        people::delete_person,
        people::list_enrollments, people::create_enrollment, people::delete_enrollment,
        enrollment_jobs::request_enrollment, enrollment_jobs::list_enrollment_jobs,
        enrollment_jobs::get_enrollment_job,
        cards::list_cards, cards::create_card, cards::get_card, cards::update_card,
        cards::report_lost, cards::suspend, cards::revoke, cards::return_card, cards::reactivate,
        access::list_groups, access::create_group, access::get_group, access::update_group,
        access::delete_group, access::list_members, access::add_member, access::remove_member,
        access::list_grants, access::create_grant, access::get_grant, access::update_grant,
        access::delete_grant,
        access::list_bookings, access::create_booking, access::get_booking, access::update_booking,
        access::delete_booking,
        events::search_events, events::export_events, events::occupancy,
        review::list_alarms, review::ack_alarm, review::clear_alarm, review::list_audit, review::verify_audit,
        credentials::list_tokens, credentials::revoke_token, credentials::disable_controller,
        credentials::enable_controller, credentials::rotate_controller_secret,
        credentials::delete_controller,
        tamper::list_checkpoints, tamper::make_checkpoints, tamper::verify,
        imports::preview_people_import, imports::apply_people_import,
        monitor::view, monitor::updates,
        history::history, history::export_history, history::inside,
        approvals::list_approvals, approvals::get_approval, approvals::approve, approvals::refuse,
        lockdowns::list_lockdowns, lockdowns::start_lockdown, lockdowns::get_lockdown,
        lockdowns::release_lockdown,
        reviews::list_reviews, reviews::get_review, reviews::sign_off, reviews::zone_access,
        reviews::list_recertifications, reviews::recertify,
        reports::unused_cards, reports::unused_cards_csv, reports::denials, reports::denials_csv,
        reports::door_alarms, reports::door_alarms_csv, reports::room_utilisation,
        reports::room_utilisation_csv, reports::busiest_doors, reports::busiest_doors_csv,
    ),
    components(schemas(ErrorBody, Id, Level, Millis, Uid, PersonKind, CardState, Outcome, ReasonCode, Order, AlarmState, LockdownState)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "structure", description = "Sites, zones, schedules, holidays, doors, controllers, threat levels"),
        (name = "people", description = "People, biometric enrollments, cards and their lifecycle"),
        (name = "access", description = "Access groups, members, grants, room bookings"),
        (name = "events", description = "Event search, CSV export, level-4 occupancy"),
        (name = "review", description = "Alarms and the admin audit log"),
        (name = "credentials", description = "API tokens and controller credentials (admin)"),
        (name = "reports", description = "Reports over a period: unused cards, denials, door alarms, room utilisation, busiest doors"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

fn openapi_text() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            // Serialising a derived document cannot fail in practice; if it
            // did, answer with valid JSON that says so rather than panic.
            .unwrap_or_else(|e| {
                serde_json::json!({"error": "internal", "message": e.to_string()}).to_string()
            })
    })
}

async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_text())
}

/// A known path with a method it does not have: 405 with a JSON body (axum
/// adds the `Allow` header).
async fn method_not_allowed() -> impl IntoResponse {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(ErrorBody {
            error: "method_not_allowed".into(),
            message: "this path does not support that method".into(),
        }),
    )
}

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    routes().method_not_allowed_fallback(method_not_allowed)
}

fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route(
            "/api/v1/sites",
            get(sites::list_sites).post(sites::create_site),
        )
        .route(
            "/api/v1/sites/{id}",
            get(sites::get_site)
                .put(sites::update_site)
                .delete(sites::delete_site),
        )
        .route("/api/v1/sites/{id}/threat", put(sites::set_site_threat))
        .route("/api/v1/sites/{id}/holidays", get(sites::list_holidays))
        .route(
            "/api/v1/sites/{id}/holidays/{date}",
            put(sites::put_holiday).delete(sites::delete_holiday),
        )
        .route(
            "/api/v1/zones",
            get(zones::list_zones).post(zones::create_zone),
        )
        .route(
            "/api/v1/zones/{id}",
            get(zones::get_zone)
                .put(zones::update_zone)
                .delete(zones::delete_zone),
        )
        .route("/api/v1/zones/{id}/threat", put(zones::set_zone_threat))
        .route(
            "/api/v1/schedules",
            get(zones::list_schedules).post(zones::create_schedule),
        )
        .route(
            "/api/v1/schedules/{id}",
            get(zones::get_schedule)
                .put(zones::update_schedule)
                .delete(zones::delete_schedule),
        )
        .route(
            "/api/v1/doors",
            get(doors::list_doors).post(doors::create_door),
        )
        .route(
            "/api/v1/doors/{id}",
            get(doors::get_door)
                .put(doors::update_door)
                .delete(doors::delete_door),
        )
        .route(
            "/api/v1/controllers",
            get(doors::list_controllers).post(doors::create_controller),
        )
        .route(
            "/api/v1/controllers/{id}",
            get(doors::get_controller).delete(credentials::delete_controller),
        )
        .route(
            "/api/v1/controllers/{id}/disable",
            post(credentials::disable_controller),
        )
        .route(
            "/api/v1/controllers/{id}/enable",
            post(credentials::enable_controller),
        )
        .route(
            "/api/v1/controllers/{id}/rotate-secret",
            post(credentials::rotate_controller_secret),
        )
        .route("/api/v1/tokens", get(credentials::list_tokens))
        .route(
            "/api/v1/tokens/{id}/revoke",
            post(credentials::revoke_token),
        )
        .route(
            "/api/v1/people",
            get(people::list_people).post(people::create_person),
        )
        .route(
            "/api/v1/people/{id}",
            get(people::get_person)
                .put(people::update_person)
                .delete(people::delete_person),
        )
        .route(
            "/api/v1/enrollments",
            get(people::list_enrollments).post(people::create_enrollment),
        )
        .route(
            "/api/v1/enrollments/{module_id}/{slot}",
            axum::routing::delete(people::delete_enrollment),
        )
        .route(
            "/api/v1/enrollment-jobs",
            get(enrollment_jobs::list_enrollment_jobs).post(enrollment_jobs::request_enrollment),
        )
        .route(
            "/api/v1/enrollment-jobs/{id}",
            get(enrollment_jobs::get_enrollment_job),
        )
        .route(
            "/api/v1/cards",
            get(cards::list_cards).post(cards::create_card),
        )
        .route(
            "/api/v1/cards/{uid}",
            get(cards::get_card).put(cards::update_card),
        )
        .route("/api/v1/cards/{uid}/lost", post(cards::report_lost))
        .route("/api/v1/cards/{uid}/suspend", post(cards::suspend))
        .route("/api/v1/cards/{uid}/revoke", post(cards::revoke))
        .route("/api/v1/cards/{uid}/return", post(cards::return_card))
        .route("/api/v1/cards/{uid}/reactivate", post(cards::reactivate))
        .route(
            "/api/v1/groups",
            get(access::list_groups).post(access::create_group),
        )
        .route(
            "/api/v1/groups/{id}",
            get(access::get_group)
                .put(access::update_group)
                .delete(access::delete_group),
        )
        .route("/api/v1/groups/{id}/members", get(access::list_members))
        .route(
            "/api/v1/groups/{id}/members/{person_id}",
            put(access::add_member).delete(access::remove_member),
        )
        .route(
            "/api/v1/grants",
            get(access::list_grants).post(access::create_grant),
        )
        .route(
            "/api/v1/grants/{id}",
            get(access::get_grant)
                .put(access::update_grant)
                .delete(access::delete_grant),
        )
        .route(
            "/api/v1/bookings",
            get(access::list_bookings).post(access::create_booking),
        )
        .route(
            "/api/v1/bookings/{id}",
            get(access::get_booking)
                .put(access::update_booking)
                .delete(access::delete_booking),
        )
        .route("/api/v1/events", get(events::search_events))
        .route("/api/v1/events.csv", get(events::export_events))
        .route("/api/v1/occupancy", get(events::occupancy))
        .route("/api/v1/monitor", get(monitor::view))
        .route("/api/v1/monitor/stream", get(monitor::updates))
        .route("/api/v1/alarms", get(review::list_alarms))
        .route("/api/v1/alarms/{id}/ack", post(review::ack_alarm))
        .route("/api/v1/alarms/{id}/clear", post(review::clear_alarm))
        .route("/api/v1/audit", get(review::list_audit))
        .route("/api/v1/audit/verify", get(review::verify_audit))
        .route(
            "/api/v1/checkpoints",
            get(tamper::list_checkpoints).post(tamper::make_checkpoints),
        )
        .route("/api/v1/verify", get(tamper::verify))
        .route(
            "/api/v1/imports/people/preview",
            post(imports::preview_people_import),
        )
        .route(
            "/api/v1/imports/people/apply",
            post(imports::apply_people_import),
        )
        .route("/api/v1/history", get(history::history))
        .route("/api/v1/history.csv", get(history::export_history))
        .route("/api/v1/inside", get(history::inside))
        .route("/api/v1/approvals", get(approvals::list_approvals))
        .route("/api/v1/approvals/{id}", get(approvals::get_approval))
        .route("/api/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/api/v1/approvals/{id}/refuse", post(approvals::refuse))
        .route(
            "/api/v1/lockdowns",
            get(lockdowns::list_lockdowns).post(lockdowns::start_lockdown),
        )
        .route("/api/v1/lockdowns/{id}", get(lockdowns::get_lockdown))
        .route(
            "/api/v1/lockdowns/{id}/release",
            post(lockdowns::release_lockdown),
        )
        .route("/api/v1/reviews", get(reviews::list_reviews))
        .route("/api/v1/reviews/access", get(reviews::zone_access))
        .route("/api/v1/reviews/{month}", get(reviews::get_review))
        .route("/api/v1/reviews/{month}/sign-off", post(reviews::sign_off))
        .route(
            "/api/v1/recertifications",
            get(reviews::list_recertifications).post(reviews::recertify),
        )
        .route("/api/v1/reports/unused-cards", get(reports::unused_cards))
        .route(
            "/api/v1/reports/unused-cards.csv",
            get(reports::unused_cards_csv),
        )
        .route("/api/v1/reports/denials", get(reports::denials))
        .route("/api/v1/reports/denials.csv", get(reports::denials_csv))
        .route("/api/v1/reports/door-alarms", get(reports::door_alarms))
        .route(
            "/api/v1/reports/door-alarms.csv",
            get(reports::door_alarms_csv),
        )
        .route(
            "/api/v1/reports/room-utilisation",
            get(reports::room_utilisation),
        )
        .route(
            "/api/v1/reports/room-utilisation.csv",
            get(reports::room_utilisation_csv),
        )
        .route("/api/v1/reports/busiest-doors", get(reports::busiest_doors))
        .route(
            "/api/v1/reports/busiest-doors.csv",
            get(reports::busiest_doors_csv),
        )
}
