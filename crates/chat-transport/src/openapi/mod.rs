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
        routes::history,
        routes::send,
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
            responses::BadHistory,
            responses::BadSend,
            responses::BadEdit,
            responses::BadDelete,
            responses::TopicForbidden,
            responses::MessageForbidden,
            responses::NoRoute,
            responses::MessageNotFound,
            responses::Conflict,
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
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Auth-Token",
                "The JWT in the configured token header (`jwt.header`, `X-Auth-Token` by default). When \
                 it is present and not empty it is used, even if `Authorization` is sent too.",
            ))),
        );
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

/// Adds the 431 of [`crate::header_limit`] to every operation of `document`: the limit answers
/// before any route runs, so it applies to the embedding application's routes too.
pub(crate) fn answer_oversized_heads(document: &mut utoipa::openapi::OpenApi) {
    for operation in operations(document) {
        operation.responses.responses.insert("431".to_owned(), Ref::from_response_name("HeadersTooLarge").into());
    }
}

/// The OpenAPI 3.1 document of the routes [`crate::configure`] registers. An embedding application
/// adds its own routes to it (chatd adds `/metrics`) and hands it over as [`crate::ApiParts::openapi`],
/// to be served at `GET /api/openapi.json`.
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
