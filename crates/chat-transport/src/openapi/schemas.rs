//! Schemas the derives cannot say by themselves: closed sets of strings, ids, the text and image
//! rules of a message body, profiles, and a message seen from one answer or another.

use chat_domain::ids::MAX_ID;
use utoipa::openapi::schema::RefBuilder;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};

/// A string with at least one character that is not white space, in the sense of Rust's
/// `char::is_whitespace` (which is what `str::trim` removes). `\s` would not do: it means slightly
/// different characters in ECMA-262, Python and Rust.
const NOT_BLANK: &str = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

fn string_enum(values: &[&'static str]) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied()))
}

/// `true`.
pub(crate) fn always_true() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Boolean).enum_values(Some([true]))
}

/// `"ok"` or `"ready"`.
pub(crate) fn health_status() -> ObjectBuilder {
    string_enum(&["ok", "ready"])
}

/// `"text"` or `"image"`.
pub(crate) fn message_type() -> ObjectBuilder {
    string_enum(&["text", "image"])
}

/// `"seen"`.
pub(crate) fn seen() -> ObjectBuilder {
    string_enum(&["seen"])
}

/// `"user"` or `"topic"`.
pub(crate) fn target() -> ObjectBuilder {
    string_enum(&["user", "topic"]).description(Some("`user`: a DM with user `id`; `topic`: topic `id`."))
}

/// A user or topic id: a positive integer a JavaScript client holds exactly.
pub(crate) fn id() -> ObjectBuilder {
    ObjectBuilder::new()
        .description(Some("A user or topic id, 1 to 2^53−1 (in a path: ASCII digits)."))
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .maximum(Some(MAX_ID))
}

/// The named `Profile` schema.
pub(crate) fn profile() -> Ref {
    Ref::from_schema_name("Profile")
}

/// A user's or topic's profile as the directory gives it: any object with an `id`.
pub(crate) fn profile_definition() -> ObjectBuilder {
    let id =
        OneOfBuilder::new().item(id()).item(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[0-9]+$")));
    ObjectBuilder::new()
        .description(Some(
            "A user's or topic's profile, passed through from the directory: the platform API's \
             object (`id, username, role, picture_url, profile_url` for a user, `id, title, status, \
             cover_image_thumbnail` for a topic), an entry of `platform.profiles_file`, or by default \
             `{\"id\", \"username\": \"user-N\"}` / `{\"id\", \"title\": \"topic-N\"}`. When the \
             platform API cannot supply it, just `{\"id\": N}`.",
        ))
        .property("id", id)
        .required("id")
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(true)))
}

/// A message's `author`: the user id, or the user's profile.
pub(crate) fn author() -> OneOfBuilder {
    OneOfBuilder::new().item(id()).item(profile())
}

/// A message whose `author` is the user id (send, edit and inbox answers).
pub(crate) fn message_by_id() -> AllOfBuilder {
    AllOfBuilder::new().item(Ref::from_schema_name("Message")).item(ObjectBuilder::new().property("author", id()))
}

/// A message whose `author` is the user's profile (a history).
pub(crate) fn message_by_profile() -> AllOfBuilder {
    AllOfBuilder::new().item(Ref::from_schema_name("Message")).item(ObjectBuilder::new().property("author", profile()))
}

/// The messages of a history page, oldest first.
pub(crate) fn history_messages() -> ArrayBuilder {
    ArrayBuilder::new().items(message_by_profile())
}

/// An inbox entry's `latest`: a message by id, or `null`.
/// `state.read` of a history page: user id → the message id read up to, or `null`.
pub(crate) fn read_positions() -> ObjectBuilder {
    let message = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::Custom("uuid".into()))))
        .item(ObjectBuilder::new().schema_type(Type::Null));
    ObjectBuilder::new()
        .property_names(Some(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[0-9]+$"))))
        .additional_properties(Some(Schema::OneOf(message.build())))
}

pub(crate) fn latest() -> OneOfBuilder {
    OneOfBuilder::new().item(message_by_id()).item(ObjectBuilder::new().schema_type(Type::Null))
}

/// The named `Text` schema: message text as a send or an edit takes it, at most `max_chars`
/// characters (`chat.max_text_chars`, set when the document is served).
pub(crate) fn text(max_chars: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max_chars))
        .pattern(Some(NOT_BLANK))
        .description(Some(format!(
            "Not empty or only white space; at most {max_chars} Unicode characters (`chat.max_text_chars`). \
             Stored exactly as sent."
        )))
}

/// A reference to the named `Text` schema, with its own description.
fn text_ref(description: &str) -> Ref {
    RefBuilder::new().ref_location_from_schema_name("Text").description(Some(description)).build()
}

/// An image as a send or an edit takes it: a non-empty object or a string that is not blank.
pub(crate) fn image() -> OneOfBuilder {
    OneOfBuilder::new()
        .description(Some(
            "Whatever the platform's clients agree on, stored and returned as sent: a non-empty object \
             (such as `{\"url\": …, \"width\": …}`) or a string that is not blank (a URL).",
        ))
        .item(ObjectBuilder::new().schema_type(Type::Object).min_properties(Some(1)))
        .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some(NOT_BLANK)))
}

/// A send: a text or an image message.
pub(crate) fn send_body() -> OneOfBuilder {
    let message = |kind: &'static str, field: &'static str, schema: RefOr<Schema>| {
        ObjectBuilder::new()
            .title(Some(format!("{kind} message")))
            .property("type", string_enum(&[kind]))
            .property(field, schema)
            .required("type")
            .required(field)
    };
    OneOfBuilder::new()
        .description(Some("A text or an image message. Other fields are ignored."))
        .item(message("text", "text", text_ref("The message text.").into()))
        .item(message("image", "image", image().into()))
}

/// An edit: any of `text`, `image` and `status`, at least one of them not `null`.
pub(crate) fn edit_body() -> AllOfBuilder {
    let nullable =
        |schema: RefOr<Schema>| OneOfBuilder::new().item(schema).item(ObjectBuilder::new().schema_type(Type::Null));
    let fields = ObjectBuilder::new()
        .property(
            "text",
            nullable(text_ref("The new text of a text message (its author only); the rules of a send.").into()),
        )
        .property(
            "image",
            nullable(image().description(Some("The new image of an image message (its author only).")).into()),
        )
        .property(
            "status",
            nullable(
                seen().description(Some("`seen` marks the message seen (anyone in the chat but its author).")).into(),
            ),
        );
    let present =
        |field: &'static str, schema: ObjectBuilder| ObjectBuilder::new().property(field, schema).required(field);
    let one_present = AnyOfBuilder::new()
        .item(present("text", ObjectBuilder::new().schema_type(Type::String)))
        .item(present(
            "image",
            ObjectBuilder::new().schema_type([Type::Object, Type::String].into_iter().collect::<SchemaType>()),
        ))
        .item(present("status", ObjectBuilder::new().schema_type(Type::String)));
    AllOfBuilder::new()
        .description(Some(
            "Any of `text`, `image` and `status`; `null` counts as absent, and other fields are ignored. A \
             field that does not fit the message (`text` on an image message, `image` on a text message) \
             is ignored too, and when nothing is left to apply the answer is 400 `INVALID_ARGUMENT` \
             \"No valid data was supplied\".",
        ))
        .item(fields)
        .item(one_present)
}

/// The named schemas added to the document by hand (the derives refer to them by name). `Text`
/// has chatd's default length here; the document as served has the configured one.
pub(crate) fn named() -> Vec<(&'static str, RefOr<Schema>)> {
    const DEFAULT_MAX_TEXT_CHARS: usize = 4000;
    vec![("Profile", profile_definition().into()), ("Text", text(DEFAULT_MAX_TEXT_CHARS).into())]
}
