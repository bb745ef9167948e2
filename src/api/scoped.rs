//! Running store operations inside the project named by a `/projects/{projectId}/…` path.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use crate::api::extract::Auth;
use crate::api::idempotency::Idempotent;
use crate::api::response::State;
use crate::error::ApiResult;
use crate::ids::{OrgId, ProjectId};
use crate::org_owned::audit::Actor;
use crate::org_owned::project;
use crate::project_owned::ProjectScope;
use crate::store::{Reader, Rx, Tx};

/// The path's project, as seen by the calling key. Every operation resolves it again inside its
/// own transaction, so a project deleted meanwhile is "not found", never half-written.
pub struct InProject {
    org_id: OrgId,
    /// `None`: the path's text is no project id (`project::named`).
    project_id: Option<ProjectId>,
    actor: Actor,
}

/// The project `project_id` for a key of `org_id`.
fn resolve(
    reader: &impl Reader,
    org_id: &OrgId,
    project_id: Option<&ProjectId>,
) -> ApiResult<ProjectScope> {
    ProjectScope::resolve(reader, org_id, project::named(project_id)?)
}

impl InProject {
    /// The project named by the path segment `project_id`.
    pub fn new(auth: &Auth, project_id: String) -> Self {
        InProject {
            org_id: auth.key.org_id.clone(),
            project_id: ProjectId::parse(&project_id),
            actor: auth.actor(),
        }
    }

    /// Resolves the project now, so that a bad project answers before the body is read
    /// (docs/administration.md).
    pub async fn checked(state: &State, auth: &Auth, project_id: String) -> ApiResult<Self> {
        let project = InProject::new(auth, project_id);
        project.look_up(state, |_, _| Ok(())).await?;
        Ok(project)
    }

    /// A point read — the project and a few keys of it, or a page walk held to
    /// `routed::INLINE_PAGE_ENTRIES` — through `Store::look_up` (inline on the async worker on
    /// redb, whose read transactions never wait for the writer: a few page look-ups, less than
    /// a hand-off to the blocking pool). Anything that scans further uses [`InProject::read`].
    pub async fn look_up<T: Send + 'static>(
        &self,
        state: &State,
        op: impl FnOnce(&Rx, &ProjectScope) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let (org_id, project_id) = (self.org_id.clone(), self.project_id.clone());
        state
            .store
            .look_up(move |rx| op(rx, &resolve(rx, &org_id, project_id.as_ref())?))
            .await
    }

    /// A read that may touch many pages (a list, a search), on the blocking pool.
    pub async fn read<T: Send + 'static>(
        &self,
        state: &State,
        op: impl FnOnce(&Rx, &ProjectScope) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let (org_id, project_id) = (self.org_id.clone(), self.project_id.clone());
        state
            .store
            .read(move |rx| op(rx, &resolve(rx, &org_id, project_id.as_ref())?))
            .await
    }

    /// A write answered with `view` of its result and `status`, through the request's
    /// idempotency (`Idempotent::write`): with a key, its record is checked and written in the
    /// same write operation.
    pub async fn answer<R: Send + 'static>(
        &self,
        state: &State,
        idempotent: Idempotent,
        status: StatusCode,
        view: fn(&R) -> ApiResult<Vec<u8>>,
        op: impl FnOnce(&mut Tx<'_>, &ProjectScope, &Actor) -> ApiResult<R> + Clone + Send + 'static,
    ) -> ApiResult<HttpResponse> {
        idempotent.write(state, status, view, self.in_tx(op)).await
    }

    /// `op` as a write operation of this project: it resolves the project again inside its
    /// transaction first.
    pub fn in_tx<T>(
        &self,
        op: impl FnOnce(&mut Tx<'_>, &ProjectScope, &Actor) -> ApiResult<T> + Clone + Send + 'static,
    ) -> impl FnOnce(&mut Tx<'_>) -> ApiResult<T> + Clone + Send + 'static {
        let (org_id, project_id, actor) = (
            self.org_id.clone(),
            self.project_id.clone(),
            self.actor.clone(),
        );
        move |tx| {
            let scope = resolve(tx, &org_id, project_id.as_ref())?;
            op(tx, &scope, &actor)
        }
    }
}
