//! The admin API, authenticated by the master key: docs/administration.md.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::api::extract::{JsonBody, Master};
use crate::api::idempotency::{Claim, Idempotent, body_of};
use crate::api::response::{State, ok};
use crate::error::ApiResult;
use crate::ids::{self, OrgId};
use crate::org_owned::api_key::{self, CreatedKeyView, KeyCreate};
use crate::org_owned::idempotency::Owner;
use crate::org_owned::org::{self, Org, OrgCreate};
use crate::timestamp::Timestamp;

pub async fn list_orgs(_master: Master, state: State) -> ApiResult<HttpResponse> {
    let orgs = state.store.read(org::list).await?;
    Ok(ok(orgs.iter().map(Org::view).collect::<Vec<_>>()))
}

pub async fn create_org(master: Master, body: JsonBody, state: State) -> ApiResult<HttpResponse> {
    let (body, idempotent) = master.read_body(body).await?;
    let input = OrgCreate::from_json(body)?;
    let actor = master.actor();
    idempotent
        .write(
            &state,
            StatusCode::CREATED,
            |org: &Org| body_of(&org.view()),
            move |tx| org::create(tx, &actor, input),
        )
        .await
}

/// Mints a key for an organisation; the master key may grant any scope.
pub async fn create_key(
    master: Master,
    org_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    // An id of no organisation's shape is not found, where a stored one would be: in the write.
    let org_id = OrgId::parse(&org_id);
    let (body, idempotent) = master.read_body(body).await?;
    let input = KeyCreate::from_json(body, Timestamp::now(), state.rate_limit.default_tier)?;
    let actor = master.actor();
    idempotent
        .write_new_key(&state, move |tx| {
            let org_id = org_id.as_ref().ok_or_else(org::not_found)?;
            org::get(tx, org_id)?.ok_or_else(org::not_found)?;
            let (key, secret) = api_key::create(tx, &actor, org_id, input)?;
            Ok(CreatedKeyView {
                view: key.view(),
                key: secret,
            })
        })
        .await
}

#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct BackupView {
    /// The file's name in `data_dir/backups/`.
    name: String,
    /// Its size in bytes.
    size: u64,
    /// Entries copied, over every table.
    entries: u64,
    created_at: Timestamp,
}

/// Writes a consistent backup of the whole store under `data_dir/backups/` (self-hosting
/// addition). The copy reads one snapshot on the blocking pool; writes go on meanwhile. With an
/// `Idempotency-Key`, the key is claimed first and the answer recorded after the copy.
pub async fn backup(master: Master, state: State) -> ApiResult<HttpResponse> {
    write_backup(master.idempotent(None), state).await
}

/// `backup` over the admin socket (`crate::admin_socket`), where no key is asked: only the
/// server's user can open the socket, and that user can read the data file anyway. With no
/// key, no `Idempotency-Key` is scoped to one.
pub async fn backup_over_socket(state: State) -> ApiResult<HttpResponse> {
    write_backup(Idempotent::new(None, Owner::Master, None), state).await
}

async fn write_backup(idempotent: Idempotent, state: State) -> ApiResult<HttpResponse> {
    let mut held = match idempotent.claim(&state, BACKUP_CLAIM).await? {
        Claim::Answered(replay) => return Ok(replay),
        Claim::Held(held) => held,
    };
    let _turn = state.backups.one_at_a_time.lock().await;
    let created_at = Timestamp::now();
    let name = format!(
        "rogeriq-{}-{}.redb",
        compact_utc(created_at),
        ids::random_alphanumeric(6)
    );
    let info = state
        .store
        .backup_to(state.backups.folder.join(&name))
        .await;
    let info = held.or_release(info).await?;
    tracing::info!(name = %name, size = info.size, entries = info.entries, "backup written");
    let view = BackupView {
        name,
        size: info.size,
        entries: info.entries,
        created_at,
    };
    held.finish(StatusCode::CREATED, move |_| Ok(view)).await
}

/// How long a backup's claim on its `Idempotency-Key` holds: no copy of a store this server
/// can hold takes longer.
const BACKUP_CLAIM: Duration = Duration::from_secs(3600);

/// `20261129T041235Z`: sorts by time and is safe in a file name on every system.
fn compact_utc(at: Timestamp) -> String {
    at.to_string().replace(['-', ':'], "")
}
