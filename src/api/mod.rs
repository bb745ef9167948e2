//! The HTTP layer. Handlers are thin: extract, authorize, run one store operation, render. They
//! take the server's shared state (`state`) and answer through `response`.

pub mod access;
pub mod browser;
pub mod connection;
pub mod context;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod limits;
pub mod mcp;
pub mod openapi;
pub mod origin;
pub mod request_id;
pub mod response;
pub mod routes;
pub mod state;

mod admin;
mod api_keys;
mod audit_log;
mod config;
mod conversations;
mod dashboard;
mod health;
mod kb;
mod metrics;
mod owned;
mod projects;
mod scoped;
mod session;
mod webhooks;

mod integrations;

mod agent;

mod forms;

use actix_web::middleware::{NormalizePath, TrailingSlash, from_fn};
use actix_web::{App, web};

use response::State;

/// The whole application: routes, `/mcp`, JSON 404s, request ids, logging, CORS (the browser
/// endpoints' own around the server's) and the rate limit.
pub fn app(
    state: State,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let cors = context::cors(&state.cors);
    let metrics_path = state.metrics_path.clone();
    let mcp_enabled = state.mcp.is_some();
    let dashboard = state.dashboard.enabled;
    App::new()
        .app_data(state)
        .configure(routes::configure)
        .configure(|cfg| metrics::configure(cfg, metrics_path.as_deref()))
        .configure(|cfg| mcp::configure(cfg, mcp_enabled))
        .configure(|cfg| dashboard::configure(cfg, dashboard))
        .default_service(web::to(routes::not_found))
        .wrap(from_fn(limits::rate_limit))
        .wrap(cors)
        .wrap(from_fn(context::browser_cors))
        .wrap(from_fn(mcp::refuse_foreign_origins))
        .wrap(from_fn(context::request_context))
        .wrap(NormalizePath::new(TrailingSlash::Trim))
}

/// The app of the admin socket (`crate::admin_socket`): `POST /api/v1/admin/backup` without
/// a key, for the tools beside the server, and `/healthz`, which tells them a server is there.
/// Request ids, the log line and JSON errors as on the main app; no rate limit or CORS, since
/// only the server's user reaches it.
pub fn admin_socket_app(
    state: State,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .route("/healthz", web::get().to(health::check))
        .route(
            "/api/v1/admin/backup",
            web::post().to(admin::backup_over_socket),
        )
        .default_service(web::to(routes::not_found))
        .wrap(from_fn(context::request_context))
}
