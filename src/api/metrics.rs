//! `GET /metrics` (or `[metrics] path`): the server's Prometheus metrics. The numbers that the
//! store already keeps are read at each scrape: the writer's queue, the data file's size, the
//! record counts (kept by the write path, so one short read transaction), the org-owned
//! tables' lengths (kept by redb, counted by PostgreSQL) and a PostgreSQL store's pool.

use actix_web::{HttpResponse, web};

use crate::api::response::State;
use crate::error::{ApiResult, ErrorCode};
use crate::metrics::{CONTENT_TYPE, PoolSnapshot, StoreSnapshot};
use crate::project_owned::registry;
use crate::store::{Reader, tables};

/// Serves the metrics at `[metrics] path` unless they are off.
pub fn configure(cfg: &mut web::ServiceConfig, path: Option<&str>) {
    if let Some(path) = path {
        cfg.route(path, web::get().to(render));
    }
}

/// The store's own numbers are read first; when the store cannot read (a failed disk), the
/// metrics still answer, with its health and without its counts.
async fn render(state: State) -> ApiResult<HttpResponse> {
    let data_file = state.data_file.clone();
    let health = state.store.health();
    let counted = state
        .store
        .read(move |rx| {
            let mut records = registry::record_counts(rx)?;
            for (kind, table) in [
                ("orgs", tables::ORGS),
                ("api_keys", tables::API_KEYS),
                ("projects", tables::PROJECTS),
                ("audit_entries", tables::AUDIT),
                ("pending_webhook_deliveries", tables::OUTBOX),
            ] {
                records.push((kind, rx.len(table)?));
            }
            // A stat of a local file: on the blocking pool with the read.
            let file_bytes = std::fs::metadata(&data_file).map_or(0, |m| m.len());
            Ok((records, file_bytes))
        })
        .await;
    let (records, file_bytes) = match counted {
        Ok(counted) => counted,
        Err(err) if err.code() == ErrorCode::StorageUnavailable => (Vec::new(), 0),
        Err(err) => return Err(err),
    };
    let snapshot = StoreSnapshot {
        queue_depth: u64::try_from(state.store.queue_depth()).unwrap_or(u64::MAX),
        file_bytes,
        records,
        pool: state.store.pool_stats().map(|pool| PoolSnapshot {
            max_size: pool.max_size,
            size: pool.size,
            wait_seconds: pool.wait_seconds,
            serialization_retries: pool.serialization_retries,
        }),
        writable: health.writable(),
        failed_commits: health.failed_commits,
        reopen_attempts: health.reopen_attempts,
    };
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(state.metrics.render(&snapshot)))
}
