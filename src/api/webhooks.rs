//! Webhook actions: test, deliveries and rotate-secret (its endpoints (OpenAPI document)). Webhooks
//! are listed, created, read, updated and deleted by the generic routes of `owned`. No action reads
//! a body (the SDK sends none).

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::api::extract::Auth;
use crate::api::idempotency::{Claim, body_of};
use crate::api::response::{State, ok};
use crate::api::scoped::InProject;
use crate::error::{ApiError, ApiResult};
use crate::project_owned::webhooks::delivery_log::WebhookDelivery;
use crate::project_owned::webhooks::dispatch;
use crate::project_owned::webhooks::outbound::TargetPolicy;
use crate::project_owned::webhooks::webhook::Webhook;
use crate::project_owned::webhooks::webhook::{self, Secret};
use crate::project_owned::{Id, Kind};
use crate::rate_limit::Bucket;

/// `{delivered, status_code, duration_ms, error, message}`: one `webhook.test` attempt, sent
/// while the request waits (at most `webhooks.timeout_secs`) with no transaction open, then
/// recorded. Each key may test `webhooks.tests_per_minute` times a minute, so that the action
/// cannot sweep a network quickly.
pub async fn test(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let tests = state.webhook_tests.admit(
        Bucket::Key(auth.key.id.to_string()),
        u32::try_from(state.webhooks.tests_per_minute).unwrap_or(u32::MAX),
        Instant::now(),
    );
    if !tests.allowed {
        return Err(ApiError::rate_limited(tests.retry_after()));
    }
    let (project_id, id) = path.into_inner();
    let id = Id::<Webhook>::parse(&id);
    let project = InProject::new(&auth, project_id);
    let timeout = Duration::from_secs(state.webhooks.timeout_secs);
    // A retry with the key replays the recorded result; one meanwhile sends nothing more.
    let mut held = match auth.idempotent(None).claim(&state, timeout).await? {
        Claim::Answered(replay) => return Ok(replay),
        Claim::Held(held) => held,
    };
    let outgoing = project
        .read(&state, move |rx, scope| {
            dispatch::test_delivery(rx, scope, Id::found(&id)?)
        })
        .await;
    let outgoing = held.or_release(outgoing).await?;
    let sent = dispatch::send(
        state.webhook_client(),
        &outgoing,
        timeout,
        &TargetPolicy::of(&state.webhooks),
    )
    .await;
    sent.count_in(&state.metrics);
    held.finish(
        StatusCode::OK,
        project.in_tx(move |tx, scope, _| dispatch::record_test(tx, scope, &outgoing, &sent)),
    )
    .await
}

/// The 50 most recent delivery records, newest first.
pub async fn deliveries(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let id = Id::<Webhook>::parse(&id);
    let recent = InProject::new(&auth, project_id)
        .read(&state, move |rx, scope| {
            webhook::recent_deliveries(rx, scope, Id::found(&id)?)
        })
        .await?;
    Ok(ok(recent
        .iter()
        .map(WebhookDelivery::view)
        .collect::<Vec<_>>()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Rotated {
    secret: Secret,
}

/// `{secret}`: the new secret, shown this once.
pub async fn rotate_secret(
    auth: Auth,
    path: web::Path<(String, String)>,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, id) = path.into_inner();
    let id = Id::<Webhook>::parse(&id);
    InProject::new(&auth, project_id)
        .answer(
            &state,
            auth.idempotent(None),
            StatusCode::OK,
            body_of,
            move |tx, scope, actor| {
                let secret = webhook::rotate_secret(tx, scope, actor, Id::found(&id)?)?;
                Ok(Rotated { secret })
            },
        )
        .await
}
