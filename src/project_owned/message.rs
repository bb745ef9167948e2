//! Messages of a conversation (docs/api/README.md and the OpenAPI document): listed oldest first
//! within their conversation.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codec::Record;
use crate::error::{ApiResult, ErrorCode};
use crate::org_owned::audit::Actor;
use crate::project_owned::conversation::{self, Conversation};
use crate::project_owned::webhooks::outbox::Event;
use crate::project_owned::{self, IndexEntry, Kind, ProjectScope};
use crate::project_owned::{Id, Stamp};
use crate::store::Tx;
use crate::timestamp::Timestamp;
use crate::validate::{Input, LONG_TEXT_MAX, boolean, non_blank, one_of};
use crate::view::record_view;

/// `conversation_id ++ seq ++ id`: a conversation's messages in the order they were posted.
pub const IN_CONVERSATION: u8 = 0x43;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SenderType {
    Customer,
    Agent,
    Ai,
    System,
}

/// Only team-side senders may post through the API (docs/api/README.md).
const POSTABLE_SENDERS: &[(&str, SenderType)] =
    &[("agent", SenderType::Agent), ("system", SenderType::System)];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentType {
    Text,
    Html,
    Markdown,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub sender_type: SenderType,
    pub sender_id: Option<String>,
    pub content: String,
    pub content_type: ContentType,
    pub is_internal: bool,
    pub created_at: Timestamp,
    pub seq: u64,
}

impl Record for Message {
    const NAME: &'static str = "message";
}

record_view! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct MessageView from Message {
        id: String,
        conversation_id: String,
        sender_type: SenderType,
        sender_id: Option<String>,
        content: String,
        content_type: ContentType,
        is_internal: bool,
        created_at: Timestamp,
    }
}

impl Kind for Message {
    const TAG: u8 = 0x02;
    const INDEX_TAGS: &'static [u8] = &[IN_CONVERSATION];
    const PLURAL: &'static str = "messages";
    const SINGULAR: &'static str = "message";
    const ID_PREFIX: &'static str = "msg_";
    const NOT_FOUND: ErrorCode = ErrorCode::ResourceNotFound;
    type View = MessageView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        Ok(vec![IndexEntry::order(
            IN_CONVERSATION,
            self.conversation_id.as_bytes(),
            self.seq,
            &self.id,
        )])
    }

    /// `message.created`, whoever posts it (a client, the agent, a form submission).
    fn events(before: Option<&Self>, after: Option<&Self>) -> ApiResult<Vec<Event>> {
        match (before, after) {
            (None, Some(message)) => Ok(vec![Event::new("message.created", &message.view())?]),
            _ => Ok(Vec::new()),
        }
    }
}

#[derive(Clone)]
pub struct MessageCreate {
    content: String,
    sender_type: SenderType,
    is_internal: bool,
}

impl MessageCreate {
    /// A message the server posts itself (the agent's replies), with any sender type.
    pub fn new(content: String, sender_type: SenderType, is_internal: bool) -> Self {
        MessageCreate {
            content,
            sender_type,
            is_internal,
        }
    }

    pub fn from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let content = input.required("content", non_blank(LONG_TEXT_MAX));
        let sender_type = input.optional("sender_type", one_of(POSTABLE_SENDERS));
        let is_internal = input.optional("is_internal", boolean);
        input.finish_with(|| {
            Some(MessageCreate {
                content: content?,
                sender_type: sender_type.unwrap_or(SenderType::Agent),
                is_internal: is_internal.unwrap_or(false),
            })
        })
    }
}

/// Posts a message and bumps its conversation's `updated_at`, in one transaction.
pub fn post(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    conversation_id: &Id<Conversation>,
    input: MessageCreate,
) -> ApiResult<Message> {
    let before: Conversation = project_owned::get(tx, scope, conversation_id)?;
    let stamp = Stamp::new::<Message>(tx);
    let message = Message {
        id: stamp.id,
        conversation_id: before.id.clone(),
        sender_type: input.sender_type,
        sender_id: None,
        content: input.content,
        content_type: ContentType::Text,
        is_internal: input.is_internal,
        created_at: stamp.now,
        seq: stamp.seq,
    };
    project_owned::insert(tx, scope, actor, &message)?;
    let mut after = before.clone();
    conversation::touch(tx, &mut after);
    project_owned::replace(tx, scope, actor, "updated", &before, &after)?;
    Ok(message)
}

/// The OpenAPI schema of the create body (`api::openapi`).
pub mod openapi {
    use utoipa::openapi::schema::Schema;

    use crate::schema::*;
    use crate::validate::LONG_TEXT_MAX;

    pub fn create() -> Schema {
        create_body(
            vec![
                prop("content", content(LONG_TEXT_MAX)),
                prop("sender_type", names(&["agent", "system"])),
                prop("is_internal", boolean()),
            ],
            &["content"],
        )
        .into()
    }
}
