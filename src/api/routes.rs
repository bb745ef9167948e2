//! The route table: every endpoint with the access it requires, declared once. The app is built
//! from this table, the `Auth` extractor reads the required scope from it, and the authorization
//! tests walk it, so a route added without its scope or its test row fails a test. The rows of
//! the kinds served by the generic handlers (`owned`) are generated from each kind's declaration
//! (`Routed::ENDPOINTS`, in the kind's file), found through the registry.

use actix_web::http::Method;
use actix_web::{Route, guard, web};

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

pub use crate::api::access::{Access, OwnedRoute, RouteAccess, RouteSpec};
use crate::api::webhooks;
use crate::api::{admin, api_keys, audit_log, conversations, health, kb, openapi, owned, projects};
use crate::api::{agent, config};
use crate::auth::scope::{Required, Resource, Verb};
use crate::error::{ApiError, ErrorCode};
use crate::project_owned::agent::AgentSettings;
use crate::project_owned::registry;
use crate::project_owned::routed::{Archivable, Listing, Routed, RoutedVisitor, Standard};
use crate::project_owned::widget::WidgetConfig;
use crate::schema;

use crate::api::integrations;

use crate::api::{browser, forms};

const fn key(resource: Resource, verb: Verb) -> Access {
    Access::Key(Required::new(resource, verb))
}

fn spec(
    method: Method,
    path: &'static str,
    access: Access,
    handler: fn(Route) -> Route,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
        handler,
        owned: None,
    }
}

use Resource::*;
use Verb::*;

pub fn table() -> Vec<RouteSpec> {
    let (get, post, patch, delete) = (Method::GET, Method::POST, Method::PATCH, Method::DELETE);
    let mut table = vec![
        spec(get.clone(), "/healthz", Access::Public, |r| {
            r.to(health::check)
        }),
        // Admin API (docs/administration.md).
        spec(get.clone(), "/api/v1/admin/orgs", Access::Master, |r| {
            r.to(admin::list_orgs)
        }),
        spec(post.clone(), "/api/v1/admin/orgs", Access::Master, |r| {
            r.to(admin::create_org)
        }),
        spec(
            post.clone(),
            "/api/v1/admin/orgs/{org_id}/keys",
            Access::Master,
            |r| r.to(admin::create_key),
        ),
        // The calling key itself, for clients that hold only a key (self-hosting addition).
        spec(get.clone(), "/api/v1/auth/whoami", Access::AnyKey, |r| {
            r.to(api_keys::whoami)
        }),
        // Org API keys and the audit log (docs/administration.md).
        spec(
            get.clone(),
            "/api/v1/orgs/{org_id}/keys",
            key(Keys, Read),
            |r| r.to(api_keys::list),
        ),
        spec(
            post.clone(),
            "/api/v1/orgs/{org_id}/keys",
            key(Keys, Admin),
            |r| r.to(api_keys::create),
        ),
        spec(
            delete.clone(),
            "/api/v1/orgs/{org_id}/keys/{key_id}",
            key(Keys, Admin),
            |r| r.to(api_keys::revoke),
        ),
        spec(
            get.clone(),
            "/api/v1/orgs/{org_id}/audit-log",
            key(Audit, Read),
            |r| r.to(audit_log::list),
        ),
        // Projects (its endpoints (OpenAPI document)).
        spec(
            get.clone(),
            "/api/v1/orgs/{org_id}/projects",
            key(Projects, Read),
            |r| r.to(projects::list),
        ),
        spec(
            post.clone(),
            "/api/v1/orgs/{org_id}/projects",
            key(Projects, Write),
            |r| r.to(projects::create),
        ),
        spec(
            get.clone(),
            "/api/v1/orgs/{org_id}/projects/{project_id}",
            key(Projects, Read),
            |r| r.to(projects::get),
        ),
        spec(
            patch.clone(),
            "/api/v1/orgs/{org_id}/projects/{project_id}",
            key(Projects, Write),
            |r| r.to(projects::update),
        ),
        spec(
            delete.clone(),
            "/api/v1/orgs/{org_id}/projects/{project_id}",
            key(Projects, Admin),
            |r| r.to(projects::delete),
        ),
        // What a delete would remove (self-hosting addition, for the dashboard's dialog).
        spec(
            get.clone(),
            "/api/v1/orgs/{org_id}/projects/{project_id}/contents",
            key(Projects, Read),
            |r| r.to(projects::contents),
        ),
    ];
    // The kinds served by the generic routes (`owned`): rows generated from each kind's
    // declaration, in registry order.
    table.extend(kind_rows());
    table.extend([
        // A conversation's messages (rows 10-11).
        spec(
            get.clone(),
            "/api/v1/projects/{project_id}/conversations/{conversation_id}/messages",
            key(Messages, Read),
            |r| r.to(conversations::list_messages),
        ),
        spec(
            post.clone(),
            "/api/v1/projects/{project_id}/conversations/{conversation_id}/messages",
            key(Messages, Write),
            |r| r.to(conversations::post_message),
        ),
        // Knowledge base (rows 16, 22); `search` is a fixed segment beside `articles`.
        spec(
            get.clone(),
            "/api/v1/projects/{project_id}/kb/search",
            key(Kb, Read),
            |r| r.to(kb::search),
        ),
        spec(
            post.clone(),
            "/api/v1/projects/{project_id}/kb/articles/{kb_article_id}/publish",
            key(Kb, Write),
            |r| r.to(kb::publish),
        ),
        // Integrations (rows 31-36); `catalog` is a fixed segment, registered before
        // `{provider}`, and no provider is named so.
        spec(
            get.clone(),
            "/api/v1/projects/{project_id}/integrations",
            key(Integrations, Read),
            |r| r.to(integrations::list),
        ),
        spec(
            get.clone(),
            "/api/v1/projects/{project_id}/integrations/catalog",
            key(Integrations, Read),
            |r| r.to(integrations::catalog),
        ),
        spec(
            get.clone(),
            "/api/v1/projects/{project_id}/integrations/catalog/{provider}",
            key(Integrations, Read),
            |r| r.to(integrations::catalog_item),
        ),
        spec(
            post.clone(),
            "/api/v1/projects/{project_id}/integrations/{provider}/install-url",
            key(Integrations, Write),
            |r| r.to(integrations::install_url),
        ),
        spec(
            patch.clone(),
            "/api/v1/projects/{project_id}/integrations/{provider}/lifecycle",
            key(Integrations, Write),
            |r| r.to(integrations::update_lifecycle),
        ),
        spec(
            delete.clone(),
            "/api/v1/projects/{project_id}/integrations/{provider}",
            key(Integrations, Write),
            |r| r.to(integrations::disconnect),
        ),
        // Admin: installs stand in for the OAuth flow, which needs a browser.
        spec(
            post.clone(),
            "/api/v1/admin/projects/{project_id}/integrations/{provider}",
            Access::Master,
            |r| r.to(integrations::install),
        ),
        // A webhook's test, deliveries and secret (rows 42-44).
        spec(
            post.clone(),
            "/api/v1/projects/{project_id}/webhooks/{webhook_id}/test",
            key(Webhooks, Write),
            |r| r.to(webhooks::test),
        ),
        spec(
            get.clone(),
            "/api/v1/projects/{project_id}/webhooks/{webhook_id}/deliveries",
            key(Webhooks, Read),
            |r| r.to(webhooks::deliveries),
        ),
        spec(
            post.clone(),
            "/api/v1/projects/{project_id}/webhooks/{webhook_id}/rotate-secret",
            key(Webhooks, Write),
            |r| r.to(webhooks::rotate_secret),
        ),
        // Widget config and agent (rows 23-30).
        spec(
            get.clone(),
            "/api/v1/projects/{project_id}/widget/config",
            key(Widget, Read),
            |r| r.to(config::get::<WidgetConfig>),
        ),
        spec(
            patch.clone(),
            "/api/v1/projects/{project_id}/widget/config",
            key(Widget, Write),
            |r| r.to(config::update::<WidgetConfig>),
        ),
        spec(
            get.clone(),
            "/api/v1/projects/{project_id}/agent/status",
            key(Agent, Read),
            |r| r.to(agent::status),
        ),
        spec(
            get.clone(),
            "/api/v1/projects/{project_id}/agent/config",
            key(Agent, Read),
            |r| r.to(config::get::<AgentSettings>),
        ),
        spec(
            patch.clone(),
            "/api/v1/projects/{project_id}/agent/config",
            key(Agent, Write),
            |r| r.to(config::update::<AgentSettings>),
        ),
        spec(
            post.clone(),
            "/api/v1/projects/{project_id}/agent/respond",
            key(Agent, Write),
            |r| r.to(agent::respond),
        ),
        spec(
            post.clone(),
            "/api/v1/projects/{project_id}/agent/classify",
            key(Agent, Write),
            |r| r.to(agent::classify),
        ),
        spec(
            post.clone(),
            "/api/v1/projects/{project_id}/agent/suggest",
            key(Agent, Write),
            |r| r.to(agent::suggest),
        ),
        // A form's submissions (row 51).
        spec(
            get.clone(),
            "/api/v1/projects/{project_id}/forms/{form_id}/submissions",
            key(Forms, Read),
            |r| r.to(forms::submissions),
        ),
        // The public browser endpoints (docs/api/forms-and-beacons.md): no key; their paths are
        // `browser`'s, which gives them their rate limit and CORS. One handler serves both submit
        // paths.
        spec(post.clone(), browser::SUBMIT, Access::Public, |r| {
            r.to(forms::submit)
        }),
        spec(post.clone(), browser::SUBMIT_V1, Access::Public, |r| {
            r.to(forms::submit)
        }),
        spec(get.clone(), browser::FORM_SCHEMA, Access::Public, |r| {
            r.to(browser::form_schema)
        }),
        spec(get.clone(), browser::BEACON_CONFIG, Access::Public, |r| {
            r.to(browser::beacon_config)
        }),
        // An online backup of the store (self-hosting addition).
        spec(post.clone(), "/api/v1/admin/backup", Access::Master, |r| {
            r.to(admin::backup)
        }),
        // The OpenAPI document of this table (src/api/openapi.rs).
        spec(get.clone(), "/api/v1/openapi.json", Access::Public, |r| {
            r.to(openapi::serve)
        }),
    ]);
    table
}

/// The standard rows of every kind served by the generic handlers, generated from its
/// declaration, in registry order.
fn kind_rows() -> Vec<RouteSpec> {
    let mut rows = KindRows(Vec::new());
    registry::visit_routed(&mut rows);
    rows.0
}

struct KindRows(Vec<RouteSpec>);

impl KindRows {
    fn row<K: Routed>(&mut self, standard: Standard, handler: fn(Route) -> Route) {
        let endpoints = K::ENDPOINTS;
        let (paged, sorted) = match K::LISTING {
            Listing::Paged { by_updated, .. } => (true, by_updated.is_some()),
            Listing::Plain { .. } => (false, false),
        };
        let method = match standard {
            Standard::List | Standard::Get => Method::GET,
            Standard::Create | Standard::Archive | Standard::Unarchive => Method::POST,
            Standard::Update => Method::PATCH,
            Standard::Delete => Method::DELETE,
        };
        self.0.push(RouteSpec {
            method,
            path: interned(standard.path(endpoints.collection, K::SINGULAR)),
            access: key(endpoints.resource, standard.verb()),
            handler,
            owned: Some(OwnedRoute {
                standard,
                endpoints,
                view: schema::named::<K::View>(),
                paged,
                sorted,
            }),
        });
    }
}

impl RoutedVisitor for KindRows {
    fn routed<K: Routed>(&mut self) {
        for &standard in K::ENDPOINTS.routes {
            let handler: fn(Route) -> Route = match standard {
                Standard::List => |r| r.to(owned::list::<K>),
                Standard::Create => |r| r.to(owned::create::<K>),
                Standard::Get => |r| r.to(owned::get::<K>),
                Standard::Update => |r| r.to(owned::update::<K>),
                Standard::Delete => |r| r.to(owned::delete::<K>),
                // Only an `Archivable` kind has them: added below.
                Standard::Archive | Standard::Unarchive => continue,
            };
            self.row::<K>(standard, handler);
        }
    }

    fn archivable<K: Archivable>(&mut self) {
        self.routed::<K>();
        self.row::<K>(Standard::Archive, |r| r.to(owned::archive::<K>));
        self.row::<K>(Standard::Unarchive, |r| r.to(owned::unarchive::<K>));
    }
}

/// A generated path as the `'static` text the router and the log keep: each distinct path is
/// allocated once per process, however many times the table is built (once per worker and per
/// test server).
fn interned(path: String) -> &'static str {
    static PATHS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut paths = PATHS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = paths.get(path.as_str()) {
        return known;
    }
    let path: &'static str = Box::leak(path.into_boxed_str());
    paths.insert(path);
    path
}

/// The path pattern of the route that served a request, for its log line and metrics. It is
/// stored with the route's resource, so finding it costs no second walk of the router, as
/// `HttpRequest::match_pattern` would.
pub struct RoutePattern(pub &'static str);

/// Registers every route of the table. Paths are grouped into one resource each, whose unknown
/// methods answer like unknown paths: 404 `RESOURCE_NOT_FOUND` (docs/api/README.md, whose default
/// we keep: the hosted service answers a wrong method so). The resources are mounted as a tree of
/// path segments (see [`Segment`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    let specs = table();
    // The OpenAPI document of this table, rendered once per worker.
    cfg.app_data(web::Data::new(openapi::Rendered::of(&specs)));
    for node in &Segment::tree(&specs).children {
        node.mount(cfg);
    }
}

/// One path segment of the route tree, with the routes that end at it and the segments below.
/// Actix tries a scope's services in turn and matches a static segment by comparing text, but a
/// pattern with a `{param}` by a regex: mounted flat, a request ran one regex per resource
/// before its own (about 8% of a GET's CPU). As a tree it runs one short regex per `{param}`
/// segment of its own path.
struct Segment<'t> {
    /// `/name` or `/{param}`; empty for the root.
    text: &'static str,
    ends_here: Vec<&'t RouteSpec>,
    /// Static segments first, so that `/catalog` is not taken for `/{provider}`.
    children: Vec<Segment<'t>>,
}

impl<'t> Segment<'t> {
    fn tree(specs: &'t [RouteSpec]) -> Segment<'t> {
        let mut root = Segment::new("");
        for spec in specs {
            let starts: Vec<usize> = spec.path.match_indices('/').map(|(at, _)| at).collect();
            let mut node = &mut root;
            for (n, &start) in starts.iter().enumerate() {
                let end = starts.get(n + 1).copied().unwrap_or(spec.path.len());
                node = node.child(&spec.path[start..end]);
            }
            node.ends_here.push(spec);
        }
        root.order();
        root
    }

    fn new(text: &'static str) -> Self {
        Segment {
            text,
            ends_here: Vec::new(),
            children: Vec::new(),
        }
    }

    fn child(&mut self, text: &'static str) -> &mut Segment<'t> {
        let at = match self.children.iter().position(|c| c.text == text) {
            Some(at) => at,
            None => {
                self.children.push(Segment::new(text));
                self.children.len() - 1
            }
        };
        &mut self.children[at]
    }

    fn is_param(&self) -> bool {
        self.text.starts_with("/{")
    }

    fn order(&mut self) {
        self.children.sort_by_key(Segment::is_param);
        for child in &mut self.children {
            child.order();
        }
    }

    /// A leaf is one resource; a segment with segments below is a scope holding its own
    /// routes (as the resource `""`) and theirs.
    fn mount(&self, cfg: &mut web::ServiceConfig) {
        if self.children.is_empty() {
            cfg.service(resource(self.text, &self.ends_here));
            return;
        }
        cfg.service(web::scope(self.text).configure(|scope| {
            if !self.ends_here.is_empty() {
                scope.service(resource("", &self.ends_here));
            }
            for child in &self.children {
                child.mount(scope);
            }
        }));
    }
}

/// The resource of one path: its routes, the access each method requires, and its pattern.
fn resource(relative: &str, on_path: &[&RouteSpec]) -> actix_web::Resource {
    let path = on_path.first().map_or("", |s| s.path);
    let access = RouteAccess::new(
        on_path
            .iter()
            .map(|s| (s.method.clone(), s.access))
            .collect(),
    );
    let mut resource = web::resource(relative)
        .app_data(access)
        .app_data(RoutePattern(path))
        .default_service(web::to(not_found));
    for spec in on_path {
        let route = if spec.method == Method::GET {
            web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
        } else {
            web::route().method(spec.method.clone())
        };
        resource = resource.route((spec.handler)(route));
    }
    resource
}

pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::ResourceNotFound, "Not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of the table ends at exactly one segment, whose path from the root spells
    /// its pattern, and static segments come before `{param}` ones at every level.
    #[test]
    fn the_segment_tree_holds_every_route_once_statics_first() {
        fn walk(node: &Segment<'_>, prefix: &str, seen: &mut Vec<(String, Method)>) {
            let path = format!("{prefix}{}", node.text);
            for spec in &node.ends_here {
                assert_eq!(spec.path, path);
                seen.push((path.clone(), spec.method.clone()));
            }
            let params: Vec<bool> = node.children.iter().map(Segment::is_param).collect();
            assert!(params.is_sorted(), "statics first under {path:?}");
            for child in &node.children {
                walk(child, &path, seen);
            }
        }
        let specs = table();
        let mut seen = Vec::new();
        walk(&Segment::tree(&specs), "", &mut seen);
        assert_eq!(seen.len(), specs.len());
        for spec in &specs {
            assert!(seen.contains(&(spec.path.to_string(), spec.method.clone())));
        }
    }
}
