//! The id of the request being served, set by `context::request_context` for the request's
//! whole task, so that extractors and error rendering can read it without passing it along.

use std::future::Future;

use crate::ids;

tokio::task_local! {
    static REQUEST_ID: String;
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The same, as a header name built at compile time (not checked again on every response).
pub const REQUEST_ID_NAME: actix_web::http::header::HeaderName =
    actix_web::http::header::HeaderName::from_static(REQUEST_ID_HEADER);

/// Runs `request` with `id` as its request id.
pub async fn scope<F: Future>(id: String, request: F) -> F::Output {
    REQUEST_ID.scope(id, request).await
}

/// The id of the request being served. Outside a request (never expected) a fresh id is made
/// rather than failing the error path.
pub fn current() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| ids::request_id())
}
