//! Saved replies (docs/api/README.md): texts an agent inserts into a reply, each with an
//! optional shortcut that is unique within its project. A kind on the generic routes only: this
//! file and its registry row are all of it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::scope::Resource;
use crate::codec::Record;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ids::ProjectId;
use crate::org_owned::audit::Actor;
use crate::project_owned::routed::{Body, Endpoints, Standard, Unfiltered, no_filters};
use crate::project_owned::{self, IndexEntry, InputSettings, Kind, Listing, ProjectScope, Routed};
use crate::project_owned::{Id, Stamp};
use crate::query::QueryParams;
use crate::store::Tx;
use crate::timestamp::Timestamp;
use crate::validate::{Input, Patch, non_blank, trimmed};
use crate::view::record_view;

pub const BY_CREATED: u8 = 0x58;
/// `len ++ shortcut ++ seq ++ id`: shortcuts are unique within a project.
pub const BY_SHORTCUT: u8 = 0x59;

const TITLE_MAX: usize = 200;
const BODY_MAX: usize = 10_000;
const SHORTCUT_MAX: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedReply {
    pub id: String,
    pub project_id: ProjectId,
    pub title: String,
    pub body: String,
    pub shortcut: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub seq: u64,
}

impl Record for SavedReply {
    const NAME: &'static str = "saved_reply";
}

record_view! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct SavedReplyView from SavedReply {
        id: String,
        #[schema(value_type = String)]
        project_id: ProjectId,
        title: String,
        body: String,
        shortcut: Option<String>,
        created_at: Timestamp,
        updated_at: Timestamp,
    }
}

impl Kind for SavedReply {
    const TAG: u8 = 0x0e;
    const INDEX_TAGS: &'static [u8] = &[BY_CREATED, BY_SHORTCUT];
    const PLURAL: &'static str = "saved_replies";
    const SINGULAR: &'static str = "saved_reply";
    const ID_PREFIX: &'static str = "srp_";
    const NOT_FOUND: ErrorCode = ErrorCode::ResourceNotFound;
    type View = SavedReplyView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        let mut entries = vec![IndexEntry::order(BY_CREATED, b"", self.seq, &self.id)];
        if let Some(shortcut) = &self.shortcut {
            entries.push(IndexEntry::lookup(
                BY_SHORTCUT,
                shortcut,
                self.seq,
                &self.id,
            ));
        }
        Ok(entries)
    }
}

/// A create or update body: on create `title` and `body` are required; `shortcut` may be
/// `null`, which clears it.
#[derive(Debug, Clone)]
pub struct SavedReplyInput {
    title: Option<String>,
    body: Option<String>,
    shortcut: Patch<String>,
}

impl SavedReplyInput {
    pub fn create_from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let reply = SavedReplyInput {
            title: input.required("title", trimmed(1, TITLE_MAX)),
            body: input.required("body", non_blank(BODY_MAX)),
            shortcut: input.nullable("shortcut", trimmed(1, SHORTCUT_MAX)),
        };
        input.finish_with(|| (reply.title.is_some() && reply.body.is_some()).then_some(reply))
    }

    pub fn update_from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let reply = SavedReplyInput {
            title: input.updatable("title", trimmed(1, TITLE_MAX)),
            body: input.updatable("body", non_blank(BODY_MAX)),
            shortcut: input.nullable("shortcut", trimmed(1, SHORTCUT_MAX)),
        };
        input.finish_update_with(|| Some(reply))
    }

    /// Applies every sent field, then checks that a new shortcut is free in the project.
    fn apply(self, tx: &Tx<'_>, scope: &ProjectScope, reply: &mut SavedReply) -> ApiResult<()> {
        if let Some(title) = self.title {
            reply.title = title;
        }
        if let Some(body) = self.body {
            reply.body = body;
        }
        if let Some(shortcut) = self.shortcut.into_change() {
            if let Some(wanted) = &shortcut
                && reply.shortcut.as_ref() != Some(wanted)
                && scope.first(tx, BY_SHORTCUT, wanted)?.is_some()
            {
                return Err(ApiError::new(
                    ErrorCode::SlugConflict,
                    format!(
                        "The shortcut '{wanted}' is already used by a saved reply of this project"
                    ),
                ));
            }
            reply.shortcut = shortcut;
        }
        Ok(())
    }
}

impl Routed for SavedReply {
    type Create = SavedReplyInput;
    type Update = SavedReplyInput;
    type Filter = Unfiltered;

    const BY_CREATED: u8 = BY_CREATED;
    const LISTING: Listing = Listing::Paged {
        default_limit: 50,
        by_updated: None,
    };
    /// Agents use them to answer conversations: the conversations scopes reach them.
    const ENDPOINTS: Endpoints = Endpoints {
        collection: "/api/v1/projects/{project_id}/saved-replies",
        resource: Resource::Conversations,
        routes: &[
            Standard::List,
            Standard::Create,
            Standard::Get,
            Standard::Update,
            Standard::Delete,
        ],
        create: Body {
            name: "SavedReplyCreate",
            schema: openapi::create,
            codes: &[ErrorCode::SlugConflict],
        },
        update: Body {
            name: "SavedReplyUpdate",
            schema: openapi::update,
            codes: &[ErrorCode::SlugConflict],
        },
        filters: no_filters,
        created: None,
    };

    fn parse_filter(_: &QueryParams) -> ApiResult<Unfiltered> {
        Ok(Unfiltered)
    }

    fn parse_create(body: Value, _: InputSettings<'_>) -> ApiResult<SavedReplyInput> {
        SavedReplyInput::create_from_json(body)
    }

    fn parse_update(body: Value, _: InputSettings<'_>) -> ApiResult<SavedReplyInput> {
        SavedReplyInput::update_from_json(body)
    }

    fn create(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: SavedReplyInput,
    ) -> ApiResult<SavedReply> {
        let stamp = Stamp::new::<SavedReply>(tx);
        let mut reply = SavedReply {
            id: stamp.id,
            project_id: scope.project_id.clone(),
            title: String::new(),
            body: String::new(),
            shortcut: None,
            created_at: stamp.now,
            updated_at: stamp.now,
            seq: stamp.seq,
        };
        input.apply(tx, scope, &mut reply)?;
        project_owned::insert(tx, scope, actor, &reply)?;
        Ok(reply)
    }

    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &Id<Self>,
        input: SavedReplyInput,
    ) -> ApiResult<SavedReply> {
        let before: SavedReply = project_owned::get(tx, scope, id)?;
        let mut after = before.clone();
        input.apply(tx, scope, &mut after)?;
        after.updated_at = tx.now;
        project_owned::replace(tx, scope, actor, "updated", &before, &after)?;
        Ok(after)
    }
}

/// The OpenAPI rows of saved replies: request bodies.
mod openapi {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use super::{BODY_MAX, SHORTCUT_MAX, TITLE_MAX};
    use crate::schema::*;

    /// `shortcut` takes `null` on a create too: none.
    fn fields() -> Vec<(&'static str, RefOr<Schema>)> {
        vec![
            prop("title", trimmed(TITLE_MAX)),
            prop("body", content(BODY_MAX)),
            prop("shortcut", or_null(trimmed(SHORTCUT_MAX))),
        ]
    }

    pub fn create() -> Schema {
        create_body(fields(), &["title", "body"]).into()
    }

    pub fn update() -> Schema {
        patch_body(fields())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn title_and_body_are_required_and_bounded() {
        let err = SavedReplyInput::create_from_json(json!({"shortcut": ""})).unwrap_err();
        let paths: Vec<&str> = err.issues().iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["title", "body", "shortcut"]);
        let long = "x".repeat(TITLE_MAX + 1);
        let err =
            SavedReplyInput::create_from_json(json!({"title": long, "body": " "})).unwrap_err();
        let paths: Vec<&str> = err.issues().iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["title", "body"]);
        let err = SavedReplyInput::update_from_json(json!({"id": "srp_x"})).unwrap_err();
        assert_eq!(err.code(), ErrorCode::NoUpdates);
    }
}
