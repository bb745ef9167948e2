//! Reading request bodies field by field. Every problem becomes one `Issue`, so a client learns
//! about all bad fields at once (docs/api/errors.md). The rules for each field live beside its
//! type; this module only walks the JSON and collects.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult, ErrorCode, Issue};

/// docs/api/README.md: short strings are capped at 255 characters, long text at 100 000.
pub const SHORT_TEXT_MAX: usize = 255;
pub const LONG_TEXT_MAX: usize = 100_000;

/// A field of a PATCH body: left out, sent as `null`, or sent with a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch<T> {
    Absent,
    Null,
    Set(T),
}

impl<T> Patch<T> {
    /// The new value of a nullable field, if the body changes it.
    pub fn into_change(self) -> Option<Option<T>> {
        match self {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Set(v) => Some(Some(v)),
        }
    }

    pub fn is_set(&self) -> bool {
        matches!(self, Patch::Set(_))
    }
}

/// Whether a field must be sent: `Optional` may be left out of a create body, `Updatable` (a
/// PATCH field that cannot be cleared) may be left out of a PATCH body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    Updatable,
}

/// A JSON object body being read. Unknown keys are ignored (docs/api/README.md).
pub struct Input {
    fields: Map<String, Value>,
    issues: Vec<Issue>,
    touched: bool,
}

/// The outcome of checking one value: the parsed value or the issue's message.
pub type Check<T> = Result<T, String>;

/// A field as sent, after the null rule.
enum Sent {
    Absent,
    /// `null` where the field has no `null`: the issue is already recorded.
    Refused,
    Value(Value),
}

impl Input {
    pub fn new(value: Value) -> ApiResult<Input> {
        match value {
            Value::Object(fields) => Ok(Input {
                fields,
                issues: Vec::new(),
                touched: false,
            }),
            _ => Err(ApiError::new(
                ErrorCode::BadJson,
                "Request body must be a JSON object",
            )),
        }
    }

    /// Whether the body has the field, whatever its value.
    pub fn has(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        let value = self.fields.remove(key);
        self.touched |= value.is_some();
        value
    }

    /// The one null rule of docs/api/README.md, for every field of every route: `null` is a value
    /// only for a field read with `nullable`; anywhere else it is an issue at the field's path.
    fn take_non_null(&mut self, key: &str) -> Sent {
        match self.take(key) {
            None => Sent::Absent,
            Some(Value::Null) => {
                self.issue(key, "Must not be null");
                Sent::Refused
            }
            Some(value) => Sent::Value(value),
        }
    }

    fn check<T>(
        &mut self,
        key: &str,
        value: &Value,
        parse: impl FnOnce(&Value) -> Check<T>,
    ) -> Option<T> {
        parse(value)
            .map_err(|message| self.issues.push(Issue::new(key, message)))
            .ok()
    }

    /// A field that must be present.
    pub fn required<T>(&mut self, key: &str, parse: impl FnOnce(&Value) -> Check<T>) -> Option<T> {
        match self.take_non_null(key) {
            Sent::Absent => {
                self.issue(key, "Required");
                None
            }
            Sent::Refused => None,
            Sent::Value(value) => self.check(key, &value, parse),
        }
    }

    /// A field that may be left out.
    pub fn optional<T>(&mut self, key: &str, parse: impl FnOnce(&Value) -> Check<T>) -> Option<T> {
        match self.take_non_null(key) {
            Sent::Absent | Sent::Refused => None,
            Sent::Value(value) => self.check(key, &value, parse),
        }
    }

    /// A field whose `null` is a value: it clears the field, or on a create means "none".
    pub fn nullable<T>(&mut self, key: &str, parse: impl FnOnce(&Value) -> Check<T>) -> Patch<T> {
        match self.take(key) {
            None => Patch::Absent,
            Some(Value::Null) => Patch::Null,
            Some(value) => self
                .check(key, &value, parse)
                .map_or(Patch::Absent, Patch::Set),
        }
    }

    /// A field that may be left out, as a `Patch` that is never `Null`: for a body type whose
    /// field is clearable on one route but not on another.
    pub fn settable<T>(&mut self, key: &str, parse: impl FnOnce(&Value) -> Check<T>) -> Patch<T> {
        self.optional(key, parse).map_or(Patch::Absent, Patch::Set)
    }

    /// A PATCH field that cannot be cleared.
    pub fn updatable<T>(&mut self, key: &str, parse: impl FnOnce(&Value) -> Check<T>) -> Option<T> {
        self.optional(key, parse)
    }

    /// An array field of at most `max_items` items, each checked by `item`; a bad item is
    /// reported at `key.<index>` (docs/api/errors.md). Duplicates are dropped, order kept.
    pub fn array<T: PartialEq>(
        &mut self,
        key: &str,
        presence: Presence,
        max_items: usize,
        item: impl Fn(&Value) -> Check<T>,
    ) -> Option<Vec<T>> {
        let value = match (self.take_non_null(key), presence) {
            (Sent::Absent, Presence::Required) => {
                self.issue(key, "Required");
                return None;
            }
            (Sent::Absent | Sent::Refused, _) => return None,
            (Sent::Value(value), _) => value,
        };
        let Some(items) = value.as_array() else {
            self.issue(key, "Expected array");
            return None;
        };
        if items.len() > max_items {
            self.issue(key, format!("Must contain at most {max_items} items"));
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut valid = true;
        for (index, value) in items.iter().enumerate() {
            match item(value) {
                Ok(parsed) if !out.contains(&parsed) => out.push(parsed),
                Ok(_) => {}
                Err(message) => {
                    valid = false;
                    self.issue(&format!("{key}.{index}"), message);
                }
            }
        }
        valid.then_some(out)
    }

    pub fn issue(&mut self, key: &str, message: impl Into<String>) {
        self.issues.push(Issue::new(key, message));
    }

    /// Ends a create body: all collected issues become one 400; with none, `build` makes the
    /// value. Required fields are still `Option`s here, so `build` takes them with `?`: one
    /// missing without an issue would be a bug in the reader, answered as an internal error.
    pub fn finish_with<T>(self, build: impl FnOnce() -> Option<T>) -> ApiResult<T> {
        self.check_issues()?;
        built(build())
    }

    /// Ends a PATCH body like `finish_with`, and answers 400 `NO_UPDATES` if no updatable field
    /// was sent.
    pub fn finish_update_with<T>(self, build: impl FnOnce() -> Option<T>) -> ApiResult<T> {
        let touched = self.touched;
        self.check_issues()?;
        if !touched {
            return Err(ApiError::new(
                ErrorCode::NoUpdates,
                "The body contains no updatable field",
            ));
        }
        built(build())
    }

    fn check_issues(self) -> ApiResult<()> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(self.issues))
        }
    }
}

fn built<T>(value: Option<T>) -> ApiResult<T> {
    value.ok_or_else(|| ApiError::internal("a body without issues lacks a required field"))
}

pub fn string(value: &Value) -> Check<&str> {
    value.as_str().ok_or_else(|| "Expected string".to_string())
}

pub fn boolean(value: &Value) -> Check<bool> {
    value
        .as_bool()
        .ok_or_else(|| "Expected boolean".to_string())
}

/// A string of at most `max` characters, kept as sent.
pub fn text(max: usize) -> impl Fn(&Value) -> Check<String> {
    move |value| {
        let s = string(value)?;
        if s.chars().count() > max {
            return Err(format!("Must be at most {max} characters"));
        }
        Ok(s.to_string())
    }
}

/// A trimmed string of `min..=max` characters.
pub fn trimmed(min: usize, max: usize) -> impl Fn(&Value) -> Check<String> {
    move |value| {
        let s = string(value)?.trim();
        let n = s.chars().count();
        if n < min {
            return Err(if min == 1 {
                "Must not be empty".into()
            } else {
                format!("Must be at least {min} characters")
            });
        }
        if n > max {
            return Err(format!("Must be at most {max} characters"));
        }
        Ok(s.to_string())
    }
}

/// A string of at most `max` characters that is not blank, kept as sent.
pub fn non_blank(max: usize) -> impl Fn(&Value) -> Check<String> {
    move |value| {
        let s = text(max)(value)?;
        if s.trim().is_empty() {
            return Err("Must not be empty".into());
        }
        Ok(s)
    }
}

/// A string that must satisfy the rules of the newtype `T`; the issue is `T`'s message.
pub fn parsed<T: TryFrom<String, Error = String>>(value: &Value) -> Check<T> {
    T::try_from(string(value)?.to_string())
}

/// A JSON object, kept as sent.
pub fn object(value: &Value) -> Check<Map<String, Value>> {
    value
        .as_object()
        .cloned()
        .ok_or_else(|| "Expected object".to_string())
}

/// Declares an enum of the wire format: each variant with its JSON name, and `VALUES`, the
/// (name, variant) table that `one_of` and the list filters check input against. Names are
/// written once, so serde's names and the table cannot drift apart. Stored records encode the
/// variant's position, so new variants go at the end.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const VALUES: &'static [(&'static str, $name)] = &[$(($text, $name::$variant)),+];

            /// The value as the API spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        /// In the OpenAPI document: one of the names of `VALUES`.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::VALUES.iter().map(|(name, _)| *name)))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use wire_enum;

/// One of a fixed set of string values.
pub fn one_of<T: Copy>(allowed: &'static [(&'static str, T)]) -> impl Fn(&Value) -> Check<T> {
    move |value| {
        let s = string(value)?;
        allowed
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
                format!("Expected one of: {}", names.join(", "))
            })
    }
}

/// Checks a string newtype: `valid` encodes in JSON and postcard exactly as the plain string
/// does and decodes back, and `invalid` is refused by both decoders, as by `TryFrom`. Test
/// code only (never built into the server): its `unwrap`s and `expect`s are its assertions.
#[cfg(test)]
pub(crate) fn assert_string_newtype<T>(valid: &str, invalid: &str)
where
    T: TryFrom<String, Error = String>
        + serde::Serialize
        + serde::de::DeserializeOwned
        + PartialEq
        + std::fmt::Debug,
{
    let value = T::try_from(valid.to_string()).expect("a valid value");
    let plain = postcard::to_allocvec(valid).unwrap();
    assert_eq!(postcard::to_allocvec(&value).unwrap(), plain);
    assert_eq!(postcard::from_bytes::<T>(&plain).unwrap(), value);
    assert_eq!(serde_json::to_value(&value).unwrap(), Value::from(valid));
    assert_eq!(
        serde_json::from_value::<T>(Value::from(valid)).unwrap(),
        value
    );

    assert!(T::try_from(invalid.to_string()).is_err());
    assert!(postcard::from_bytes::<T>(&postcard::to_allocvec(invalid).unwrap()).is_err());
    assert!(serde_json::from_value::<T>(Value::from(invalid)).is_err());
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn collects_every_issue() {
        let mut input = Input::new(json!({"a": 1, "b": ""})).unwrap();
        input.required("a", text(10));
        input.required("b", trimmed(1, 10));
        input.required("c", text(10));
        let err = input.finish_with(|| Some(())).unwrap_err();
        let paths: Vec<&str> = err.issues().iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["a", "b", "c"]);
        assert_eq!(err.issues()[0].message, "Expected string");
        assert_eq!(err.issues()[2].message, "Required");
    }

    #[test]
    fn empty_patch_is_no_updates() {
        let mut input = Input::new(json!({"id": "x"})).unwrap();
        input.updatable("name", text(10));
        assert_eq!(
            input.finish_update_with(|| Some(())).unwrap_err().code(),
            ErrorCode::NoUpdates
        );
    }

    #[test]
    fn the_value_is_built_only_without_issues() {
        let mut input = Input::new(json!({"a": "x"})).unwrap();
        let a = input.required("a", text(10));
        let b = input.required("b", text(10));
        let err = input
            .finish_with(|| -> Option<(String, String)> { panic!("built despite {a:?} {b:?}") })
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadRequest);
        assert_eq!(err.issues().len(), 1);

        let mut input = Input::new(json!({"a": "x"})).unwrap();
        let a = input.required("a", text(10));
        assert_eq!(input.finish_with(|| a).unwrap(), "x");
    }

    #[test]
    fn a_missing_value_without_issues_is_internal() {
        let input = Input::new(json!({})).unwrap();
        let err = input.finish_with(|| None::<String>).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InternalError);
        let mut input = Input::new(json!({"a": "x"})).unwrap();
        input.updatable("a", text(10));
        let err = input.finish_update_with(|| None::<String>).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InternalError);
    }

    #[test]
    fn parsed_strings_follow_the_newtype() {
        struct Short(String);
        impl TryFrom<String> for Short {
            type Error = String;
            fn try_from(s: String) -> Check<Short> {
                if s.len() <= 2 {
                    Ok(Short(s))
                } else {
                    Err("Too long".into())
                }
            }
        }
        assert_eq!(parsed::<Short>(&json!("ab")).map(|s| s.0), Ok("ab".into()));
        assert_eq!(
            parsed::<Short>(&json!("abc")).err(),
            Some("Too long".into())
        );
        assert_eq!(
            parsed::<Short>(&json!(1)).err(),
            Some("Expected string".into())
        );
    }

    #[test]
    fn nullable_distinguishes_absent_null_and_value() {
        let mut input = Input::new(json!({"a": null, "b": "x"})).unwrap();
        assert_eq!(input.nullable("a", text(5)), Patch::Null);
        assert_eq!(input.nullable("b", text(5)), Patch::Set("x".to_string()));
        assert_eq!(input.nullable("c", text(5)), Patch::Absent);
    }

    #[test]
    fn array_items_are_reported_at_their_index() {
        let body = json!({"a": ["x", "", 3], "b": "x", "c": null, "d": [1, 2, 3]});
        let mut input = Input::new(body).unwrap();
        assert_eq!(input.array("a", Presence::Optional, 9, trimmed(1, 5)), None);
        assert_eq!(input.array("b", Presence::Optional, 9, trimmed(1, 5)), None);
        assert_eq!(
            input.array("c", Presence::Updatable, 9, trimmed(1, 5)),
            None
        );
        assert_eq!(input.array("d", Presence::Optional, 2, trimmed(1, 5)), None);
        assert_eq!(input.array("e", Presence::Required, 9, trimmed(1, 5)), None);
        let err = input.finish_with(|| Some(())).unwrap_err();
        let paths: Vec<&str> = err.issues().iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["a.1", "a.2", "b", "c", "d", "e"]);
    }

    #[test]
    fn array_items_are_trimmed_and_deduplicated() {
        let mut input = Input::new(json!({"a": [" x ", "y", "x"]})).unwrap();
        let items = input.array("a", Presence::Optional, 9, trimmed(1, 5));
        assert_eq!(items, Some(vec!["x".to_string(), "y".to_string()]));
        assert!(input.finish_with(|| Some(())).is_ok());
    }

    #[test]
    fn null_is_an_issue_except_where_a_field_declares_it() {
        let body = json!({"r": null, "o": null, "u": null, "a": null, "n": null, "s": null});
        let mut input = Input::new(body).unwrap();
        assert_eq!(input.required("r", text(5)), None);
        assert_eq!(input.optional("o", text(5)), None);
        assert_eq!(input.updatable("u", text(5)), None);
        assert_eq!(input.array("a", Presence::Optional, 9, text(5)), None);
        assert_eq!(input.nullable("n", text(5)), Patch::Null);
        assert_eq!(input.settable("s", text(5)), Patch::Absent);
        let err = input.finish_update_with(|| Some(())).unwrap_err();
        let issues: Vec<(&str, &str)> = err
            .issues()
            .iter()
            .map(|i| (i.path.as_str(), i.message.as_str()))
            .collect();
        let refused = "Must not be null";
        assert_eq!(
            issues,
            [
                ("r", refused),
                ("o", refused),
                ("u", refused),
                ("a", refused),
                ("s", refused)
            ]
        );
    }

    #[test]
    fn non_objects_are_bad_json() {
        assert_eq!(
            Input::new(json!([1])).err().unwrap().code(),
            ErrorCode::BadJson
        );
    }

    #[test]
    fn caps_count_characters() {
        assert!(text(3)(&json!("héé")).is_ok());
        assert!(text(3)(&json!("abcd")).is_err());
    }
}
