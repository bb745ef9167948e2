//! Form submissions (docs/api/forms-and-beacons.md and the OpenAPI document): what the public
//! submit endpoint accepts and writes — the submission, the submitter's contact, and a conversation
//! in the form's project whose first message holds the submitted values — and the per-address
//! limiter in front of it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::codec::{self, CodecError, Record};
use crate::error::{ApiError, ApiResult, ErrorCode, Issue};
use crate::org_owned::audit::Actor;
use crate::project_owned::contact::{self, ContactFields, Email, Upserted};
use crate::project_owned::conversation::{Conversation, ConversationCreate};
use crate::project_owned::form::{FieldType, Form, FormField};
use crate::project_owned::message::{ContentType, Message, SenderType};
use crate::project_owned::webhooks::outbox::Event;
use crate::project_owned::{self, IndexEntry, Kind, Order, ProjectScope, Routed};
use crate::project_owned::{Id, Stamp};
use crate::store::{Reader, Tx};
use crate::timestamp::Timestamp;
use crate::validate::{Check, LONG_TEXT_MAX, SHORT_TEXT_MAX, string, text};
use crate::view::record_view;

/// `form_id ++ seq ++ id`: a form's submissions in the order they arrived.
pub const IN_FORM: u8 = 0x56;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FormSubmission {
    pub id: String,
    pub form_id: String,
    /// JSON text of the accepted values by field name; postcard cannot hold a JSON value.
    pub payload: String,
    pub submitted_at: Timestamp,
    pub ip_hash: Option<String>,
    pub seq: u64,
    /// The conversation the submission opened, for `form.submitted` (docs/api/webhooks.md); `None`
    /// for submissions stored before it was kept.
    pub conversation_id: Option<String>,
}

impl Record for FormSubmission {
    const NAME: &'static str = "form submission";
    const VERSION: u8 = 2;

    /// Version 1 did not keep the conversation.
    fn upgrade(version: u8, bytes: &[u8]) -> Result<Self, CodecError> {
        codec::upgrade_from(version, 1, bytes, |v1: FormSubmissionV1| FormSubmission {
            id: v1.id,
            form_id: v1.form_id,
            payload: v1.payload,
            submitted_at: v1.submitted_at,
            ip_hash: v1.ip_hash,
            seq: v1.seq,
            conversation_id: None,
        })
    }
}

/// The layout of version 1.
#[derive(Serialize, Deserialize)]
struct FormSubmissionV1 {
    id: String,
    form_id: String,
    payload: String,
    submitted_at: Timestamp,
    ip_hash: Option<String>,
    seq: u64,
}

/// The `data` of `form.submitted` (docs/api/webhooks.md).
#[derive(Serialize)]
struct SubmittedEvent<'a> {
    form_id: &'a str,
    submission: FormSubmissionView,
    conversation_id: Option<&'a str>,
}

record_view! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct FormSubmissionView from FormSubmission {
        id: String,
        form_id: String,
        payload: Value = |submission| {
            serde_json::from_str(&submission.payload).unwrap_or_else(|_| Value::Object(Map::new()))
        },
        submitted_at: Timestamp,
        ip_hash: Option<String>,
    }
}

impl Kind for FormSubmission {
    const TAG: u8 = 0x09;
    const INDEX_TAGS: &'static [u8] = &[IN_FORM];
    const PLURAL: &'static str = "form_submissions";
    const SINGULAR: &'static str = "form_submission";
    const ID_PREFIX: &'static str = "fsub_";
    const NOT_FOUND: ErrorCode = ErrorCode::ResourceNotFound;
    type View = FormSubmissionView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        Ok(vec![IndexEntry::order(
            IN_FORM,
            self.form_id.as_bytes(),
            self.seq,
            &self.id,
        )])
    }

    /// `form.submitted`: submissions are only made by the public submit endpoint.
    fn events(before: Option<&Self>, after: Option<&Self>) -> ApiResult<Vec<Event>> {
        let (None, Some(submission)) = (before, after) else {
            return Ok(Vec::new());
        };
        let data = SubmittedEvent {
            form_id: &submission.form_id,
            submission: submission.view(),
            conversation_id: submission.conversation_id.as_deref(),
        };
        Ok(vec![Event::new("form.submitted", &data)?])
    }
}

/// The newest `limit` submissions of a form of this project.
pub fn list(
    reader: &impl Reader,
    scope: &ProjectScope,
    form_id: &Id<Form>,
    limit: usize,
) -> ApiResult<Vec<FormSubmission>> {
    let form: Form = project_owned::get(reader, scope, form_id)?;
    let order = Order {
        tag: IN_FORM,
        group: form.id.as_bytes(),
        descending: true,
    };
    Ok(project_owned::list(reader, scope, order, None, limit, |_| true)?.items)
}

/// A form that accepts public submissions from a browser at `origin` (the `Origin` header):
/// unknown → 404, archived → 410 `FORM_ARCHIVED`, closed to the public API or to this origin
/// → 403 `FORBIDDEN`.
pub fn open_form(
    reader: &impl Reader,
    form_id: &Id<Form>,
    origin: Option<&str>,
) -> ApiResult<(ProjectScope, Form)> {
    let (scope, form) = project_owned::find_public::<Form>(reader, form_id)?
        .ok_or_else(project_owned::not_found::<Form>)?;
    form.check_live()?;
    if !form.allows_origin(origin) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "This form does not accept submissions from this origin",
        ));
    }
    Ok((scope, form))
}

/// Who submits: the browser's `Origin` header and the salted hash of the client address.
#[derive(Clone)]
pub struct Submitter {
    pub origin: Option<String>,
    pub ip_hash: Option<String>,
}

/// What a submission created.
pub struct Submitted {
    pub submission: FormSubmission,
    pub conversation_id: String,
    pub form: Form,
}

/// Accepts one submission in one transaction: checks the form again, checks `payload`
/// against its fields, upserts the submitter's contact when an email was given, opens a
/// conversation whose first message holds the values, and stores the submission.
pub fn submit(
    tx: &mut Tx<'_>,
    actor: &Actor,
    form_id: &Id<Form>,
    submitter: Submitter,
    payload: Value,
) -> ApiResult<Submitted> {
    let (scope, form) = open_form(tx, form_id, submitter.origin.as_deref())?;
    let values = accept_payload(&form.fields, payload)?;
    let contact_id = match contact_of(&form.fields, &values)? {
        Some(fields) => {
            let (Upserted::Created(c) | Upserted::Updated(c)) =
                contact::upsert(tx, &scope, actor, fields)?;
            Some(c.id)
        }
        None => None,
    };
    // The SDK's channels have no `form`; a form is a website widget of sorts.
    let mut opening = json!({"subject": subject(&form.name), "channel": "widget"});
    if let Some(id) = &contact_id {
        opening["contact_id"] = json!(id);
    }
    let conversation =
        Conversation::create(tx, &scope, actor, ConversationCreate::from_json(opening)?)?;
    let stamp = Stamp::new::<Message>(tx);
    let message = Message {
        id: stamp.id,
        conversation_id: conversation.id.clone(),
        sender_type: SenderType::Customer,
        sender_id: contact_id,
        content: message_text(&form.fields, &values),
        content_type: ContentType::Text,
        is_internal: false,
        created_at: stamp.now,
        seq: stamp.seq,
    };
    project_owned::insert(tx, &scope, actor, &message)?;
    let stamp = Stamp::new::<FormSubmission>(tx);
    let submission = FormSubmission {
        id: stamp.id,
        form_id: form.id.clone(),
        payload: Value::Object(values).to_string(),
        submitted_at: stamp.now,
        ip_hash: submitter.ip_hash,
        seq: stamp.seq,
        conversation_id: Some(conversation.id.clone()),
    };
    project_owned::insert(tx, &scope, actor, &submission)?;
    Ok(Submitted {
        submission,
        conversation_id: conversation.id,
        form,
    })
}

/// `Form: <name>`, within the 255 characters of a subject.
fn subject(form_name: &str) -> String {
    format!("Form: {form_name}")
        .chars()
        .take(SHORT_TEXT_MAX)
        .collect()
}

/// The values by field name, each checked by its field's type; values under other names are
/// dropped. Issues are at the field's name, the key its value is sent under.
fn accept_payload(fields: &[FormField], payload: Value) -> ApiResult<Map<String, Value>> {
    let Value::Object(mut sent) = payload else {
        return Err(ApiError::new(
            ErrorCode::BadJson,
            "Request body must be a JSON object",
        ));
    };
    let mut issues = Vec::new();
    let mut values = Map::new();
    for field in fields {
        let name = field.name.as_str();
        let raw = sent.remove(name).unwrap_or(Value::Null);
        match accept_value(field, &raw) {
            Ok(Some(value)) => {
                values.insert(name.to_string(), value);
            }
            Ok(None) if field.required => issues.push(Issue::new(name, "Required")),
            Ok(None) => {}
            Err(message) => issues.push(Issue::new(name, message)),
        }
    }
    // A form whose fields are all optional takes a submission that fills none of them: what is
    // valid depends on the form alone, as the OpenAPI document says of this endpoint.
    if !issues.is_empty() {
        return Err(ApiError::invalid(issues));
    }
    Ok(values)
}

/// One value checked by its field's type; `None` when left blank (an unchecked required
/// checkbox counts as blank).
fn accept_value(field: &FormField, raw: &Value) -> Check<Option<Value>> {
    let blank = match raw {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    };
    if blank {
        return Ok(None);
    }
    let value = match field.kind {
        FieldType::ShortText | FieldType::Phone => Value::String(text(SHORT_TEXT_MAX)(raw)?),
        FieldType::LongText => Value::String(text(LONG_TEXT_MAX)(raw)?),
        FieldType::Email => {
            let email = Email::try_from(string(raw)?.trim().to_string())?;
            Value::String(email.into())
        }
        FieldType::Number => number(raw)?,
        FieldType::Checkbox => match checkbox(raw)? {
            false if field.required => return Ok(None),
            checked => Value::Bool(checked),
        },
        FieldType::Radio | FieldType::SingleSelect => Value::String(choice(field, raw)?),
        FieldType::MultiSelect => {
            let items = match raw {
                Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            let mut chosen: Vec<Value> = Vec::new();
            for item in items {
                let option = Value::String(choice(field, item)?);
                if !chosen.contains(&option) {
                    chosen.push(option);
                }
            }
            Value::Array(chosen)
        }
        FieldType::Date => Value::String(date(raw)?),
        FieldType::File => return Err("File uploads are not supported".into()),
    };
    Ok(Some(value))
}

/// A JSON number, or a string holding one (HTML forms send text).
fn number(raw: &Value) -> Check<Value> {
    if raw.is_number() {
        return Ok(raw.clone());
    }
    let text = string(raw)
        .map_err(|_| "Expected number".to_string())?
        .trim();
    if let Ok(n) = text.parse::<i64>() {
        return Ok(json!(n));
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| "Expected number".into())
}

/// A boolean, or the words HTML forms and scripts send for one.
fn checkbox(raw: &Value) -> Check<bool> {
    if let Some(b) = raw.as_bool() {
        return Ok(b);
    }
    match string(raw)
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        Ok("true" | "on" | "yes" | "1") => Ok(true),
        Ok("false" | "off" | "no" | "0") => Ok(false),
        _ => Err("Expected boolean".into()),
    }
}

/// One of the field's options.
fn choice(field: &FormField, raw: &Value) -> Check<String> {
    let sent = string(raw)?.trim();
    field
        .options
        .iter()
        .find(|option| option.as_str() == sent)
        .cloned()
        .ok_or_else(|| "Must be one of the field's options".into())
}

/// A calendar date as `YYYY-MM-DD`.
fn date(raw: &Value) -> Check<String> {
    let sent = string(raw)?.trim();
    let invalid = || "Must be a date as YYYY-MM-DD".to_string();
    let parts: Vec<&str> = sent.split('-').collect();
    let [year, month, day] = parts.as_slice() else {
        return Err(invalid());
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(year, 4) && digits(month, 2) && digits(day, 2)) {
        return Err(invalid());
    }
    let parsed = (|| {
        let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
        time::Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()
    })();
    parsed.map(|_| sent.to_string()).ok_or_else(invalid)
}

/// The contact to upsert: the first email field's value, with the `name` field's value when
/// the form has one.
fn contact_of(
    fields: &[FormField],
    values: &Map<String, Value>,
) -> ApiResult<Option<ContactFields>> {
    let value_of = |f: &FormField| values.get(f.name.as_str());
    let Some(email) = fields
        .iter()
        .filter(|f| f.kind == FieldType::Email)
        .find_map(value_of)
    else {
        return Ok(None);
    };
    let mut body = json!({"email": email});
    if let Some(name) = fields
        .iter()
        .find(|f| f.kind == FieldType::ShortText && f.name.as_str() == "name")
        .and_then(value_of)
    {
        body["name"] = name.clone();
    }
    ContactFields::upsert_from_json(body).map(Some)
}

/// The values as text, one `Label: value` line per answered field, in the form's order.
fn message_text(fields: &[FormField], values: &Map<String, Value>) -> String {
    fn show(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Bool(true) => "Yes".into(),
            Value::Bool(false) => "No".into(),
            Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
            other => other.to_string(),
        }
    }
    fields
        .iter()
        .filter_map(|f| {
            values
                .get(f.name.as_str())
                .map(|v| format!("{}: {}", f.label, show(v)))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many (form, address) pairs the limiter tracks at most: about 100 bytes each.
const MAX_TRACKED: usize = 65_536;

/// Counts submissions per form and client address in fixed windows: a window opens with the
/// first submission and admits the form's `rate_limit_per_ip` of them for its
/// `rate_limit_window_seconds`. Kept in memory only. When `max_tracked` pairs are tracked, a new
/// pair first drops the windows that ended, then, if none had, an arbitrary one: memory stays
/// bounded under a flood of addresses, at the cost of forgetting a count early.
pub struct SubmissionLimiter {
    max_tracked: usize,
    windows: Mutex<Windows>,
}

#[derive(Default)]
struct Windows {
    by_key: HashMap<(String, IpAddr), Window>,
    /// No window ends before this, so sweeping earlier would free nothing.
    next_end: Option<Instant>,
}

struct Window {
    ends: Instant,
    count: u32,
}

impl Default for SubmissionLimiter {
    fn default() -> Self {
        SubmissionLimiter::with_capacity(MAX_TRACKED)
    }
}

impl SubmissionLimiter {
    pub fn with_capacity(max_tracked: usize) -> Self {
        SubmissionLimiter {
            max_tracked: max_tracked.max(1),
            windows: Mutex::new(Windows::default()),
        }
    }

    /// Counts one submission from `ip` to `form`, or refuses it with the whole seconds until
    /// its window ends, when a submission will be admitted again. The lock is held for a few
    /// map operations (a sweep only when full, at most once per window end).
    pub fn admit(&self, form: &Form, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let length = Duration::from_secs(u64::from(form.rate_limit_window_seconds));
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (form.id.clone(), ip);
        if let Some(window) = windows.by_key.get_mut(&key)
            && now < window.ends
        {
            if window.count >= form.rate_limit_per_ip {
                return Err(whole_seconds(window.ends - now));
            }
            window.count += 1;
            return Ok(());
        }
        if !windows.by_key.contains_key(&key) && windows.by_key.len() >= self.max_tracked {
            windows.make_room(now, self.max_tracked);
        }
        let ends = now + length;
        windows.next_end = Some(windows.next_end.map_or(ends, |t| t.min(ends)));
        windows.by_key.insert(key, Window { ends, count: 1 });
        Ok(())
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_key
            .len()
    }
}

impl Windows {
    fn make_room(&mut self, now: Instant, max_tracked: usize) {
        if self.next_end.is_none_or(|t| t <= now) {
            self.by_key.retain(|_, w| now < w.ends);
            self.next_end = self.by_key.values().map(|w| w.ends).min();
        }
        if self.by_key.len() >= max_tracked
            && let Some(key) = self.by_key.keys().next().cloned()
        {
            self.by_key.remove(&key);
        }
    }
}

/// Rounded up, and at least 1: waiting that long always reaches the end.
fn whole_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// The OpenAPI schema of a submission (`api::openapi`).
pub mod openapi {
    use utoipa::openapi::schema::Schema;

    use crate::schema::*;

    pub fn submission() -> Schema {
        optional_body(Vec::new())
            .description(Some(
                "The form's field values by field name; an HTML form post is also accepted.",
            ))
            .into()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::project_owned::form::FormInput;

    fn form(body: Value) -> Form {
        let input = FormInput::create_from_json(body).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("f.redb")).unwrap();
        store
            .write_blocking(move |tx| {
                let actor = Actor::master(None);
                let org = crate::org_owned::org::create(
                    tx,
                    &actor,
                    crate::org_owned::org::OrgCreate { name: "O".into() },
                )?;
                let project = crate::org_owned::project::create(
                    tx,
                    &actor,
                    &org.id,
                    crate::org_owned::project::ProjectCreate {
                        name: "P".into(),
                        slug: crate::org_owned::project::Slug::try_from("p1".to_string()).unwrap(),
                        domain: None,
                    },
                )?;
                let scope = ProjectScope::resolve(tx, &org.id, &project.id)?;
                Form::create(tx, &scope, &actor, input)
            })
            .unwrap()
    }

    fn all_types() -> Form {
        form(json!({"name": "All", "fields": [
            {"type": "short_text", "label": "Name", "required": true},
            {"type": "long_text", "label": "Message"},
            {"type": "email", "label": "Email"},
            {"type": "number", "label": "Seats"},
            {"type": "phone", "label": "Phone"},
            {"type": "checkbox", "label": "Agree", "required": true},
            {"type": "checkbox", "label": "News"},
            {"type": "radio", "label": "Plan", "options": ["free", "pro"]},
            {"type": "single_select", "label": "Size", "options": ["s", "m"]},
            {"type": "multi_select", "label": "Topics", "options": ["a", "b", "c"]},
            {"type": "date", "label": "When"},
            {"type": "file", "label": "Attachment"},
        ]}))
    }

    #[test]
    fn version_1_submissions_decode_without_a_conversation() {
        let v1 = FormSubmissionV1 {
            id: "fsub_abcdefghijkl".into(),
            form_id: "frm_abcdefghijkl".into(),
            payload: "{}".into(),
            submitted_at: Timestamp::from_unix(1_700_000_000),
            ip_hash: None,
            seq: 3,
        };
        let mut bytes = vec![1];
        bytes.extend(postcard::to_allocvec(&v1).unwrap());
        let submission: FormSubmission = crate::codec::decode(&bytes).unwrap();
        assert_eq!(
            (submission.seq, submission.conversation_id.as_deref()),
            (3, None)
        );
        assert_eq!(submission.view().form_id, "frm_abcdefghijkl");
    }

    #[test]
    fn values_are_checked_by_type() {
        let f = all_types();
        let values = accept_payload(
            &f.fields,
            json!({
                "name": "Ann", "message": "Hi", "email": " ann@example.com ", "seats": "3",
                "phone": "+1 555", "agree": "on", "news": false, "plan": "pro", "size": " m ",
                "topics": ["a", "c", "a"], "when": "2024-02-29", "extra": "dropped",
                "attachment": "",
            }),
        )
        .unwrap();
        assert_eq!(
            Value::Object(values.clone()),
            json!({
                "name": "Ann", "message": "Hi", "email": "ann@example.com", "seats": 3,
                "phone": "+1 555", "agree": true, "news": false, "plan": "pro", "size": "m",
                "topics": ["a", "c"], "when": "2024-02-29",
            })
        );
        let text = message_text(&f.fields, &values);
        assert!(
            text.starts_with("Name: Ann\nMessage: Hi\nEmail: ann@example.com"),
            "{text}"
        );
        assert!(
            text.contains("Agree: Yes\nNews: No") && text.contains("Topics: a, c"),
            "{text}"
        );
        let one = accept_payload(
            &f.fields,
            json!({"name": "A", "agree": true, "topics": "b", "seats": 2.5}),
        )
        .unwrap();
        assert_eq!(
            (&one["topics"], &one["seats"]),
            (&json!(["b"]), &json!(2.5))
        );
    }

    #[test]
    fn bad_values_are_issues_at_their_names() {
        let f = all_types();
        let err = accept_payload(
            &f.fields,
            json!({
                "name": "  ", "email": "nope", "seats": "many", "agree": false,
                "news": "maybe", "plan": "gold", "topics": ["a", "z"], "when": "2023-02-29",
                "attachment": "file.pdf", "message": 5,
            }),
        )
        .unwrap_err();
        let paths: Vec<&str> = err.issues().iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "name",
                "message",
                "email",
                "seats",
                "agree",
                "news",
                "plan",
                "topics",
                "when",
                "attachment"
            ]
        );
        assert_eq!(err.issues()[0].message, "Required");
        let empty =
            form(json!({"name": "Optional", "fields": [{"type": "short_text", "label": "A"}]}));
        // Nothing is required, so nothing is valid too.
        assert_eq!(
            accept_payload(&empty.fields, json!({"a": ""})).unwrap(),
            Map::new()
        );
        assert_eq!(
            accept_payload(&empty.fields, json!([1]))
                .unwrap_err()
                .code(),
            ErrorCode::BadJson
        );
    }

    #[test]
    fn dates_are_calendar_dates() {
        for good in ["2024-02-29", "1999-12-31"] {
            assert!(date(&json!(good)).is_ok(), "{good}");
        }
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "24-01-01",
            "2024-01-01T00:00",
            "x",
        ] {
            assert!(date(&json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn subjects_fit_a_short_string() {
        let long = "x".repeat(SHORT_TEXT_MAX);
        assert_eq!(subject(&long).chars().count(), SHORT_TEXT_MAX);
        assert_eq!(subject("Contact"), "Form: Contact");
    }

    #[test]
    fn the_limiter_counts_per_form_and_address_within_a_window() {
        let f = form(json!({"name": "L", "rate_limit_per_ip": 2, "rate_limit_window_seconds": 10}));
        let limiter = SubmissionLimiter::default();
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        );
        let t0 = Instant::now();
        assert_eq!(limiter.admit(&f, a, t0), Ok(()));
        assert_eq!(
            limiter.admit(&f, a, t0 + Duration::from_millis(1500)),
            Ok(())
        );
        // The window opened at t0 and ends at t0 + 10 s: 8.5 s left, rounded up.
        assert_eq!(
            limiter.admit(&f, a, t0 + Duration::from_millis(1500)),
            Err(9)
        );
        assert_eq!(limiter.admit(&f, a, t0 + Duration::from_secs(9)), Err(1));
        assert_eq!(limiter.admit(&f, b, t0 + Duration::from_secs(9)), Ok(()));
        let mut other = f.clone();
        other.id = "frm_otherotherot".into();
        assert_eq!(
            limiter.admit(&other, a, t0 + Duration::from_secs(9)),
            Ok(())
        );
        assert_eq!(limiter.admit(&f, a, t0 + Duration::from_secs(10)), Ok(()));
    }

    #[test]
    fn the_limiter_stays_within_its_capacity() {
        let f = form(json!({"name": "C", "rate_limit_per_ip": 1, "rate_limit_window_seconds": 60}));
        let limiter = SubmissionLimiter::with_capacity(3);
        let t0 = Instant::now();
        let ip = |n: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
        for n in 0..10 {
            assert_eq!(limiter.admit(&f, ip(n), t0), Ok(()));
            assert!(limiter.tracked() <= 3);
        }
        // Ended windows go first: after a minute every slot is free again.
        let later = t0 + Duration::from_secs(61);
        for n in 10..13 {
            assert_eq!(limiter.admit(&f, ip(n), later), Ok(()));
        }
        assert_eq!(limiter.tracked(), 3);
        assert_eq!(limiter.admit(&f, ip(12), later), Err(60));
    }
}
