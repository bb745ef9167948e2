//! Organisations: created by the admin API or on first start; they own keys, projects and the
//! audit log.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codec::Record;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ids::OrgId;
use crate::org_owned::audit::{self, Actor, Event};
use crate::store::{Reader, Tx, tables};
use crate::timestamp::Timestamp;
use crate::validate::{Input, trimmed};
use crate::view::record_view;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub created_at: Timestamp,
    pub seq: u64,
}

impl Record for Org {
    const NAME: &'static str = "org";
}

record_view! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct OrgView from Org {
        #[schema(value_type = String)]
        id: OrgId,
        name: String,
        created_at: Timestamp,
    }
}

impl Org {
    pub fn view(&self) -> OrgView {
        OrgView::from(self)
    }
}

#[derive(Clone)]
pub struct OrgCreate {
    pub name: String,
}

impl OrgCreate {
    pub fn from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let name = input.required("name", trimmed(1, 100));
        input.finish_with(|| Some(OrgCreate { name: name? }))
    }
}

pub fn create(tx: &mut Tx<'_>, actor: &Actor, input: OrgCreate) -> ApiResult<Org> {
    let org = Org {
        id: OrgId::generate(),
        name: input.name,
        created_at: tx.now,
        seq: tx.next_seq(),
    };
    tx.put(tables::ORGS, org.id.as_bytes(), &org)?;
    audit::record(
        tx,
        actor,
        Event {
            org_id: &org.id,
            project_id: None,
            action: "org.created",
            target_id: org.id.as_str(),
            before: None,
            after: Some(audit::snapshot(&org.view())?),
            cascade: Vec::new(),
        },
    )?;
    Ok(org)
}

/// 404 for an organisation that is not stored, or an id that is no organisation's.
pub fn not_found() -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, "Organisation not found")
}

pub fn get(reader: &impl Reader, org_id: &OrgId) -> ApiResult<Option<Org>> {
    reader.get(tables::ORGS, org_id.as_bytes())
}

/// Every organisation, oldest first.
pub fn list(reader: &impl Reader) -> ApiResult<Vec<Org>> {
    let mut orgs: Vec<Org> = reader.scan_prefix(tables::ORGS, b"")?;
    orgs.sort_by_key(|o| o.seq);
    Ok(orgs)
}

/// The OpenAPI schema of the create body (`api::openapi`).
pub mod openapi {
    use utoipa::openapi::schema::Schema;

    use crate::schema::*;

    pub fn create() -> Schema {
        create_body(vec![prop("name", trimmed(100))], &["name"]).into()
    }
}
