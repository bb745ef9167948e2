//! What a route requires of its caller. The route table declares it; the router stores it with
//! each path, and the `Auth` extractor reads it from there.

use std::collections::HashMap;

use actix_web::http::Method;

use crate::auth::scope::Required;

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

    /// The `Allow` header's value: the path's methods, with HEAD beside GET.
    pub fn allow(&self) -> String {
        let mut methods: Vec<&str> = self.0.keys().map(Method::as_str).collect();
        if self.0.contains_key(&Method::GET) {
            methods.push("HEAD");
        }
        methods.sort_unstable();
        methods.join(", ")
    }
}
