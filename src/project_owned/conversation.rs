//! Conversations (docs/api/README.md and the OpenAPI document).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::scope::Resource;
use crate::codec::Record;
use crate::error::{ApiResult, ErrorCode};
use crate::ids::ProjectId;
use crate::org_owned::audit::Actor;
use crate::project_owned::contact::Contact;
use crate::project_owned::routed::{Body, Endpoints, Standard};
use crate::project_owned::webhooks::outbox::Event;
use crate::project_owned::{
    self, Filter, IndexEntry, InputSettings, Kind, Listing, Postings, ProjectScope, Routed, trigram,
};
use crate::project_owned::{Id, Stamp};
use crate::query::{QueryParams, enum_param, lowercase_param, text_param};
use crate::store::Tx;
use crate::timestamp::Timestamp;
use crate::validate::wire_enum;
use crate::validate::{Input, Patch, Presence, SHORT_TEXT_MAX, one_of, text, trimmed};
use crate::view::record_view;

pub const BY_CREATED: u8 = 0x41;
pub const BY_UPDATED: u8 = 0x42;
/// `field ++ len ++ value ++ seq ++ id`: the postings of the filtered fields, by creation.
pub const FIELDS_BY_CREATED: u8 = 0x71;
/// `field ++ len ++ value ++ updated_seq ++ id`: the same, by last update.
pub const FIELDS_BY_UPDATED: u8 = 0x72;
/// `len ++ trigram ++ seq ++ id`: the trigrams of the lowercase subject, for `q`.
pub const TRIGRAMS: u8 = 0x73;

/// The field bytes of `FIELDS_BY_*`.
const STATUS: u8 = 1;
const PRIORITY: u8 = 2;
const CHANNEL: u8 = 3;
const ASSIGNED_TO: u8 = 4;
const CONTACT_ID: u8 = 5;

wire_enum! {
    pub enum Status {
        Open = "open",
        Snoozed = "snoozed",
        Resolved = "resolved",
        Closed = "closed",
    }
}

wire_enum! {
    pub enum Priority {
        Low = "low",
        Normal = "normal",
        High = "high",
        Urgent = "urgent",
    }
}

wire_enum! {
    pub enum Channel {
        Email = "email",
        Chat = "chat",
        Slack = "slack",
        Discord = "discord",
        Telegram = "telegram",
        Api = "api",
        Widget = "widget",
    }
}

const MAX_TAGS: usize = 50;
const TAG_MAX_CHARS: usize = 50;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub project_id: ProjectId,
    pub contact_id: Option<String>,
    pub subject: Option<String>,
    pub status: Status,
    pub priority: Priority,
    pub channel: Channel,
    pub assigned_to: Option<String>,
    pub tags: Vec<String>,
    pub ai_resolved: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Creation order and last-update order: listing never relies on second-precision times.
    pub seq: u64,
    pub updated_seq: u64,
}

impl Record for Conversation {
    const NAME: &'static str = "conversation";
}

record_view! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct ConversationView from Conversation {
        id: String,
        #[schema(value_type = String)]
        project_id: ProjectId,
        contact_id: Option<String>,
        subject: Option<String>,
        status: Status,
        priority: Priority,
        channel: Channel,
        assigned_to: Option<String>,
        tags: Vec<String>,
        ai_resolved: bool,
        created_at: Timestamp,
        updated_at: Timestamp,
    }
}

impl Kind for Conversation {
    const TAG: u8 = 0x01;
    const INDEX_TAGS: &'static [u8] = &[
        BY_CREATED,
        BY_UPDATED,
        FIELDS_BY_CREATED,
        FIELDS_BY_UPDATED,
        TRIGRAMS,
    ];
    const PLURAL: &'static str = "conversations";
    const SINGULAR: &'static str = "conversation";
    const ID_PREFIX: &'static str = "con_";
    const NOT_FOUND: ErrorCode = ErrorCode::ConversationNotFound;
    type View = ConversationView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        let mut entries = vec![
            IndexEntry::order(BY_CREATED, b"", self.seq, &self.id),
            IndexEntry::order(BY_UPDATED, b"", self.updated_seq, &self.id),
        ];
        entries.extend(IndexEntry::fields_in_both_orders(
            (FIELDS_BY_CREATED, FIELDS_BY_UPDATED),
            &self.fields(),
            (self.seq, self.updated_seq),
            &self.id,
        ));
        let subject = self.subject.as_ref().map(|s| s.to_lowercase());
        entries.extend(trigram::entries(
            TRIGRAMS,
            subject.as_deref(),
            self.seq,
            &self.id,
        ));
        Ok(entries)
    }

    /// `conversation.created`; `conversation.updated` when a field that docs/api/webhooks.md names
    /// changes (a new message only moves `updated_at`), and `conversation.resolved` as well
    /// when the status becomes `resolved`.
    fn events(before: Option<&Self>, after: Option<&Self>) -> ApiResult<Vec<Event>> {
        let Some(after) = after else {
            return Ok(Vec::new());
        };
        let Some(before) = before else {
            return Ok(vec![Event::new("conversation.created", &after.view())?]);
        };
        let mut events = Vec::new();
        if before.subject != after.subject
            || before.status != after.status
            || before.priority != after.priority
            || before.assigned_to != after.assigned_to
            || before.tags != after.tags
        {
            events.push(Event::new("conversation.updated", &after.view())?);
        }
        if after.status == Status::Resolved && before.status != Status::Resolved {
            events.push(Event::new("conversation.resolved", &after.view())?);
        }
        Ok(events)
    }
}

impl Conversation {
    /// The filtered fields that have a value, with their field bytes.
    fn fields(&self) -> Vec<(u8, &str)> {
        let mut fields = vec![
            (STATUS, self.status.as_str()),
            (PRIORITY, self.priority.as_str()),
            (CHANNEL, self.channel.as_str()),
        ];
        if let Some(assigned_to) = &self.assigned_to {
            fields.push((ASSIGNED_TO, assigned_to));
        }
        if let Some(contact_id) = &self.contact_id {
            fields.push((CONTACT_ID, contact_id));
        }
        fields
    }
}

/// Tags: at most 50, each non-empty and at most 50 characters; duplicates dropped.
fn read_tags(input: &mut Input, presence: Presence) -> Option<Vec<String>> {
    input.array("tags", presence, MAX_TAGS, trimmed(1, TAG_MAX_CHARS))
}

#[derive(Clone)]
pub struct ConversationCreate {
    subject: Option<String>,
    contact_id: Option<String>,
    channel: Channel,
    priority: Priority,
    tags: Vec<String>,
}

impl ConversationCreate {
    pub fn from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let create = ConversationCreate {
            subject: input.optional("subject", text(SHORT_TEXT_MAX)),
            contact_id: input.optional("contact_id", text(SHORT_TEXT_MAX)),
            channel: input
                .optional("channel", one_of(Channel::VALUES))
                .unwrap_or(Channel::Api),
            priority: input
                .optional("priority", one_of(Priority::VALUES))
                .unwrap_or(Priority::Normal),
            tags: read_tags(&mut input, Presence::Optional).unwrap_or_default(),
        };
        input.finish_with(|| Some(create))
    }
}

#[derive(Clone)]
pub struct ConversationUpdate {
    subject: Patch<String>,
    status: Option<Status>,
    priority: Option<Priority>,
    assigned_to: Patch<String>,
    tags: Option<Vec<String>>,
}

impl ConversationUpdate {
    pub fn from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let update = ConversationUpdate {
            subject: input.settable("subject", text(SHORT_TEXT_MAX)),
            status: input.updatable("status", one_of(Status::VALUES)),
            priority: input.updatable("priority", one_of(Priority::VALUES)),
            assigned_to: input.nullable("assigned_to", trimmed(1, SHORT_TEXT_MAX)),
            tags: read_tags(&mut input, Presence::Updatable),
        };
        input.finish_update_with(|| Some(update))
    }
}

impl Routed for Conversation {
    type Create = ConversationCreate;
    type Update = ConversationUpdate;
    type Filter = ConversationFilter;

    const BY_CREATED: u8 = BY_CREATED;
    const LISTING: Listing = Listing::Paged {
        default_limit: 50,
        by_updated: Some(BY_UPDATED),
    };
    const ENDPOINTS: Endpoints = Endpoints {
        collection: "/api/v1/projects/{project_id}/conversations",
        resource: Resource::Conversations,
        routes: &[
            Standard::List,
            Standard::Create,
            Standard::Get,
            Standard::Update,
        ],
        create: Body {
            name: "ConversationCreate",
            schema: openapi::create,
            codes: &[ErrorCode::ContactNotFound],
        },
        update: Body {
            name: "ConversationUpdate",
            schema: openapi::update,
            codes: &[],
        },
        filters: openapi::filters,
        created: None,
    };

    fn parse_filter(query: &QueryParams) -> ApiResult<ConversationFilter> {
        Ok(ConversationFilter {
            status: enum_param(query, "status", Status::VALUES)?,
            priority: enum_param(query, "priority", Priority::VALUES)?,
            channel: enum_param(query, "channel", Channel::VALUES)?,
            assigned_to: text_param(query, "assigned_to", SHORT_TEXT_MAX)?,
            contact_id: text_param(query, "contact_id", SHORT_TEXT_MAX)?,
            q: lowercase_param(query, "q")?,
        })
    }

    fn parse_create(body: Value, _: InputSettings<'_>) -> ApiResult<ConversationCreate> {
        ConversationCreate::from_json(body)
    }

    fn parse_update(body: Value, _: InputSettings<'_>) -> ApiResult<ConversationUpdate> {
        ConversationUpdate::from_json(body)
    }

    /// A `contact_id` must name a contact of the same project.
    fn create(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: ConversationCreate,
    ) -> ApiResult<Conversation> {
        if let Some(contact_id) = &input.contact_id {
            project_owned::get::<Contact>(tx, scope, &Id::parse_found(contact_id)?)?;
        }
        let stamp = Stamp::new::<Conversation>(tx);
        let conversation = Conversation {
            id: stamp.id,
            project_id: scope.project_id.clone(),
            contact_id: input.contact_id,
            subject: input.subject,
            status: Status::Open,
            priority: input.priority,
            channel: input.channel,
            assigned_to: None,
            tags: input.tags,
            ai_resolved: false,
            created_at: stamp.now,
            updated_at: stamp.now,
            seq: stamp.seq,
            updated_seq: stamp.seq,
        };
        project_owned::insert(tx, scope, actor, &conversation)?;
        Ok(conversation)
    }

    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &Id<Self>,
        input: ConversationUpdate,
    ) -> ApiResult<Conversation> {
        let before: Conversation = project_owned::get(tx, scope, id)?;
        let mut after = before.clone();
        if let Some(subject) = input.subject.into_change() {
            after.subject = subject;
        }
        if let Some(status) = input.status {
            after.status = status;
        }
        if let Some(priority) = input.priority {
            after.priority = priority;
        }
        if let Some(assigned_to) = input.assigned_to.into_change() {
            after.assigned_to = assigned_to;
        }
        if let Some(tags) = input.tags {
            after.tags = tags;
        }
        touch(tx, &mut after);
        project_owned::replace(tx, scope, actor, "updated", &before, &after)?;
        Ok(after)
    }
}

/// Marks a conversation as changed now (an update, or a new message in it).
pub fn touch(tx: &mut Tx<'_>, conversation: &mut Conversation) {
    conversation.updated_at = tx.now;
    conversation.updated_seq = tx.next_seq();
}

/// The filters of `GET …/conversations`.
#[derive(Default)]
pub struct ConversationFilter {
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub channel: Option<Channel>,
    pub assigned_to: Option<String>,
    pub contact_id: Option<String>,
    /// Case-insensitive substring of the subject; held in lowercase.
    pub q: Option<String>,
}

impl Filter<Conversation> for ConversationFilter {
    fn matches(&self, c: &Conversation) -> bool {
        self.status.is_none_or(|s| c.status == s)
            && self.priority.is_none_or(|p| c.priority == p)
            && self.channel.is_none_or(|ch| c.channel == ch)
            && self
                .assigned_to
                .as_ref()
                .is_none_or(|a| c.assigned_to.as_ref() == Some(a))
            && self
                .contact_id
                .as_ref()
                .is_none_or(|id| c.contact_id.as_ref() == Some(id))
            && self.q.as_ref().is_none_or(|q| {
                c.subject
                    .as_ref()
                    .is_some_and(|s| s.to_lowercase().contains(q.as_str()))
            })
    }

    /// Each given field's postings in the list's order. `q`'s trigrams are kept by creation
    /// only (a message moves a conversation's update position, and rewriting every trigram of
    /// its subject then would multiply the cost of a message), so with `sort=updated_at` `q` is
    /// checked on the records the walk reaches.
    fn postings(&self, order: u8) -> Vec<Postings> {
        let tag = if order == BY_UPDATED {
            FIELDS_BY_UPDATED
        } else {
            FIELDS_BY_CREATED
        };
        let mut postings: Vec<Postings> = [
            (STATUS, self.status.map(Status::as_str)),
            (PRIORITY, self.priority.map(Priority::as_str)),
            (CHANNEL, self.channel.map(Channel::as_str)),
            (ASSIGNED_TO, self.assigned_to.as_deref()),
            (CONTACT_ID, self.contact_id.as_deref()),
        ]
        .into_iter()
        .filter_map(|(field, value)| value.map(|v| Postings::field(tag, field, v)))
        .collect();
        if order == BY_CREATED
            && let Some(q) = &self.q
        {
            postings.extend(trigram::postings(TRIGRAMS, q));
        }
        postings
    }
}

/// The OpenAPI rows of conversations: request bodies and list filters.
mod openapi {
    use utoipa::openapi::path::Parameter;
    use utoipa::openapi::schema::{ArrayBuilder, Schema};

    use super::{Channel, Priority, Status};
    use crate::schema::*;
    use crate::validate::SHORT_TEXT_MAX;

    fn tags() -> ArrayBuilder {
        array(trimmed(50), 0, 50)
    }

    pub fn create() -> Schema {
        optional_body(vec![
            prop("subject", text(SHORT_TEXT_MAX)),
            prop("contact_id", text(SHORT_TEXT_MAX)),
            prop("channel", wire(Channel::VALUES)),
            prop("priority", wire(Priority::VALUES)),
            prop("tags", tags()),
        ])
        .into()
    }

    pub fn update() -> Schema {
        patch_body(vec![
            prop("subject", text(SHORT_TEXT_MAX)),
            prop("status", wire(Status::VALUES)),
            prop("priority", wire(Priority::VALUES)),
            prop("assigned_to", or_null(trimmed(SHORT_TEXT_MAX))),
            prop("tags", tags()),
        ])
    }

    pub fn filters() -> Vec<Parameter> {
        vec![
            query("status", wire_or_empty(Status::VALUES)),
            query("priority", wire_or_empty(Priority::VALUES)),
            query("channel", wire_or_empty(Channel::VALUES)),
            text_filter("assigned_to"),
            text_filter("contact_id"),
            text_filter("q"),
        ]
    }
}
