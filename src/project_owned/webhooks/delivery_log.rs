//! Webhook delivery records (docs/api/webhooks.md and the OpenAPI document): one per attempt to
//! deliver an event to a webhook, ordered within their webhook. Delivery itself
//! (`dispatch`) writes them and keeps the most recent `RETAINED` of each webhook; deleting
//! the webhook or its project removes them.

use serde::{Deserialize, Serialize};

use crate::codec::Record;
use crate::error::{ApiResult, ErrorCode};
use std::ops::ControlFlow;

use crate::project_owned::webhooks::outbox::DELIVERY_ID_PREFIX;
use crate::project_owned::{self, IndexEntry, Kind, ProjectScope};
use crate::store::{Reader, Tx, layout, tables};
use crate::timestamp::Timestamp;
use crate::validate::wire_enum;

/// `webhook_id ++ seq ++ id`: a webhook's delivery records in the order they were made.
pub const IN_WEBHOOK: u8 = 0x5d;
/// How many delivery records of one webhook are kept: those that `deliveries` shows (the contract
/// (docs/api/) docs/api/webhooks.md). Older ones are removed as new ones are written, so the
/// history stays bounded.
pub const RETAINED: usize = 50;

wire_enum! {
    pub enum DeliveryStatus {
        Delivered = "delivered",
        Failed = "failed",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// `<delivery_id>.<attempt>`: the record's own id, one per attempt.
    id: String,
    /// The event's delivery id (`whd_…`, sent as `X-RogerIQ-Delivery`), shared by every attempt
    /// to deliver that event (docs/api/webhooks.md); the view shows it as `id`.
    pub delivery_id: String,
    pub webhook_id: String,
    pub event: String,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub attempt: u32,
    pub status: DeliveryStatus,
    pub created_at: Timestamp,
    pub seq: u64,
}

impl Record for WebhookDelivery {
    const NAME: &'static str = "webhook delivery";
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookDeliveryView {
    pub id: String,
    pub event: String,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub attempt: u32,
    pub status: DeliveryStatus,
    pub created_at: Timestamp,
}

impl From<&WebhookDelivery> for WebhookDeliveryView {
    fn from(delivery: &WebhookDelivery) -> WebhookDeliveryView {
        WebhookDeliveryView {
            id: delivery.delivery_id.clone(),
            event: delivery.event.clone(),
            status_code: delivery.status_code,
            duration_ms: delivery.duration_ms,
            attempt: delivery.attempt,
            status: delivery.status,
            created_at: delivery.created_at,
        }
    }
}

impl Kind for WebhookDelivery {
    const TAG: u8 = 0x0c;
    const INDEX_TAGS: &'static [u8] = &[IN_WEBHOOK];
    const PLURAL: &'static str = "webhook_deliveries";
    const SINGULAR: &'static str = "webhook_delivery";
    const ID_PREFIX: &'static str = DELIVERY_ID_PREFIX;
    const NOT_FOUND: ErrorCode = ErrorCode::ResourceNotFound;
    type View = WebhookDeliveryView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        Ok(vec![IndexEntry::order(
            IN_WEBHOOK,
            self.webhook_id.as_bytes(),
            self.seq,
            &self.id,
        )])
    }
}

/// What one attempt to deliver an event came to.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The event's delivery id, `whd_…` (`project_owned::new_id::<WebhookDelivery>()`).
    pub delivery_id: String,
    pub event: String,
    /// 1 for the first try, then 2, 3, … (docs/api/webhooks.md).
    pub attempt: u32,
    /// `None` when no response came (connection error, timeout).
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub delivered: bool,
}

impl WebhookDelivery {
    /// The record of `attempt` to deliver to `webhook_id`, made in `tx`, now.
    pub fn new(tx: &mut Tx<'_>, webhook_id: &str, attempt: Attempt) -> WebhookDelivery {
        WebhookDelivery {
            id: format!("{}.{}", attempt.delivery_id, attempt.attempt),
            delivery_id: attempt.delivery_id,
            webhook_id: webhook_id.to_string(),
            event: attempt.event,
            status_code: attempt.status_code,
            duration_ms: attempt.duration_ms,
            attempt: attempt.attempt,
            status: if attempt.delivered {
                DeliveryStatus::Delivered
            } else {
                DeliveryStatus::Failed
            },
            created_at: tx.now,
            seq: tx.next_seq(),
        }
    }
}

/// Stores the record of an attempt, with no audit entry (the server's own bookkeeping, not a
/// client's change), and removes the webhook's records beyond the `RETAINED` most recent.
pub fn record(tx: &mut Tx<'_>, scope: &ProjectScope, delivery: &WebhookDelivery) -> ApiResult<()> {
    project_owned::write_unaudited(tx, scope, None, Some(delivery))?;
    let group = scope.key(IN_WEBHOOK, delivery.webhook_id.as_bytes());
    // Ids first: a table cannot be written while it is being scanned.
    let mut older = Vec::new();
    let mut seen = 0;
    tx.scan(
        tables::OWNED,
        layout::prefix_range(&group),
        true,
        &mut |key, _| {
            seen += 1;
            if seen > RETAINED {
                // After the group: the record's seq (8 bytes), then its id.
                let id = key
                    .get(group.len() + 8..)
                    .ok_or_else(|| crate::error::ApiError::internal("malformed ordering key"))?;
                older.push(id.to_vec());
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    for id in older {
        let old: Option<WebhookDelivery> =
            tx.get(tables::OWNED, &scope.key(WebhookDelivery::TAG, &id))?;
        project_owned::write_unaudited(tx, scope, old.as_ref(), None)?;
    }
    Ok(())
}
