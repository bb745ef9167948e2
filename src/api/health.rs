use actix_web::HttpResponse;
use actix_web::http::header;
use serde_json::json;

use crate::api::response::State;
use crate::error::STORAGE_RETRY_AFTER_SECS;

/// `GET /healthz`: 200 `{"status":"ok"}` while the store commits writes; 503
/// `{"status":"degraded","reason":…}` while it cannot (a full or failing disk, free space below
/// `store.min_free_mb`), so that a load balancer or a watchdog stops sending it writes.
pub async fn check(state: State) -> HttpResponse {
    match state.store.health().trouble {
        None => HttpResponse::Ok().json(json!({"status": "ok"})),
        Some(trouble) => HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, STORAGE_RETRY_AFTER_SECS))
            .json(json!({"status": "degraded", "reason": trouble.reason()})),
    }
}
