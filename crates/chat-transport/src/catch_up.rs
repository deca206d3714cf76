//! `GET /api/events`: the durable events a client missed, over REST — the same events, with the
//! same data, as the realtime doors would have delivered after the position it gives.

use actix_web::{HttpResponse, web};
use chat_domain::{DomainError, TopicId};
use chat_service::ResumeFrom;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::openapi::responses::{BadEvents, StorageFailed, StorageUnavailable, TopicForbidden, Unauthenticated};
use crate::realtime::payload;
use crate::tenant::Tenant;
use crate::{ApiError, ApiState};

/// Events in one answer when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;

/// The most events in one answer; a larger `limit` is lowered to it.
const MAX_LIMIT: usize = 1_000;

/// What to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// The position to read after: from `authenticated`, an event's `position`, a page's
    /// `state.position`, or the `position` of the previous answer. One chatd did not make answers
    /// `"recovered": false`.
    #[param(example = "1764590000123456-42")]
    since: String,
    /// The most events to return: 1 to 4294967295 (default 100; larger than 1000 is lowered to
    /// it).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295_u64)]
    limit: Option<String>,
    /// A topic id: read that topic's events (the topic must be open to the caller) instead of the
    /// caller's own channel.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 9007199254740991_u64)]
    topic: Option<String>,
}

/// One event, as the realtime doors send it.
#[derive(Debug, Serialize, ToSchema)]
struct EventOut {
    /// Its name: `new-message`, `message-updated`, `message-seen` or `message-deleted`.
    event: &'static str,
    /// Its data, `position` included, exactly as on `/ws` and Socket.IO.
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

/// What the caller missed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Events)]
struct EventsAnswer {
    /// The events after `since`, oldest first (at most `limit`; empty when not recovered).
    events: Vec<EventOut>,
    /// Where to read on from: the last event's position, or the channel's when there was none.
    /// Fewer events than `limit` means the caller is up to date.
    #[schema(example = "1764590000123456-42")]
    position: String,
    /// Whether every event after `since` could be had. `false` when `since` is outside the
    /// retained window (`realtime.history_size` events, `realtime.history_ttl_seconds`), from
    /// another epoch (the history was lost), or not a position: the client reloads what it shows
    /// over the REST API and goes on from `position`.
    recovered: bool,
}

/// Missed events.
///
/// The durable events (`new-message`, `message-updated`, `message-seen`, `message-deleted`) of
/// the caller's own channel — or of `topic` — after position `since`, with the data the realtime
/// doors send. A client that was offline catches up with it before (or instead of) reconnecting
/// `since` its last position.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "chat",
    params(EventsQuery),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The events after `since`", body = EventsAnswer),
        (status = 400, response = BadEvents),
        (status = 401, response = Unauthenticated),
        (status = 403, response = TopicForbidden),
        (status = 500, response = StorageFailed),
        (status = 503, response = StorageUnavailable),
    )
)]
pub(crate) async fn events(
    state: web::Data<ApiState>,
    Authenticated(caller): Authenticated,
    Tenant(tenant): Tenant,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let bad = |message: &str| ApiError::from(DomainError::InvalidArgument(message.to_owned()));
    let since = query.since.as_str();
    let limit = match query.limit.as_deref().map(|text| (text, text.parse::<u32>())) {
        None => DEFAULT_LIMIT,
        // Digits only (`u32::from_str` would take a leading `+`), 1 to 2^32 − 1, as paging's.
        Some((text, Ok(limit))) if limit > 0 && text.bytes().all(|b| b.is_ascii_digit()) => {
            usize::try_from(limit).unwrap_or(MAX_LIMIT).min(MAX_LIMIT)
        }
        Some(_) => return Err(bad("limit must be an integer from 1 to 4294967295")),
    };
    let topic = query.topic.as_deref().map(TopicId::parse).transpose()?;
    let catch_up = state.hub().catch_up(&tenant, &caller, topic, ResumeFrom::parse(Some(since)), limit).await?;
    let user = caller.user();
    Ok(HttpResponse::Ok().json(EventsAnswer {
        events: catch_up
            .events
            .iter()
            .map(|(position, event)| EventOut {
                event: event.name(),
                data: payload::event_data(event, Some(*position), user),
            })
            .collect(),
        position: catch_up.position.to_string(),
        recovered: catch_up.recovered,
    }))
}
