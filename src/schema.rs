//! JSON Schema pieces of the OpenAPI document (`api::openapi`) for what the server reads: each
//! helper states what one of `validate`'s readers accepts, so that request schemas can be
//! written beside the types whose `Input` readers they describe, and a fuzzer can check both
//! ways. Also the query-parameter and response-type helpers those declarations use.

use std::borrow::Cow;

use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ArrayBuilder, ArrayItems, ObjectBuilder, Schema, SchemaType, Type,
};

use crate::validate::SHORT_TEXT_MAX;

/// A response type of the server, derived with `utoipa::ToSchema` beside its type, by name
/// and with the schemas it refers to.
#[derive(Clone, Copy)]
pub struct Named {
    pub name: fn() -> Cow<'static, str>,
    pub register: fn(&mut Vec<(String, RefOr<Schema>)>),
}

/// The schema of `T`, to be named in a document.
pub const fn named<T: ToSchema>() -> Named {
    fn register<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
        T::schemas(out);
        out.push((T::name().into_owned(), T::schema()));
    }
    Named {
        name: T::name,
        register: register::<T>,
    }
}

pub fn query(name: &str, schema: impl Into<RefOr<Schema>>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(utoipa::openapi::Required::False)
        .schema(Some(schema))
        .build()
}

/// `limit`: any integer of at least 1 in decimal digits, however large: above the list's
/// maximum it is clamped (docs/api/README.md). Empty is no value.
pub fn limit() -> Parameter {
    query(
        "limit",
        string()
            .pattern(Some("^([ \\t\\n\\f\\r]*0*[1-9][0-9]*[ \\t\\n\\f\\r]*)?$"))
            .description(Some(
                "An integer of at least 1; above the maximum it is clamped.",
            )),
    )
}

/// Rust's `char::is_whitespace`, the set that `str::trim` removes, as a regex class body.
pub const WHITESPACE: &str =
    r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Some character that is not whitespace (`validate::non_blank`).
pub const NOT_BLANK: &str =
    r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

pub fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

pub fn any() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .build(),
    )
}

/// `validate::text`: at most `max` characters, kept as sent.
pub fn text(max: usize) -> ObjectBuilder {
    string().max_length(Some(max))
}

/// `validate::non_blank`: not only whitespace, at most `max` characters as sent.
pub fn content(max: usize) -> ObjectBuilder {
    string().pattern(Some(NOT_BLANK)).max_length(Some(max))
}

/// `validate::trimmed(1, max)`: 1 to `max` characters once leading and trailing whitespace is
/// trimmed (docs/api/README.md), so the bound is on the trimmed part.
pub fn trimmed(max: usize) -> ObjectBuilder {
    let ws = format!("[{WHITESPACE}]");
    let solid = format!("[^{WHITESPACE}]");
    string().pattern(Some(format!(
        "^{ws}*{solid}([\\s\\S]{{0,{}}}{solid})?{ws}*$",
        max.saturating_sub(2)
    )))
}

pub fn names(values: &[&str]) -> ObjectBuilder {
    string().enum_values(Some(values.iter().copied()))
}

/// A query parameter's enum: its values, or "", which is no value.
pub fn wire_or_empty<T>(values: &[(&str, T)]) -> ObjectBuilder {
    string().enum_values(Some(
        std::iter::once("").chain(values.iter().map(|(name, _)| *name)),
    ))
}

pub fn wire<T>(values: &[(&str, T)]) -> ObjectBuilder {
    string().enum_values(Some(values.iter().map(|(name, _)| *name)))
}

pub fn boolean() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Boolean)
}

pub fn object() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Object)
}

/// A JSON object of at most `bytes` bytes of JSON: JSON Schema has no keyword for a size in
/// bytes, so the cap is stated in words.
pub fn capped_object(bytes: usize) -> ObjectBuilder {
    object().description(Some(format!("At most {bytes} bytes as JSON.")))
}

pub fn integer(min: u64, max: u64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min))
        .maximum(Some(max))
}

/// A string field whose `null` is a value ("string or null", docs/api/README.md).
pub fn or_null(schema: ObjectBuilder) -> ObjectBuilder {
    schema.schema_type(SchemaType::from_iter([Type::String, Type::Null]))
}

fn items(schema: impl Into<RefOr<Schema>>) -> ArrayItems {
    ArrayItems::RefOrSchema(Box::new(schema.into()))
}

pub fn array(items: impl Into<RefOr<Schema>>, min: usize, max: usize) -> ArrayBuilder {
    ArrayBuilder::new()
        .items(self::items(items))
        .min_items(Some(min))
        .max_items(Some(max))
}

/// A create body: the listed properties, `required` among them; unknown keys are ignored
/// (docs/api/README.md), so they are allowed.
pub fn create_body(properties: Vec<(&str, RefOr<Schema>)>, required: &[&str]) -> ObjectBuilder {
    let mut schema = object();
    for (name, property) in properties {
        schema = schema.property(name, property);
    }
    for name in required {
        schema = schema.required(*name);
    }
    schema
}

/// A create body whose fields are all optional: `null` as the whole body is no body, `{}`
/// (docs/api/README.md), so it is valid too.
pub fn optional_body(properties: Vec<(&str, RefOr<Schema>)>) -> ObjectBuilder {
    create_body(properties, &[]).schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
}

/// A PATCH body: at least one of the listed properties, since a body without any is
/// `NO_UPDATES`; unknown keys are ignored as on a create.
pub fn patch_body(properties: Vec<(&str, RefOr<Schema>)>) -> Schema {
    patch_with(properties, Vec::new())
}

/// A PATCH body that must also satisfy each group of `alternatives`.
pub fn patch_with(
    properties: Vec<(&str, RefOr<Schema>)>,
    mut alternatives: Vec<Vec<Schema>>,
) -> Schema {
    let names: Vec<String> = properties.iter().map(|(n, _)| n.to_string()).collect();
    alternatives.insert(
        0,
        names
            .into_iter()
            .map(|name| object().required(name).into())
            .collect(),
    );
    all_of(create_body(properties, &[]), alternatives)
}

/// A lowercase slug: 2-50 characters, single hyphens between letters and digits.
pub fn slug() -> ObjectBuilder {
    string()
        .pattern(Some("^[a-z0-9]+(-[a-z0-9]+)*$"))
        .min_length(Some(2))
        .max_length(Some(50))
}

/// An RFC 1123 hostname, single labels included, any case (docs/api/README.md).
pub fn domain() -> ObjectBuilder {
    let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    string()
        .pattern(Some(format!("^{label}(\\.{label})*$")))
        .max_length(Some(253))
}

/// `<vendor>/<model>`: both parts non-empty, no whitespace.
pub fn ai_model() -> ObjectBuilder {
    let solid = format!("[^{WHITESPACE}]");
    let vendor = format!("[^/{WHITESPACE}]");
    string()
        .pattern(Some(format!("^{vendor}+/{solid}+$")))
        .max_length(Some(SHORT_TEXT_MAX))
}

pub fn hex_color() -> ObjectBuilder {
    string().pattern(Some("^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$"))
}

/// An IPv6 address in hex groups (`values::is_ipv6_literal`).
pub const IPV6: &str = "(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|\
     ([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|\
     ([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|\
     ([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:((:[0-9a-fA-F]{1,4}){1,6})|\
     :((:[0-9a-fA-F]{1,4}){1,7}|:))";

/// An absolute http(s) URL with a host, no whitespace or control characters, ≤ 2048; brackets
/// in the authority only around one IPv6 address.
pub fn http_url() -> ObjectBuilder {
    let plain = format!("[^{WHITESPACE}\\u0000-\\u001f\\u007f-\\u009f]");
    let host = format!("[^/?#\\[\\]{WHITESPACE}\\u0000-\\u001f\\u007f-\\u009f]");
    string()
        .pattern(Some(format!(
            "^[Hh][Tt][Tt][Pp][Ss]?://({host}*\\[{IPV6}\\]{host}*|{host}+)([/?#]{plain}*)?$"
        )))
        .max_length(Some(2048))
}

/// `scheme://host[:port]`, http or https.
pub fn origin() -> ObjectBuilder {
    let port =
        "0*([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
    string()
        .pattern(Some(format!(
            "^[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*|\\[{IPV6}\\])(:{port})?$"
        )))
        .max_length(Some(SHORT_TEXT_MAX))
}

pub fn email() -> ObjectBuilder {
    let part = format!("[^@.{WHITESPACE}]");
    let local = format!("[^@{WHITESPACE}]");
    string()
        .pattern(Some(format!("^{local}+@{part}+(\\.{part}+)+$")))
        .max_length(Some(SHORT_TEXT_MAX))
}

/// An object's own keywords and, for each group, `anyOf` the group's alternatives.
pub fn all_of(base: ObjectBuilder, groups: Vec<Vec<Schema>>) -> Schema {
    let mut all = AllOfBuilder::new().item(base);
    for group in groups {
        let mut any = AnyOfBuilder::new();
        for alternative in group {
            any = any.item(alternative);
        }
        all = all.item(any);
    }
    all.into()
}

/// An object whose `key`, when present, is one of `values`.
pub fn when(key: &str, values: &[&str]) -> Schema {
    object().property(key, names(values)).into()
}

/// An object whose `key` is present and a string.
pub fn has_string(key: &str) -> Schema {
    object().property(key, string()).required(key).into()
}

/// A property of a body: its name and schema.
pub fn prop(name: &'static str, schema: impl Into<Schema>) -> (&'static str, RefOr<Schema>) {
    (name, RefOr::T(schema.into()))
}

/// A list filter on a text field: at most `SHORT_TEXT_MAX` characters.
pub fn text_filter(name: &str) -> Parameter {
    query(name, text(SHORT_TEXT_MAX))
}
