//! `Idempotency-Key` over HTTP (docs/api/idempotency.md). `Auth` and `Master` read the header of a
//! write request under `/api/v1/` once the caller is known (a malformed one is a 400 naming
//! the header); a handler turns it, with its body, into an [`Idempotent`] and runs its one
//! store operation through it. The check, the operation, the rendering of its response and the
//! record of that response then share one write operation, so a crash never leaves a write
//! without its record or a record without its write. A retry is answered from the record with
//! `Idempotent-Replayed: true` and `Idempotency-Key-Age`, and writes nothing.
//!
//! Handlers that call outside the store before writing (the agent, a webhook test, a backup)
//! claim the key first ([`Idempotent::claim`]), so that a retry arriving meanwhile is told the
//! first is in progress rather than repeating the outside call.

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{ContentType, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::Value;

use crate::api::extract::{Auth, JsonBody, KeyHeader, Master};
use crate::api::response::Envelope;
use crate::api::state::AppState;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::metrics::Metrics;
use crate::org_owned::api_key::CreatedKeyView;
use crate::org_owned::idempotency::{self, Claimed, Owner, Replay, Request};
use crate::store::{Store, Tx};
use crate::timestamp::Timestamp;

/// Response headers of a replay.
pub const REPLAYED: &str = "idempotent-replayed";
pub const AGE: &str = "idempotency-key-age";

const REPLAYED_NAME: HeaderName = HeaderName::from_static(REPLAYED);
const AGE_NAME: HeaderName = HeaderName::from_static(AGE);

/// How long a claim outlasts the outside call it covers: the time to write its result.
const CLAIM_SLACK: Duration = Duration::from_secs(60);

/// A write request's idempotency: the record it is checked against and leaves, when it
/// carries a key; and whether its write frees space (`freeing`).
pub struct Idempotent {
    request: Option<Request>,
    frees: bool,
}

impl Auth {
    /// The request's idempotency, its key scoped to this API key; `body` is the JSON body the
    /// handler read (`None` for a route that reads none).
    pub fn idempotent(&self, body: Option<&Value>) -> Idempotent {
        let owner = Owner::Key {
            org_id: self.key.org_id.clone(),
            key_id: self.key.id.clone(),
        };
        Idempotent::new(self.idempotency_key(), owner, body)
    }

    /// The JSON body, and the request's idempotency, which hashes it.
    pub async fn read_body(&self, body: JsonBody) -> ApiResult<(Value, Idempotent)> {
        let body = body.value().await?;
        let idempotent = self.idempotent(Some(&body));
        Ok((body, idempotent))
    }
}

impl Master {
    /// The request's idempotency, its key scoped to the master key.
    pub fn idempotent(&self, body: Option<&Value>) -> Idempotent {
        Idempotent::new(self.idempotency_key(), Owner::Master, body)
    }

    /// The JSON body, and the request's idempotency, which hashes it.
    pub async fn read_body(&self, body: JsonBody) -> ApiResult<(Value, Idempotent)> {
        let body = body.value().await?;
        let idempotent = self.idempotent(Some(&body));
        Ok((body, idempotent))
    }
}

/// A success body rendered inside the write, as sent and as kept.
struct Rendered {
    body: Vec<u8>,
    /// The body the record keeps when it differs from the one sent: without the secret that
    /// only the first answer shows.
    kept: Option<Vec<u8>>,
}

/// A new API key's answer is kept without the key's secret, which the store never holds.
fn new_key(created: &CreatedKeyView) -> ApiResult<Rendered> {
    Ok(Rendered {
        body: body_of(created)?,
        kept: Some(body_of(&created.view)?),
    })
}

/// The answer body `{"data": view}`, as [`Idempotent::write`] renders a result.
pub fn body_of<V: Serialize>(view: &V) -> ApiResult<Vec<u8>> {
    serde_json::to_vec(&Envelope { data: view }).map_err(|e| ApiError::internal_from("response", e))
}

/// `op` through `store.write`, or `write_freeing` when it `frees` space.
async fn write<T, F>(store: &Store, frees: bool, op: F) -> ApiResult<T>
where
    F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Clone + Send + 'static,
    T: Send + 'static,
{
    if frees {
        store.write_freeing(op).await
    } else {
        store.write(op).await
    }
}

/// What the write of a request with a key came to.
enum Outcome {
    Ran(Vec<u8>),
    Replayed(Replay),
}

impl Idempotent {
    /// The request of `header`'s key for `owner`, with the request's JSON body (`None` for a
    /// route that reads none); without a header, a plain write.
    pub fn new(header: Option<&KeyHeader>, owner: Owner, body: Option<&Value>) -> Idempotent {
        Idempotent {
            request: header
                .map(|h| Request::new(owner, h.key.clone(), h.method.as_str(), &h.path, body)),
            frees: false,
        }
    }

    /// The request deletes: its write runs even below `store.min_free_mb`
    /// (`Store::write_freeing`), so that room can be made through the API.
    pub fn freeing(self) -> Idempotent {
        Idempotent {
            frees: true,
            ..self
        }
    }

    /// Runs `op` in one write operation and answers `status` with `view` of its result (a
    /// record's view as `{"data": …}`, [`body_of`]). With a key, the same operation first looks
    /// for an earlier request with that key (its response is replayed, or a conflict refused,
    /// and `op` never runs) and, when `op` succeeds, renders and stores the response. A failed
    /// `op` stores nothing. Without a key the answer is rendered after the write, so a plain
    /// write leaves the writer thread no more to do than it did.
    pub async fn write<R, F>(
        self,
        state: &AppState,
        status: StatusCode,
        view: fn(&R) -> ApiResult<Vec<u8>>,
        op: F,
    ) -> ApiResult<HttpResponse>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<R> + Clone + Send + 'static,
        R: Send + 'static,
    {
        let render = move |result: &R| {
            Ok(Rendered {
                body: view(result)?,
                kept: None,
            })
        };
        self.write_rendered(state, status, render, op).await
    }

    /// `write` for the creation of an API key: its record keeps the answer without the key's
    /// secret, so a retry is refused with a 409 that names the key rather than replayed.
    pub async fn write_new_key<F>(self, state: &AppState, op: F) -> ApiResult<HttpResponse>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<CreatedKeyView> + Clone + Send + 'static,
    {
        self.write_rendered(state, StatusCode::CREATED, new_key, op)
            .await
    }

    async fn write_rendered<R, F>(
        self,
        state: &AppState,
        status: StatusCode,
        render: impl Fn(&R) -> ApiResult<Rendered> + Clone + Send + 'static,
        op: F,
    ) -> ApiResult<HttpResponse>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<R> + Clone + Send + 'static,
        R: Send + 'static,
    {
        let Some(request) = self.request else {
            let view = write(&state.store, self.frees, op).await?;
            return Ok(respond(status, render(&view)?.body));
        };
        // Most retries come after the first request ended: a point read answers them without
        // the writer.
        let probe = request.clone();
        let earlier = state
            .store
            .look_up(move |rx| idempotency::find(rx, &probe, Timestamp::now()))
            .await;
        if let Some(replay) = counted(&state.metrics, earlier)? {
            return Ok(replayed(&state.metrics, replay));
        }
        let outcome = write(&state.store, self.frees, move |tx| {
            if let Some(replay) = idempotency::find(tx, &request, tx.now)? {
                return Ok(Outcome::Replayed(replay));
            }
            let view = op(tx)?;
            let rendered = render(&view)?;
            record(tx, &request, status, &rendered)?;
            Ok(Outcome::Ran(rendered.body))
        })
        .await;
        Ok(match counted(&state.metrics, outcome)? {
            Outcome::Ran(body) => respond(status, body),
            Outcome::Replayed(replay) => replayed(&state.metrics, replay),
        })
    }

    /// For a request that calls outside the store (for up to `call`) before its one write:
    /// claims the key in a write of its own, or answers from an earlier request. The claim
    /// lasts `call` plus a minute; a retry meanwhile gets 409 "in progress".
    pub async fn claim(self, state: &AppState, call: Duration) -> ApiResult<Claim> {
        let mut held = Held {
            store: state.store.clone(),
            metrics: Arc::clone(&state.metrics),
            claim: None,
        };
        let Some(request) = self.request else {
            return Ok(Claim::Held(held));
        };
        let lease = call.saturating_add(CLAIM_SLACK);
        let claiming = request.clone();
        let claimed = state
            .store
            .write(move |tx| idempotency::claim(tx, &claiming, lease))
            .await;
        match counted(&state.metrics, claimed)? {
            Claimed::Replay(replay) => Ok(Claim::Answered(replayed(&state.metrics, replay))),
            Claimed::Held(claim) => {
                held.claim = Some((request, claim));
                Ok(Claim::Held(held))
            }
        }
    }
}

/// Stores the response of `request`'s successful operation, in its transaction.
fn record(
    tx: &Tx<'_>,
    request: &Request,
    status: StatusCode,
    rendered: &Rendered,
) -> ApiResult<()> {
    let kept = rendered.kept.as_ref().unwrap_or(&rendered.body).clone();
    idempotency::complete(tx, request, status.as_u16(), kept, rendered.kept.is_some())
}

/// Counts a refusal with 409 `IDEMPOTENCY_CONFLICT` in the metrics; only this module's
/// records produce that code.
fn counted<T>(metrics: &Metrics, result: ApiResult<T>) -> ApiResult<T> {
    if let Err(err) = &result
        && err.code() == ErrorCode::IdempotencyConflict
    {
        metrics.idempotency_conflict();
    }
    result
}

/// The outcome of [`Idempotent::claim`].
pub enum Claim {
    /// Answered from an earlier request with the key: nothing to run.
    Answered(HttpResponse),
    /// The request runs; it ends with [`Held::finish`].
    Held(Held),
}

/// A request's claim on its key. A failed step ([`Held::or_release`], [`Held::finish`])
/// releases it before the error is answered, so that a retry runs again; dropped otherwise (a
/// client gone), it is released in the background.
pub struct Held {
    store: Store,
    metrics: Arc<Metrics>,
    claim: Option<(Request, u64)>,
}

impl Held {
    /// `result` of a step before the write; a failure releases the claim first, so that a
    /// retry sent on the error answer runs again rather than meeting the claim.
    pub async fn or_release<T>(&mut self, result: ApiResult<T>) -> ApiResult<T> {
        if result.is_err() {
            self.release().await;
        }
        result
    }

    async fn release(&mut self) {
        let Some((request, claim)) = self.claim.take() else {
            return;
        };
        let released = self
            .store
            .write(move |tx| idempotency::release(tx, &request, claim))
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %err, "could not release an idempotency claim; it lapses");
        }
    }

    /// The request's one write: checks that the claim still holds, runs `op`, and stores the
    /// response with it, as [`Idempotent::write`] does. A failure releases the claim.
    pub async fn finish<V, F>(mut self, status: StatusCode, op: F) -> ApiResult<HttpResponse>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<V> + Clone + Send + 'static,
        V: Serialize + Send + 'static,
    {
        let Some((request, claim)) = self.claim.clone() else {
            let view = self.store.write(op).await?;
            return Ok(respond(status, body_of(&view)?));
        };
        let written = self
            .store
            .write(move |tx| {
                idempotency::check_claim(tx, &request, claim)?;
                let rendered = Rendered {
                    body: body_of(&op(tx)?)?,
                    kept: None,
                };
                record(tx, &request, status, &rendered)?;
                Ok(rendered.body)
            })
            .await;
        let written = counted(&self.metrics, written);
        if written.is_ok() {
            // Stored in place of the claim: nothing left to release.
            self.claim = None;
        }
        let body = self.or_release(written).await?;
        Ok(respond(status, body))
    }
}

impl Drop for Held {
    /// A request dropped while it held its claim (its client went away, the server stops)
    /// releases it from a thread of its own, not waited for: the drop may come from an async
    /// worker, which must not wait for the store, or while the runtime stops, which runs no
    /// new task. A release that never happens leaves a claim that lapses with its lease.
    fn drop(&mut self) {
        let Some((request, claim)) = self.claim.take() else {
            return;
        };
        let store = self.store.clone();
        let released = std::thread::Builder::new()
            .name("rogeriq-idempotency-release".into())
            .spawn(move || {
                if let Err(err) =
                    store.write_blocking(move |tx| idempotency::release(tx, &request, claim))
                {
                    tracing::warn!(error = %err, "could not release an idempotency claim");
                }
            });
        if let Err(err) = released {
            tracing::warn!(error = %err, "could not release an idempotency claim");
        }
    }
}

fn respond(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(ContentType::json())
        .body(body)
}

/// The stored response, marked as a replay with its age.
fn replayed(metrics: &Metrics, replay: Replay) -> HttpResponse {
    metrics.idempotent_replay();
    let status = StatusCode::from_u16(replay.status).unwrap_or(StatusCode::OK);
    let mut response = respond(status, replay.body);
    let headers = response.headers_mut();
    headers.insert(REPLAYED_NAME, HeaderValue::from_static("true"));
    headers.insert(AGE_NAME, HeaderValue::from(replay.age_secs));
    response
}
