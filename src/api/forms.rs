//! Form submissions: their list (its endpoints (OpenAPI document)) and the public submit endpoint
//! (docs/api/forms-and-beacons.md). Forms and beacons themselves use the generic routes of `owned`.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::extract::{Auth, JsonBody, KeyHeader};
use crate::api::response::{State, ok};
use crate::api::scoped::InProject;
use crate::api::{limits, request_id};
use crate::error::{ApiError, ApiResult};
use crate::org_owned::audit::Actor;
use crate::pagination::parse_limit;
use crate::project_owned::form::Form;
use crate::project_owned::form::SuccessAction;
use crate::project_owned::form_submission::{self, FormSubmission, Submitter};
use crate::project_owned::values::HttpUrl;
use crate::project_owned::{Id, Kind};
use crate::query::QueryParams;

/// Newest first; `limit` defaults to 50, at most 100.
pub async fn submissions(
    auth: Auth,
    path: web::Path<(String, String)>,
    query: QueryParams,
    state: State,
) -> ApiResult<HttpResponse> {
    let (project_id, form_id) = path.into_inner();
    let form_id = Id::<Form>::parse(&form_id);
    let items = InProject::new(&auth, project_id)
        .read(&state, move |rx, scope| {
            let limit = parse_limit(query.get("limit"), 50, 100)?;
            form_submission::list(rx, scope, Id::found(&form_id)?, limit)
        })
        .await?;
    Ok(ok(items
        .iter()
        .map(FormSubmission::view)
        .collect::<Vec<_>>()))
}

/// What a browser or script learns from an accepted submission.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SubmitResult {
    id: String,
    conversation_id: String,
    success_action: SuccessAction,
    success_message: String,
    redirect_url: Option<HttpUrl>,
}

/// `POST /api/f/{formId}`, with no API key, and so no `Idempotency-Key` (400). In order: the form (404, 410, 403 for the public
/// API switch and the `Origin` header), the per-address limit (429), the body (JSON, or
/// `application/x-www-form-urlencoded`) checked against the form's fields (400), then one
/// write. The client address is the connection's peer, or the client that a trusted proxy
/// names (`[rate_limit] trusted_proxies`).
pub async fn submit(
    req: HttpRequest,
    form_id: web::Path<String>,
    body: JsonBody,
    state: State,
) -> ApiResult<HttpResponse> {
    KeyHeader::refuse(&req)?;
    let form_id = Id::<Form>::parse(&form_id.into_inner());
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let ip = limits::client_address(&req, &state.rate_limit.trusted_proxies);
    let (id, sent_from) = (form_id.clone(), origin.clone());
    let (_, form) = state
        .store
        .read(move |rx| form_submission::open_form(rx, Id::found(&id)?, sent_from.as_deref()))
        .await?;
    // Without a peer address (not over TCP) every such client shares one count.
    let counted_as = ip.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    state
        .submissions
        .admit(&form, counted_as, Instant::now())
        .map_err(ApiError::rate_limited)?;
    let payload = submission_body(&req, body).await?;
    let submitter = Submitter {
        origin,
        ip_hash: ip.map(|ip| state.store.salted_hash(&ip.to_string())),
    };
    let actor = Actor::public(Some(request_id::current()));
    let done = state
        .store
        .write(move |tx| {
            form_submission::submit(tx, &actor, Id::found(&form_id)?, submitter, payload)
        })
        .await?;
    Ok(ok(SubmitResult {
        id: done.submission.id,
        conversation_id: done.conversation_id,
        success_action: done.form.success_action,
        success_message: done.form.success_message,
        redirect_url: done.form.redirect_url,
    }))
}

/// The submitted values as a JSON object: an HTML form post's fields (a repeated name
/// becomes an array), or a JSON body. A form-typed body that starts with `{` is JSON: curl's
/// `-d` sends that type by default, and browsers encode a `{` in a form body as `%7B`.
async fn submission_body(req: &HttpRequest, body: JsonBody) -> ApiResult<Value> {
    let content_type = req.content_type().to_ascii_lowercase();
    if content_type == "multipart/form-data" {
        return Err(ApiError::bad_request(
            "multipart/form-data is not supported (file uploads are not accepted): send JSON \
             or application/x-www-form-urlencoded",
        ));
    }
    let bytes = body.bytes().await?;
    let json_like = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if content_type != "application/x-www-form-urlencoded" || json_like {
        return JsonBody::parse(&bytes);
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("The form body is not UTF-8"))?;
    let pairs = web::Query::<Vec<(String, String)>>::from_query(text)
        .map_err(|_| ApiError::bad_request("Malformed form body"))?;
    let mut fields = Map::new();
    for (name, value) in pairs.into_inner() {
        match fields.get_mut(&name) {
            None => {
                fields.insert(name, Value::String(value));
            }
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(first) => *first = Value::Array(vec![first.take(), Value::String(value)]),
        }
    }
    Ok(Value::Object(fields))
}
