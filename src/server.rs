//! Start-up and shutdown: open the store, first-start bootstrap, bind, serve until a signal or a
//! stop request, then close the store cleanly.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{HttpServer, web};

use crate::api::{self, AppState};
use crate::auth::MasterKey;
use crate::auth::scope::{Scope, Verb};
use crate::config::Settings;
use crate::error::ApiResult;
use crate::model::api_key::{self, KeyCreate, Tier};
use crate::model::audit::Actor;
use crate::model::org::{self, OrgCreate};
use crate::store::Store;

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

/// On a store with no organisation, creates "Default" and a key with scope `admin`.
pub fn bootstrap(store: &Store) -> ApiResult<Option<Bootstrap>> {
    store.write_blocking(|tx| {
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
            tier: Tier::Starter,
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

pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub server: Server,
}

/// Builds the HTTP server on a bound listener. `handle_signals` is off where the embedding
/// program (tests) owns the process's signals.
pub fn start(
    settings: &Settings,
    master: MasterKey,
    store: Store,
    listener: TcpListener,
    handle_signals: bool,
) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let state = web::Data::new(AppState::new(
        store,
        master,
        usize::try_from(settings.max_body_bytes).unwrap_or(usize::MAX),
    ));
    let mut server = HttpServer::new(move || api::app(state.clone()))
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        .listen(listener)?;
    if settings.workers > 0 {
        server = server.workers(usize::try_from(settings.workers).unwrap_or(1));
    }
    if !handle_signals {
        server = server.disable_signals();
    }
    let server = server.run();
    Ok(Running {
        addr,
        handle: server.handle(),
        server,
    })
}

/// Waits for the last handles of the store after the server stopped, then closes it.
pub fn close_store(store: Store) {
    if let Err(err) = store.close(Duration::from_secs(5)) {
        tracing::warn!(error = %err, "store not closed cleanly");
    }
}
