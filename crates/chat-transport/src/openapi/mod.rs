//! The OpenAPI 3.1 document of the REST API: the handlers' `#[utoipa::path]` attributes, the wire
//! types' `ToSchema` derives, and the named error answers, put together once.

pub(crate) mod responses;
pub(crate) mod schemas;

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "chatd", description = include_str!("description.md")),
    paths(
        routes::about,
        routes::healthz,
        routes::readyz,
        routes::welcome,
        routes::openapi_document,
        routes::inbox,
        crate::catch_up::events,
        routes::history,
        routes::send,
        routes::read,
        routes::edit,
        routes::delete,
    ),
    components(
        // Referred to by name from hand-written schemas and responses, so not collected by the derive.
        schemas(crate::wire::MessageOut, crate::error::ErrorBody),
        responses(
            responses::InvalidToken,
            responses::Unauthenticated,
            responses::BadPaging,
            responses::BadEvents,
            responses::BadHistory,
            responses::BadSend,
            responses::BadRead,
            responses::ReadNotFound,
            responses::BadEdit,
            responses::BadDelete,
            responses::TopicForbidden,
            responses::MessageForbidden,
            responses::NoRoute,
            responses::MessageNotFound,
            responses::Conflict,
            responses::IdempotencyKeyReused,
            responses::PayloadTooLarge,
            responses::RateLimited,
            responses::StorageFailed,
            responses::StorageUnavailable,
            responses::MethodNotAllowed,
            responses::HeadersTooLarge,
        )
    ),
    modifiers(&Additions),
    tags(
        (name = "chat", description = "Chats, messages and inboxes: the original service's REST API"),
        (name = "service", description = "The service itself: what it is, health, readiness, this document"),
    )
)]
struct ApiDoc;

/// What the derive cannot add: the security schemes, the schemas written by hand, and `required`
/// on every path parameter.
struct Additions;

impl Modify for Additions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // A path parameter is always required, but utoipa says so only for those whose type it
        // derives, not for those described with `schema_with`.
        for parameter in operations(openapi).flat_map(|operation| operation.parameters.iter_mut().flatten()) {
            if let RefOr::T(parameter) = parameter
                && parameter.parameter_in == ParameterIn::Path
            {
                parameter.required = Required::True;
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("token", token_scheme("X-Auth-Token"));
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The JWT as `Authorization: Bearer <token>`."))
                    .build(),
            ),
        );
        for (name, schema) in schemas::named() {
            components.schemas.insert(name.to_owned(), schema);
        }
    }
}

/// Every operation of `document`.
fn operations(document: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    document.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.post, &mut item.delete, &mut item.put, &mut item.patch].into_iter().flatten()
    })
}

/// Makes `document` say what this chatd does: the configured text length and token header, and
/// the 431 of the header limit on every operation (the limit answers before any route runs, so it
/// applies to whatever else [`crate::ChatMiddleware`] wraps too).
pub(crate) fn as_configured(document: &mut utoipa::openapi::OpenApi, max_text_chars: usize, token_header: &str) {
    for operation in operations(document) {
        operation.responses.responses.insert("431".to_owned(), Ref::from_response_name("HeadersTooLarge").into());
    }
    let components = document.components.get_or_insert_with(Default::default);
    components.schemas.insert("Text".to_owned(), schemas::text(max_text_chars).into());
    components.add_security_scheme("token", token_scheme(token_header));
}

/// The `token` security scheme: the JWT in `header`, spelt `X-Auth-Token` however it was configured
/// (header names are case-insensitive, and actix keeps them in lower case).
fn token_scheme(header: &str) -> SecurityScheme {
    let capitalised = |word: &str| match word.split_at_checked(1) {
        Some((first, rest)) => first.to_ascii_uppercase() + &rest.to_ascii_lowercase(),
        None => String::new(),
    };
    let header = header.split('-').map(capitalised).collect::<Vec<_>>().join("-");
    SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
        header,
        "The JWT in the configured token header (`jwt.header`, `X-Auth-Token` by default). When it is \
         present and not empty it is used, even if `Authorization` is sent too."
            .to_owned(),
    )))
}

/// The OpenAPI 3.1 document of the routes [`crate::ChatApi`] mounts. An embedding application
/// adds its own routes to it (chatd adds `/metrics`) and hands it to
/// [`crate::ChatApiBuilder::openapi`], to be served at `GET /api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(fields) => {
                if let Some(Value::String(reference)) = fields.get("$ref") {
                    found.push(reference);
                }
                fields.values().for_each(|value| references(value, found));
            }
            Value::Array(items) => items.iter().for_each(|item| references(item, found)),
            _ => {}
        }
    }

    /// A schema or response referred to by name must be registered with the derive (or added by
    /// `Additions`): nothing else checks that the names match.
    #[test]
    fn every_reference_names_something_in_the_document() {
        let document = serde_json::to_value(super::openapi()).expect("serialisable");
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(found.len() > 20, "{found:?}");
        for reference in found {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            assert!(document.pointer(pointer).is_some(), "{reference} names nothing");
        }
    }
}
