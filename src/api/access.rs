//! What a route requires of its caller. The route table declares it; the router stores it with
//! each path, and the `Auth` extractor reads it from there.

use std::collections::HashMap;

use actix_web::Route;
use actix_web::http::Method;

use crate::auth::scope::Required;
use crate::project_owned::routed::{Endpoints, Standard};
use crate::schema::Named;

/// One row of the route table (`routes::table`): what the router registers and what the
/// OpenAPI document (`openapi`) and the authorization tests read.
pub struct RouteSpec {
    pub method: Method,
    /// The full path pattern, `{name}` for path parameters.
    pub path: &'static str,
    pub access: Access,
    /// Adds the handler to the route.
    pub handler: fn(Route) -> Route,
    /// For a row generated from a kind's declaration, what the OpenAPI document reads of it.
    pub owned: Option<OwnedRoute>,
}

/// A standard route of a kind served by the generic handlers, as its declaration gives it.
#[derive(Clone, Copy)]
pub struct OwnedRoute {
    pub standard: Standard,
    pub endpoints: Endpoints,
    /// The kind's view, the `data` of its answers.
    pub view: Named,
    /// Its list answers pages (`{data, cursor, has_more}`); else it is plain, and capped.
    pub paged: bool,
    /// Its list takes `sort` and `order`.
    pub sorted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential (health checks).
    Public,
    /// The master key (admin API).
    Master,
    /// An org API key holding a scope that covers this requirement.
    Key(Required),
    /// Any usable org API key, whatever its scopes: a key asking about itself.
    AnyKey,
}

/// The access rules of one path, by method; stored as the resource's app data.
#[derive(Clone)]
pub struct RouteAccess(HashMap<Method, Access>);

impl RouteAccess {
    pub fn new(by_method: HashMap<Method, Access>) -> Self {
        RouteAccess(by_method)
    }

    pub fn get(&self, method: &Method) -> Option<Access> {
        self.0.get(method).copied()
    }
}
