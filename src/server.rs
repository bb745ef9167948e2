//! Start-up and shutdown: the one way to build the app from settings (bind, open the store,
//! start the webhook dispatcher, first-start bootstrap), serve until a signal or a stop
//! request, then stop the dispatcher and close the store cleanly.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_http::HttpService;
use actix_http::Protocol;
use actix_service::{IntoServiceFactory, ServiceFactoryExt, apply_fn_factory, map_config};
use actix_web::dev::{AppConfig, Server, ServerHandle, Service, fn_service};
use actix_web::rt::net::{TcpStream, UnixStream};
use actix_web::rt::signal::unix::{SignalKind, signal};
use actix_web::web;

use crate::admin_socket;
use crate::api::state::AppState;
use crate::api::{self, connection};
use crate::auth::MasterKey;
use crate::auth::scope::{Scope, Verb};
use crate::config::Settings;
use crate::error::{ApiError, ApiResult};
use crate::ids::OrgId;
use crate::mcp::call::Api;
use crate::mcp::http::HttpEndpoint;
use crate::org_owned::api_key::{self, KeyCreate};
use crate::org_owned::audit::Actor;
use crate::org_owned::idempotency;
use crate::org_owned::org::{self, OrgCreate};
use crate::org_owned::retention::RetentionSweep;
use crate::project_owned::registry;
use crate::project_owned::webhooks::dispatch::Dispatcher;
use crate::project_owned::webhooks::outbound;
use crate::rate_limit::Tier;
use crate::store::{Limits, Location, OpenError, SimulatedDisk, Store, warn_if_others_can_access};

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long a client may take to send a request's head (actix-web's default).
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closing connection may take to shut down (actix-web's default).
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What the first start created; shown once.
pub struct Bootstrap {
    pub org_id: OrgId,
    pub org_name: String,
    pub key: String,
}

impl Bootstrap {
    /// The first start's message, with `addr`, the address the server is bound to.
    pub fn banner(&self, addr: SocketAddr) -> String {
        let mut listening = format!("http://{addr}");
        if addr.ip().is_unspecified() {
            listening.push_str(&format!(
                " (every interface; from this machine http://{})",
                reachable_at(addr)
            ));
        }
        format!(
            "\n================================================================\n\
             rogeriq first start: created organisation \"{}\" and an admin key.\n\
             \n  org id:    {}\n  API key:   {}\n  listening: {listening}\n\n\
             Store this key now: it will not be shown again.\n\
             ================================================================\n",
            self.org_name, self.org_id, self.key
        )
    }
}

/// On a store with no organisation, creates "Default" and a key with scope `admin` on `tier`.
/// Like every start-up write it runs below `store.min_free_mb` too: the server must start.
fn bootstrap(store: &Store, tier: Tier) -> ApiResult<Option<Bootstrap>> {
    store.write_blocking_freeing(move |tx| {
        if !org::list(tx)?.is_empty() {
            return Ok(None);
        }
        let actor = Actor::master(None);
        let created = org::create(
            tx,
            &actor,
            OrgCreate {
                name: "Default".into(),
            },
        )?;
        let input = KeyCreate {
            name: "Bootstrap admin key".into(),
            scopes: vec![Scope::Coarse(Verb::Admin)],
            tier,
            expires_at: None,
        };
        let (_, key) = api_key::create(tx, &actor, &created.id, input)?;
        Ok(Some(Bootstrap {
            org_id: created.id,
            org_name: created.name,
            key,
        }))
    })
}

/// How the embedding program wants the server run.
pub struct Options {
    /// Drain on SIGTERM or SIGINT (Ctrl-C) and end the process on a second one; off where the
    /// embedding program (tests) owns the signals.
    pub handle_signals: bool,
}

/// A server built from settings: its store open, its listener bound, its webhook dispatcher
/// running. The server runs while `server` is polled, until it is stopped through `handle` or
/// by a signal; then the caller stops `dispatcher` and closes `store` with [`close`].
pub struct Launched {
    pub server: Server,
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    /// The store the server uses, for whoever must look beneath the API or close it.
    pub store: Store,
    /// Delivers webhooks from the store's outbox, off the request path.
    pub dispatcher: Dispatcher,
    /// What a first start created, to be shown once.
    pub bootstrap: Option<Bootstrap>,
}

#[derive(Debug)]
pub enum StartError {
    DataDir(PathBuf, std::io::Error),
    /// A held lock names the data file and the other server (OpenError's Display).
    Store(OpenError),
    Listen(String, std::io::Error),
    Serve(std::io::Error),
    HttpClient(String),
    Dispatcher(std::io::Error),
    Bootstrap(ApiError),
    Counts(ApiError),
    Retention(std::io::Error),
    Mcp(String),
    AdminSocket(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::DataDir(dir, err) => {
                write!(f, "cannot create data_dir {}: {err}", dir.display())
            }
            StartError::Store(err) => err.fmt(f),
            StartError::Listen(addr, err) => write!(f, "cannot listen on {addr}: {err}"),
            StartError::Serve(err) => write!(f, "cannot serve: {err}"),
            StartError::HttpClient(err) => f.write_str(err),
            StartError::Dispatcher(err) => {
                write!(f, "cannot start the webhook dispatcher: {err}")
            }
            StartError::Bootstrap(err) => write!(f, "first-start setup failed: {err}"),
            StartError::Counts(err) => write!(f, "cannot count the stored records: {err}"),
            StartError::Retention(err) => {
                write!(f, "cannot start a retention sweep: {err}")
            }
            StartError::Mcp(err) => write!(f, "cannot set up /mcp: {err}"),
            StartError::AdminSocket(err) => write!(f, "cannot open the admin socket: {err}"),
        }
    }
}

impl StartError {
    /// The process's exit status: 2 for settings or a database that forbid starting (as for
    /// settings that do not load), 1 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Store(OpenError::Refused(_)) => 2,
            _ => 1,
        }
    }
}

impl std::error::Error for StartError {}

/// Builds the app from settings: binds the listener, creates the data folder, opens the
/// store, builds the HTTP server and, on a store with no organisation, makes the first one. The
/// server does not run until polled. Call it outside any async runtime: it waits for the store.
pub fn launch(settings: Settings, options: Options) -> Result<Launched, StartError> {
    launch_with(settings, options, None)
}

/// `launch` with the store on `disk`, a disk in memory that can fill up, instead of the data
/// file (the tests of a full disk through HTTP). The data folder still holds the rest.
pub fn launch_on(
    settings: Settings,
    options: Options,
    disk: SimulatedDisk,
) -> Result<Launched, StartError> {
    launch_with(settings, options, Some(disk))
}

fn launch_with(
    mut settings: Settings,
    options: Options,
    disk: Option<SimulatedDisk>,
) -> Result<Launched, StartError> {
    // From here on only the master key's hash is kept (docs/administration.md).
    let master = MasterKey::from_setting(&std::mem::take(&mut settings.master_key));
    // First, so that a busy port or a bad `listen` leaves no data folder behind.
    let listener = TcpListener::bind(&settings.listen)
        .map_err(|err| StartError::Listen(settings.listen.clone(), err))?;
    let addr = listener.local_addr().map_err(StartError::Serve)?;
    create_data_dir(&settings.data_dir)
        .map_err(|err| StartError::DataDir(settings.data_dir.clone(), err))?;
    let limits = Limits {
        outbox_entries: settings.webhooks.max_pending,
        cache_bytes: settings.store.cache_bytes(),
        list_scan_budget: settings.store.list_scan_budget,
        min_free_bytes: settings.store.min_free_bytes(),
    };
    let store = match disk {
        None => Store::open_at(&Location::of(&settings), limits),
        Some(disk) => Store::open_on(disk, limits),
    }
    .map_err(StartError::Store)?;
    registry::build_indexes(&store)
        .map_err(|err| StartError::Store(OpenError::Other(format!("building indexes: {err}"))))?;
    let clients = outbound::clients(&settings.webhooks).map_err(StartError::HttpClient)?;
    let webhook_client = clients.webhooks.clone();
    // Once, on a store written before the record counts existed.
    store
        .write_blocking_freeing(registry::count_records_once)
        .map_err(StartError::Counts)?;
    let mut state = AppState::new(store.clone(), master, &settings, clients);
    let metrics = Arc::clone(&state.metrics);
    let observer = Arc::clone(&metrics);
    store.observe_commits(Box::new(move |jobs, took| observer.commit(jobs, took)));
    // Held by the state, so they stop when the server's last worker is gone.
    state.sweeps.extend(
        RetentionSweep::start(store.clone(), &settings.audit, Arc::clone(&metrics))
            .map_err(StartError::Retention)?,
    );
    state.sweeps.push(
        idempotency::start_sweep(store.clone(), &settings.idempotency)
            .map_err(StartError::Retention)?,
    );
    if settings.mcp.enabled {
        state.mcp = Some(mcp_endpoint(addr, &settings).map_err(StartError::Mcp)?);
    }
    // Once the store is open: this server holds it, so a socket already there is stale.
    let admin = admin_socket::bind(&settings.data_dir).map_err(StartError::AdminSocket)?;
    state.admin_socket = Some(admin_socket::Remover::new(&settings.data_dir));
    let state = web::Data::new(state);
    let server =
        http_server(listener, admin, state, &settings, &options).map_err(StartError::Serve)?;
    let dispatcher = Dispatcher::start(store.clone(), webhook_client, &settings.webhooks, metrics)
        .map_err(StartError::Dispatcher)?;
    // Last, so that nothing after it can fail: a first start whose banner was never shown
    // would leave an organisation whose key nobody has.
    let bootstrap =
        bootstrap(&store, settings.rate_limit.default_tier).map_err(StartError::Bootstrap)?;
    Ok(Launched {
        handle: server.handle(),
        server,
        addr,
        store,
        dispatcher,
        bootstrap,
    })
}

/// Creates the data folder readable by its owner alone, whoever starts the server (the
/// folders above it too, if missing). One that exists keeps its mode, with a warning if others
/// can reach into it.
fn create_data_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        warn_if_others_can_access(dir);
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Where a server bound to `addr` is reached: an unspecified address (all interfaces) on
/// loopback, any other where it is.
pub fn reachable_at(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// `/mcp`: the tools of this server, whose calls come back to it over HTTP at `addr`, so that
/// each goes through the rate limit, the scopes and the audit log as any API request does.
fn mcp_endpoint(addr: SocketAddr, settings: &Settings) -> Result<HttpEndpoint, String> {
    let table = api::mcp::tool_table()?;
    let loopback = Api::new(&format!("http://{}", reachable_at(addr)))?;
    let max_body = usize::try_from(settings.max_body_bytes).unwrap_or(usize::MAX);
    Ok(HttpEndpoint::new(table, loopback, max_body))
}

/// The HTTP server on `listener`, assembled as actix-web's `HttpServer` does, plus what it
/// cannot be told: the answer to `Expect: 100-continue` ([`connection::expect_continue`]) and
/// a log line with the peer's address for each connection the HTTP layer drops
/// ([`connection::log_dropped`]). The admin socket is served beside it, by the same workers
/// and stopped with it ([`admin_socket_service`]).
fn http_server(
    listener: TcpListener,
    admin: admin_socket::Bound,
    state: web::Data<AppState>,
    settings: &Settings,
    options: &Options,
) -> std::io::Result<Server> {
    let mut builder = Server::build().shutdown_timeout(SHUTDOWN_GRACE.as_secs());
    if settings.workers > 0 {
        builder = builder.workers(usize::try_from(settings.workers).unwrap_or(1));
    }
    builder = if options.handle_signals {
        builder.shutdown_signal(drain_signal())
    } else {
        builder.disable_signals()
    };
    let draining = builder.graceful_shutdown_signal();
    let (admin_state, admin_draining) = (state.clone(), draining.clone());
    builder
        .listen_uds("rogeriq-admin", admin.listener, move || {
            admin_socket_service(admin_state.clone(), admin.owner, admin_draining.clone())
        })?
        .listen("rogeriq", listener, move || {
            let (state, draining) = (state.clone(), draining.clone());
            let expect_state = state.clone();
            let http = HttpService::build()
                // Idle keep-alive connections close as soon as a drain starts.
                .graceful_shutdown_signal(move || {
                    let draining = draining.clone();
                    async move { draining.notified().await }
                })
                .client_request_timeout(HEAD_TIMEOUT)
                .client_disconnect_timeout(DISCONNECT_TIMEOUT)
                // `HttpService::expect` installs the handler of `Expect: 100-continue`: a builder
                // method, not `Option::expect`, so nothing here can panic on a request.
                .expect(fn_service(move |req| {
                    let state = expect_state.clone();
                    async move { connection::expect_continue(&state, req).await }
                }))
                .finish(map_config(
                    api::app(state)
                        .into_factory()
                        .map_err(|err| err.error_response()),
                    |_| AppConfig::default(),
                ))
                .tcp();
            apply_fn_factory(http, |io: TcpStream, http: &_| {
                let peer = io.peer_addr().ok();
                let connection = http.call(io);
                async move {
                    if let Err(err) = connection.await {
                        connection::log_dropped(peer, &err);
                    }
                    Ok(())
                }
            })
        })
        .map(|builder| builder.run())
}

/// One connection to the admin socket: HTTP/1 to [`api::admin_socket_app`], for the socket's
/// owner (the server's user) and root alone, whatever the socket file's mode became.
fn admin_socket_service(
    state: web::Data<AppState>,
    owner: u32,
    draining: actix_server::GracefulShutdownSignal,
) -> impl actix_service::ServiceFactory<
    UnixStream,
    Config = (),
    Response = (),
    Error = actix_http::error::DispatchError,
    InitError = (),
> {
    let http = fn_service(|io: UnixStream| async { Ok((io, Protocol::Http1, None)) }).and_then(
        HttpService::build()
            .graceful_shutdown_signal(move || {
                let draining = draining.clone();
                async move { draining.notified().await }
            })
            .client_request_timeout(HEAD_TIMEOUT)
            .client_disconnect_timeout(DISCONNECT_TIMEOUT)
            .finish(map_config(
                api::admin_socket_app(state)
                    .into_factory()
                    .map_err(|err| err.error_response()),
                |_| AppConfig::default(),
            )),
    );
    apply_fn_factory(http, move |io: UnixStream, http: &_| {
        let peer = io.peer_cred().map(|cred| cred.uid());
        let allowed = matches!(peer, Ok(uid) if uid == owner || uid == 0);
        let connection = allowed.then(|| http.call(io));
        async move {
            match connection {
                Some(connection) => {
                    if let Err(err) = connection.await {
                        tracing::debug!(error = ?err, "admin socket connection dropped");
                    }
                }
                None => tracing::warn!(peer = ?peer, "admin socket: refused another user"),
            }
            Ok(())
        }
    })
}

/// Resolves on the first SIGTERM or SIGINT, which starts the drain: no new connections,
/// in-flight requests finish. A second signal ends the process at once.
async fn drain_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM and SIGINT; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    let first = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(
        signal = first,
        "draining in-flight requests; a second signal stops at once"
    );
    actix_web::rt::spawn(async move {
        let (second, code) = tokio::select! {
            _ = term.recv() => ("SIGTERM", 143),
            _ = int.recv() => ("SIGINT", 130),
        };
        tracing::warn!(signal = second, "second signal: stopping without draining");
        std::process::exit(code);
    });
}

/// After the server stopped: stops the webhook dispatcher, which holds a handle of the store,
/// then waits for the store's last handles and closes it.
pub fn close(dispatcher: Dispatcher, store: Store) {
    dispatcher.stop();
    if let Err(err) = store.close(Duration::from_secs(5)) {
        tracing::warn!(error = %err, "store not closed cleanly");
    }
}
