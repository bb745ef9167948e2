//! Contacts (docs/api/README.md and the OpenAPI document): upserted by `external_id`, then by
//! email.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::scope::Resource;
use crate::codec::Record;
use crate::error::{ApiResult, ErrorCode};
use crate::ids::ProjectId;
use crate::org_owned::audit::{self, Actor};
use crate::project_owned::routed::{Body, Endpoints, Standard};
use crate::project_owned::webhooks::outbox::Event;
use crate::project_owned::{
    self, Filter, IndexEntry, InputSettings, Kind, Listing, Postings, ProjectScope, Routed,
    lookup_prefix, trigram,
};
use crate::project_owned::{Id, Stamp};
use crate::query::{QueryParams, lowercase_param, text_param};
use crate::store::Tx;
use crate::timestamp::Timestamp;
use crate::validate::{Check, Input, Patch, SHORT_TEXT_MAX, object, parsed, text, trimmed};
use crate::view::record_view;

pub const BY_CREATED: u8 = 0x44;
/// `len ++ external_id ++ seq ++ id`: the upsert's first match (the oldest contact).
pub const BY_EXTERNAL_ID: u8 = 0x45;
/// `len ++ lowercase email ++ seq ++ id`: the upsert's second match (the oldest contact).
pub const BY_EMAIL: u8 = 0x46;
/// `len ++ trigram ++ seq ++ id`: the trigrams of the lowercase name and email, for `q`.
pub const TRIGRAMS: u8 = 0x70;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub project_id: ProjectId,
    pub email: Option<Email>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    /// JSON text of the metadata object; postcard cannot hold a free-form JSON value.
    pub metadata: String,
    pub last_seen_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub seq: u64,
}

impl Record for Contact {
    const NAME: &'static str = "contact";
}

record_view! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct ContactView from Contact {
        id: String,
        #[schema(value_type = String)]
        project_id: ProjectId,
        email: Option<Email>,
        name: Option<String>,
        phone: Option<String>,
        external_id: Option<String>,
        company: Option<String>,
        job_title: Option<String>,
        metadata: Value = |contact| contact.metadata_value(),
        last_seen_at: Option<Timestamp>,
        created_at: Timestamp,
    }
}

impl Kind for Contact {
    const TAG: u8 = 0x03;
    const INDEX_TAGS: &'static [u8] = &[BY_CREATED, BY_EXTERNAL_ID, BY_EMAIL, TRIGRAMS];
    const PLURAL: &'static str = "contacts";
    const SINGULAR: &'static str = "contact";
    const ID_PREFIX: &'static str = "ct_";
    const NOT_FOUND: ErrorCode = ErrorCode::ContactNotFound;
    type View = ContactView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        let mut entries = vec![IndexEntry::order(BY_CREATED, b"", self.seq, &self.id)];
        if let Some(external_id) = &self.external_id {
            entries.push(IndexEntry::lookup(
                BY_EXTERNAL_ID,
                external_id,
                self.seq,
                &self.id,
            ));
        }
        let email = self.email.as_ref().map(Email::lowercase);
        if let Some(email) = &email {
            entries.push(IndexEntry::lookup(BY_EMAIL, email, self.seq, &self.id));
        }
        let name = self.name.as_ref().map(|n| n.to_lowercase());
        entries.extend(trigram::entries(
            TRIGRAMS,
            name.iter().chain(&email).map(String::as_str),
            self.seq,
            &self.id,
        ));
        Ok(entries)
    }

    /// `contact.created`, and `contact.updated` when a field of its view changes (an upsert
    /// that matched a contact and changed nothing fires none).
    fn events(before: Option<&Self>, after: Option<&Self>) -> ApiResult<Vec<Event>> {
        let Some(after) = after else {
            return Ok(Vec::new());
        };
        let view = audit::snapshot(&after.view())?;
        let name = match before {
            None => "contact.created",
            Some(before) if audit::snapshot(&before.view())? != view => "contact.updated",
            Some(_) => return Ok(Vec::new()),
        };
        Ok(vec![Event { name, data: view }])
    }
}

impl Contact {
    fn metadata_value(&self) -> Value {
        serde_json::from_str(&self.metadata).unwrap_or_else(|_| Value::Object(Map::new()))
    }
}

/// A syntactically valid address: one `@`, a non-empty local part, a dotted domain, no spaces,
/// at most 255 characters. Kept as sent; stored and sent as its string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl TryFrom<String> for Email {
    type Error = String;

    fn try_from(email: String) -> Check<Email> {
        let valid = email.chars().count() <= SHORT_TEXT_MAX
            && !email.chars().any(char::is_whitespace)
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.split('.').count() >= 2
                    && domain.split('.').all(|label| !label.is_empty())
            });
        if valid {
            Ok(Email(email))
        } else {
            Err("Invalid email".into())
        }
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

impl Email {
    /// The form that look-ups and filters compare: addresses match case-insensitively.
    pub fn lowercase(&self) -> String {
        self.0.to_lowercase()
    }
}

/// The writable fields, each left out, cleared (`null`) or set.
#[derive(Clone)]
pub struct ContactFields {
    email: Patch<Email>,
    name: Patch<String>,
    phone: Patch<String>,
    external_id: Patch<String>,
    company: Patch<String>,
    job_title: Patch<String>,
    metadata: Option<Map<String, Value>>,
}

impl ContactFields {
    /// The fields of a body; a PATCH may clear the string fields with `null` (docs/api/README.md),
    /// an upsert may not.
    fn read(input: &mut Input, clearable: bool) -> ContactFields {
        let mut field = |key: &str, parse: &dyn Fn(&Value) -> Check<String>| {
            if clearable {
                input.nullable(key, parse)
            } else {
                input.settable(key, parse)
            }
        };
        let text = text(SHORT_TEXT_MAX);
        let name = field("name", &trimmed(1, SHORT_TEXT_MAX));
        let phone = field("phone", &text);
        let external_id = field("external_id", &text);
        let company = field("company", &text);
        let job_title = field("job_title", &text);
        let email = if clearable {
            input.nullable("email", parsed::<Email>)
        } else {
            input.settable("email", parsed::<Email>)
        };
        ContactFields {
            email,
            name,
            phone,
            external_id,
            company,
            job_title,
            metadata: input.updatable("metadata", object),
        }
    }

    /// The upsert body: at least one of `email`, `name`, `external_id`.
    pub fn upsert_from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let fields = ContactFields::read(&mut input, false);
        let identified =
            fields.email.is_set() || fields.name.is_set() || fields.external_id.is_set();
        if !identified {
            input.issue(
                "email",
                "At least one of email, name or external_id is required",
            );
        }
        input.finish_with(|| Some(fields))
    }

    pub fn update_from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let fields = ContactFields::read(&mut input, true);
        input.finish_update_with(|| Some(fields))
    }

    /// Only supplied fields change; metadata merges shallowly (top-level keys replaced).
    fn apply(self, contact: &mut Contact) {
        fn set<T>(slot: &mut Option<T>, patch: Patch<T>) {
            if let Some(value) = patch.into_change() {
                *slot = value;
            }
        }
        set(&mut contact.email, self.email);
        set(&mut contact.name, self.name);
        set(&mut contact.phone, self.phone);
        set(&mut contact.external_id, self.external_id);
        set(&mut contact.company, self.company);
        set(&mut contact.job_title, self.job_title);
        if let Some(incoming) = self.metadata {
            let mut merged = match contact.metadata_value() {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            merged.extend(incoming);
            contact.metadata = Value::Object(merged).to_string();
        }
    }
}

/// Whether an upsert created a contact or updated one.
pub enum Upserted {
    Created(Contact),
    Updated(Contact),
}

/// The contact matching `external_id`, else `email` (case-insensitive); else a new one.
pub fn upsert(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    fields: ContactFields,
) -> ApiResult<Upserted> {
    let mut matched = None;
    if let Patch::Set(external_id) = &fields.external_id {
        matched = scope.first(tx, BY_EXTERNAL_ID, external_id)?;
    }
    if matched.is_none()
        && let Patch::Set(email) = &fields.email
    {
        matched = scope.first(tx, BY_EMAIL, &email.lowercase())?;
    }
    if let Some(id) = matched {
        let before: Contact = project_owned::get(tx, scope, &Id::parse_found(&id)?)?;
        let mut after = before.clone();
        fields.apply(&mut after);
        project_owned::replace(tx, scope, actor, "updated", &before, &after)?;
        return Ok(Upserted::Updated(after));
    }
    let stamp = Stamp::new::<Contact>(tx);
    let mut contact = Contact {
        id: stamp.id,
        project_id: scope.project_id.clone(),
        email: None,
        name: None,
        phone: None,
        external_id: None,
        company: None,
        job_title: None,
        metadata: "{}".into(),
        last_seen_at: None,
        created_at: stamp.now,
        seq: stamp.seq,
    };
    fields.apply(&mut contact);
    project_owned::insert(tx, scope, actor, &contact)?;
    Ok(Upserted::Created(contact))
}

/// Contacts list newest first with no sort parameters; creating one is an upsert (201 both
/// ways, docs/api/README.md).
impl Routed for Contact {
    type Create = ContactFields;
    type Update = ContactFields;
    type Filter = ContactFilter;

    const BY_CREATED: u8 = BY_CREATED;
    const LISTING: Listing = Listing::Paged {
        default_limit: 50,
        by_updated: None,
    };
    const ENDPOINTS: Endpoints = Endpoints {
        collection: "/api/v1/projects/{project_id}/contacts",
        resource: Resource::Contacts,
        routes: &[
            Standard::List,
            Standard::Create,
            Standard::Get,
            Standard::Update,
        ],
        create: Body {
            name: "ContactUpsert",
            schema: openapi::upsert,
            codes: &[],
        },
        update: Body {
            name: "ContactUpdate",
            schema: openapi::update,
            codes: &[],
        },
        filters: openapi::filters,
        created: None,
    };

    fn parse_filter(query: &QueryParams) -> ApiResult<ContactFilter> {
        Ok(ContactFilter {
            q: lowercase_param(query, "q")?,
            email: lowercase_param(query, "email")?,
            external_id: text_param(query, "external_id", SHORT_TEXT_MAX)?,
        })
    }

    fn parse_create(body: Value, _: InputSettings<'_>) -> ApiResult<ContactFields> {
        ContactFields::upsert_from_json(body)
    }

    fn parse_update(body: Value, _: InputSettings<'_>) -> ApiResult<ContactFields> {
        ContactFields::update_from_json(body)
    }

    fn create(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: ContactFields,
    ) -> ApiResult<Contact> {
        let (Upserted::Created(saved) | Upserted::Updated(saved)) =
            upsert(tx, scope, actor, input)?;
        Ok(saved)
    }

    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &Id<Self>,
        fields: ContactFields,
    ) -> ApiResult<Contact> {
        let before: Contact = project_owned::get(tx, scope, id)?;
        let mut after = before.clone();
        fields.apply(&mut after);
        project_owned::replace(tx, scope, actor, "updated", &before, &after)?;
        Ok(after)
    }
}

/// The filters of `GET …/contacts`; text held in lowercase.
#[derive(Default)]
pub struct ContactFilter {
    /// Substring of name or email.
    pub q: Option<String>,
    pub email: Option<String>,
    pub external_id: Option<String>,
}

impl Filter<Contact> for ContactFilter {
    fn matches(&self, c: &Contact) -> bool {
        let email = c.email.as_ref().map(Email::lowercase);
        self.q.as_ref().is_none_or(|q| {
            c.name
                .as_ref()
                .is_some_and(|n| n.to_lowercase().contains(q.as_str()))
                || email.as_ref().is_some_and(|e| e.contains(q.as_str()))
        }) && self
            .email
            .as_ref()
            .is_none_or(|e| email.as_ref() == Some(e))
            && self
                .external_id
                .as_ref()
                .is_none_or(|x| c.external_id.as_ref() == Some(x))
    }

    /// Email and external id through their look-up entries (ordered by creation within one
    /// text, as the list is), `q` through the trigrams of name and email.
    fn postings(&self, _order: u8) -> Vec<Postings> {
        let mut postings = Vec::new();
        if let Some(email) = &self.email {
            postings.push(Postings {
                tag: BY_EMAIL,
                group: lookup_prefix(email),
            });
        }
        if let Some(external_id) = &self.external_id {
            postings.push(Postings {
                tag: BY_EXTERNAL_ID,
                group: lookup_prefix(external_id),
            });
        }
        if let Some(q) = &self.q {
            postings.extend(trigram::postings(TRIGRAMS, q));
        }
        postings
    }
}

/// The OpenAPI rows of contacts: request bodies and list filters.
mod openapi {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::path::Parameter;
    use utoipa::openapi::schema::{ObjectBuilder, Schema};

    use crate::schema::*;
    use crate::validate::SHORT_TEXT_MAX;

    fn fields(clearable: bool) -> Vec<(&'static str, RefOr<Schema>)> {
        let maybe = |schema: ObjectBuilder| if clearable { or_null(schema) } else { schema };
        vec![
            prop("email", maybe(email())),
            prop("name", maybe(trimmed(SHORT_TEXT_MAX))),
            prop("phone", maybe(text(SHORT_TEXT_MAX))),
            prop("external_id", maybe(text(SHORT_TEXT_MAX))),
            prop("company", maybe(text(SHORT_TEXT_MAX))),
            prop("job_title", maybe(text(SHORT_TEXT_MAX))),
            prop("metadata", object()),
        ]
    }

    pub fn upsert() -> Schema {
        all_of(
            create_body(fields(false), &[]),
            vec![vec![
                has_string("email"),
                has_string("name"),
                has_string("external_id"),
            ]],
        )
    }

    pub fn update() -> Schema {
        patch_body(fields(true))
    }

    pub fn filters() -> Vec<Parameter> {
        vec![
            text_filter("q"),
            text_filter("email"),
            text_filter("external_id"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::assert_string_newtype;

    #[test]
    fn email_rules() {
        for good in ["a@b.co", "first.last+tag@example.com", "x@sub.domain.org"] {
            assert!(Email::try_from(good.to_string()).is_ok(), "{good}");
        }
        let too_long = format!("{}@b.co", "a".repeat(251));
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a b@c.io", "a@b..co", "a@@b.co", "a@b.co.", &too_long,
        ] {
            assert!(Email::try_from(bad.to_string()).is_err(), "{bad}");
        }
        let exact = format!("{}@b.co", "a".repeat(250));
        assert!(Email::try_from(exact).is_ok());
    }

    #[test]
    fn emails_are_kept_as_sent_and_compared_in_lowercase() {
        let email = Email::try_from("Ann@Example.COM".to_string()).unwrap();
        assert_eq!(email.lowercase(), "ann@example.com");
        assert_eq!(String::from(email), "Ann@Example.COM");
    }

    #[test]
    fn emails_encode_as_their_strings() {
        assert_string_newtype::<Email>("Ann@Example.com", "ann@example");
    }

    /// Contacts written before email had its own type still decode, and new ones are byte for
    /// byte what that layout wrote.
    #[test]
    fn contact_records_keep_their_encoding() {
        #[derive(Serialize)]
        struct StringContact {
            id: String,
            project_id: String,
            email: Option<String>,
            name: Option<String>,
            phone: Option<String>,
            external_id: Option<String>,
            company: Option<String>,
            job_title: Option<String>,
            metadata: String,
            last_seen_at: Option<Timestamp>,
            created_at: Timestamp,
            seq: u64,
        }
        let old = StringContact {
            id: "con_abcdefghijkl".into(),
            project_id: "prj_abcdefghijkl".into(),
            email: Some("ann@example.com".into()),
            name: Some("Ann".into()),
            phone: None,
            external_id: Some("u-1".into()),
            company: None,
            job_title: None,
            metadata: "{}".into(),
            last_seen_at: None,
            created_at: Timestamp::from_unix(1_700_000_000),
            seq: 3,
        };
        let bytes = postcard::to_allocvec(&old).unwrap();
        let contact: Contact = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            contact.email.clone().map(String::from).as_deref(),
            Some("ann@example.com")
        );
        assert_eq!(postcard::to_allocvec(&contact).unwrap(), bytes);
    }
}
