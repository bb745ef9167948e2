//! The public browser endpoints (docs/api/forms-and-beacons.md), which a website calls without a
//! key: a form's schema, a beacon's config, and the submit path (`forms::submit`) under its two
//! names. This module knows their paths and the object each names, so that the rate limit counts
//! them per client address whatever key they carry, and `context::browser_cors` answers their CORS
//! by the `allowed_origins` of that form or beacon, not by the server's `[cors]` list.

use actix_web::http::header::HeaderValue;
use actix_web::{HttpResponse, web};

use crate::api::response::{State, ok};
use crate::api::state::AppState;
use crate::error::ApiResult;
use crate::project_owned::beacon::{self, Beacon};
use crate::project_owned::form::{self, Form, PublicFormView};
use crate::project_owned::{Id, find_public, not_found};

/// Submits a form: the guide's path, and the API reference's under `/api/v1`.
pub const SUBMIT: &str = "/api/f/{form_id}";
pub const SUBMIT_V1: &str = "/api/v1/f/{form_id}";
/// A form's public schema, by id, or by slug on a server with a single project.
pub const FORM_SCHEMA: &str = "/api/forms/{form_id_or_slug}/public";
/// A beacon's public config: its appearance and its form's schema.
pub const BEACON_CONFIG: &str = "/api/beacons/{beacon_id}/public";

/// The object a browser path names: the value of its one path parameter.
#[derive(Debug, PartialEq, Eq)]
pub enum Named {
    /// A form by id (the submit paths).
    Form(String),
    /// A form by id or slug (its schema).
    FormIdOrSlug(String),
    Beacon(String),
}

impl Named {
    /// What `path` names, if it is one of the browser paths. A trailing slash is allowed: the
    /// 100-continue check sees paths before `NormalizePath` trims it.
    pub fn of(path: &str) -> Option<Named> {
        let path = path.strip_suffix('/').unwrap_or(path);
        if let Some(id) = param(SUBMIT, path).or_else(|| param(SUBMIT_V1, path)) {
            return Some(Named::Form(id.to_string()));
        }
        if let Some(id_or_slug) = param(FORM_SCHEMA, path) {
            return Some(Named::FormIdOrSlug(id_or_slug.to_string()));
        }
        param(BEACON_CONFIG, path).map(|id| Named::Beacon(id.to_string()))
    }

    /// The one method a browser uses on the path.
    pub fn method(&self) -> &'static str {
        match self {
            Named::Form(_) => "POST",
            Named::FormIdOrSlug(_) | Named::Beacon(_) => "GET",
        }
    }

    /// Whether the object exists and lets a page at `origin` read its answers. Point reads of
    /// a few keys, looked up like a GET by id (`Store::look_up`: inline on redb, never a wait
    /// for a round trip on the worker); a failed read allows nothing (the handler then meets
    /// the same failure and answers it).
    pub async fn allows(self, state: &AppState, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str().map(str::to_string) else {
            return false;
        };
        let found = state
            .store
            .look_up(move |rx| {
                let origin = Some(origin.as_str());
                Ok(match &self {
                    Named::Form(id) => match Id::parse(id) {
                        Some(id) => {
                            find_public::<Form>(rx, &id)?.map(|(_, f)| f.allows_origin(origin))
                        }
                        None => None,
                    },
                    Named::FormIdOrSlug(id_or_slug) => form::find_public_form(rx, id_or_slug)?
                        .map(|(_, f)| f.allows_origin(origin)),
                    Named::Beacon(id) => match Id::parse(id) {
                        Some(id) => {
                            find_public::<Beacon>(rx, &id)?.map(|(_, b)| b.allows_origin(origin))
                        }
                        None => None,
                    },
                })
            })
            .await;
        matches!(found, Ok(Some(true)))
    }
}

/// The value of the one `{param}` segment of `pattern` in `path`, if `path` matches it.
fn param<'p>(pattern: &str, path: &'p str) -> Option<&'p str> {
    let mut value = None;
    let mut sent = path.split('/');
    for segment in pattern.split('/') {
        let part = sent.next()?;
        if segment.starts_with('{') {
            value = Some(part).filter(|p| !p.is_empty());
        } else if segment != part {
            return None;
        }
    }
    if sent.next().is_some() {
        return None;
    }
    value
}

/// Whether `path` is one of the browser paths.
pub fn is_browser_path(path: &str) -> bool {
    Named::of(path).is_some()
}

/// `GET /api/forms/{form_id_or_slug}/public`: a live form's public schema. Unknown → 404,
/// archived → 410 `FORM_ARCHIVED`, `public_api` false → 403 `FORBIDDEN`.
pub async fn form_schema(path: web::Path<String>, state: State) -> ApiResult<HttpResponse> {
    let id_or_slug = path.into_inner();
    let schema = state
        .store
        .look_up(move |rx| {
            let (_, form) =
                form::find_public_form(rx, &id_or_slug)?.ok_or_else(not_found::<Form>)?;
            form.check_live()?;
            Ok(PublicFormView::from(&form))
        })
        .await?;
    Ok(ok(schema))
}

/// `GET /api/beacons/{beacon_id}/public`: a live beacon's appearance and its form's schema.
pub async fn beacon_config(path: web::Path<String>, state: State) -> ApiResult<HttpResponse> {
    let id = Id::<Beacon>::parse(&path.into_inner());
    let config = state
        .store
        .look_up(move |rx| beacon::public_config(rx, Id::found(&id)?))
        .await?;
    Ok(ok(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::routes::{Access, table};

    #[test]
    fn browser_paths_name_their_object() {
        let form = |id: &str| Some(Named::Form(id.into()));
        assert_eq!(Named::of("/api/f/frm_abc"), form("frm_abc"));
        assert_eq!(Named::of("/api/v1/f/frm_abc/"), form("frm_abc"));
        assert_eq!(
            Named::of("/api/forms/contact-us/public"),
            Some(Named::FormIdOrSlug("contact-us".into()))
        );
        assert_eq!(
            Named::of("/api/beacons/bcn_x/public"),
            Some(Named::Beacon("bcn_x".into()))
        );
        for other in [
            "/api/f/",
            "/api/f",
            "/api/f/a/b",
            "/api/forms//public",
            "/api/forms/x/publics",
            "/api/v1/projects/prj_x/forms",
            "/healthz",
        ] {
            assert_eq!(Named::of(other), None, "{other}");
        }
    }

    /// The route table serves each browser path, without a key.
    #[test]
    fn every_browser_path_is_a_public_route() {
        for path in [SUBMIT, SUBMIT_V1, FORM_SCHEMA, BEACON_CONFIG] {
            let routes: Vec<_> = table().into_iter().filter(|r| r.path == path).collect();
            assert_eq!(routes.len(), 1, "{path}");
            assert_eq!(routes[0].access, Access::Public, "{path}");
            let named = Named::of(&path.replace('{', "x").replace('}', "")).unwrap();
            assert_eq!(named.method(), routes[0].method.as_str(), "{path}");
        }
    }
}
