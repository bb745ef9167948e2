//! Start-up and shutdown: the one way to build the app from settings (open the store, bind,
//! start the webhook dispatcher, first-start bootstrap), serve until a signal or a stop
//! request, then stop the dispatcher and close the store cleanly.

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{HttpServer, web};

use crate::api::{self, AppState};
use crate::auth::MasterKey;
use crate::auth::scope::{Scope, Verb};
use crate::config::Settings;
use crate::error::{ApiError, ApiResult};
use crate::org_owned::api_key::{self, KeyCreate};
use crate::org_owned::audit::Actor;
use crate::org_owned::org::{self, OrgCreate};
use crate::outbound;
use crate::project_owned;
use crate::project_owned::webhook_dispatch::Dispatcher;
use crate::rate_limit::Tier;
use crate::store::{Limits, OpenError, Store};

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What the first start created; shown once.
pub struct Bootstrap {
    pub org_id: String,
    pub org_name: String,
    pub key: String,
}

impl Bootstrap {
    pub fn banner(&self) -> String {
        format!(
            "\n================================================================\n\
             rogeriq first start: created organization \"{}\" and an admin key.\n\
             \n  org id:  {}\n  API key: {}\n\n\
             Store this key now: it will not be shown again.\n\
             ================================================================\n",
            self.org_name, self.org_id, self.key
        )
    }
}

/// On a store with no organisation, creates "Default" and a key with scope `admin` on `tier`.
fn bootstrap(store: &Store, tier: Tier) -> ApiResult<Option<Bootstrap>> {
    store.write_blocking(move |tx| {
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
    /// Stop on SIGTERM and Ctrl-C; off where the embedding program (tests) owns the signals.
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
        }
    }
}

impl std::error::Error for StartError {}

/// Builds the app from settings: creates the data folder, opens the store, binds the listener,
/// builds the HTTP server and, on a store with no organisation, makes the first one. The server
/// does not run until polled. Call it outside any async runtime: it waits for the store.
pub fn launch(mut settings: Settings, options: Options) -> Result<Launched, StartError> {
    // From here on only the master key's hash is kept (API.md §18.1).
    let master = MasterKey::from_setting(&std::mem::take(&mut settings.master_key));
    std::fs::create_dir_all(&settings.data_dir)
        .map_err(|err| StartError::DataDir(settings.data_dir.clone(), err))?;
    let limits = Limits {
        outbox_entries: settings.webhooks.max_pending,
        cache_bytes: settings.store.cache_bytes(),
        list_scan_budget: settings.store.list_scan_budget,
    };
    let store = Store::open_with(&settings.data_file(), limits).map_err(StartError::Store)?;
    project_owned::registry::build_indexes(&store)
        .map_err(|err| StartError::Store(OpenError::Other(format!("building indexes: {err}"))))?;
    let listener = TcpListener::bind(&settings.listen)
        .map_err(|err| StartError::Listen(settings.listen.clone(), err))?;
    let addr = listener.local_addr().map_err(StartError::Serve)?;
    let client = outbound::client(&settings).map_err(StartError::HttpClient)?;
    let state = web::Data::new(AppState::new(
        store.clone(),
        master,
        &settings,
        client.clone(),
    ));
    let mut http = HttpServer::new(move || api::app(state.clone()))
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        .listen(listener)
        .map_err(StartError::Serve)?;
    if settings.workers > 0 {
        http = http.workers(usize::try_from(settings.workers).unwrap_or(1));
    }
    if !options.handle_signals {
        http = http.disable_signals();
    }
    let server = http.run();
    let dispatcher = Dispatcher::start(store.clone(), client, &settings.webhooks)
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

/// After the server stopped: stops the webhook dispatcher, which holds a handle of the store,
/// then waits for the store's last handles and closes it.
pub fn close(dispatcher: Dispatcher, store: Store) {
    dispatcher.stop();
    if let Err(err) = store.close(Duration::from_secs(5)) {
        tracing::warn!(error = %err, "store not closed cleanly");
    }
}
