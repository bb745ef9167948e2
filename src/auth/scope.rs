//! The scope model of docs/administration.md: coarse scopes (`read`, `write`, `admin`) and
//! per-resource scopes (`<resource>:<verb>`), and which granted scope covers which requirement.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Read,
    Write,
    Admin,
}

impl Verb {
    fn parse(s: &str) -> Option<Verb> {
        match s {
            "read" => Some(Verb::Read),
            "write" => Some(Verb::Write),
            "admin" => Some(Verb::Admin),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Verb::Read => "read",
            Verb::Write => "write",
            Verb::Admin => "admin",
        }
    }
}

/// Every scope string a key can hold: the coarse verbs, then each resource's.
pub fn every_scope() -> Vec<String> {
    let verbs = [Verb::Read, Verb::Write, Verb::Admin];
    let mut all: Vec<String> = verbs.iter().map(|v| v.as_str().to_string()).collect();
    for resource in Resource::ALL {
        for verb in verbs {
            all.push(format!("{}:{}", resource.as_str(), verb.as_str()));
        }
    }
    all
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Projects,
    Conversations,
    Messages,
    Contacts,
    Kb,
    Agent,
    Widget,
    Integrations,
    Forms,
    Beacons,
    Webhooks,
    Analytics,
    Audit,
    Keys,
}

impl Resource {
    const ALL: [Resource; 14] = [
        Resource::Projects,
        Resource::Conversations,
        Resource::Messages,
        Resource::Contacts,
        Resource::Kb,
        Resource::Agent,
        Resource::Widget,
        Resource::Integrations,
        Resource::Forms,
        Resource::Beacons,
        Resource::Webhooks,
        Resource::Analytics,
        Resource::Audit,
        Resource::Keys,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Projects => "projects",
            Resource::Conversations => "conversations",
            Resource::Messages => "messages",
            Resource::Contacts => "contacts",
            Resource::Kb => "kb",
            Resource::Agent => "agent",
            Resource::Widget => "widget",
            Resource::Integrations => "integrations",
            Resource::Forms => "forms",
            Resource::Beacons => "beacons",
            Resource::Webhooks => "webhooks",
            Resource::Analytics => "analytics",
            Resource::Audit => "audit",
            Resource::Keys => "keys",
        }
    }

    fn parse(s: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Audit entries describe everyone's actions, so the coarse `read`/`write` do not reach them.
    fn coarse_read_write_applies(self) -> bool {
        self != Resource::Audit
    }
}

/// What a route requires: always one resource-scoped verb (docs/administration.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Required {
    pub resource: Resource,
    pub verb: Verb,
}

impl Required {
    pub const fn new(resource: Resource, verb: Verb) -> Self {
        Required { resource, verb }
    }
}

impl fmt::Display for Required {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource.as_str(), self.verb.as_str())
    }
}

/// A scope a key may hold, parsed once when a key is created or loaded. Stored and sent as its
/// string (`kb:write`), so stored records read the same as when scopes were kept as text.
/// In the OpenAPI document: one of the scope strings.
impl utoipa::PartialSchema for Scope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(every_scope()))
            .into()
    }
}

impl utoipa::ToSchema for Scope {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    Coarse(Verb),
    On(Resource, Verb),
}

impl Scope {
    /// Parses a scope string; unknown strings are `None` and cover nothing.
    pub fn parse(s: &str) -> Option<Scope> {
        match s.split_once(':') {
            None => Verb::parse(s).map(Scope::Coarse),
            Some((resource, verb)) => {
                Some(Scope::On(Resource::parse(resource)?, Verb::parse(verb)?))
            }
        }
    }

    pub fn covers(self, required: Required) -> bool {
        match self {
            Scope::Coarse(Verb::Admin) => true,
            Scope::Coarse(verb) => {
                required.resource.coarse_read_write_applies()
                    && required.verb != Verb::Admin
                    && verb >= required.verb
            }
            Scope::On(resource, verb) => {
                // A conversations scope also reaches the conversation's messages
                // (docs/administration.md).
                let same = resource == required.resource
                    || (resource == Resource::Conversations
                        && required.resource == Resource::Messages);
                same && verb >= required.verb
            }
        }
    }

    /// Whether a holder of `self` may hand out `other`: everything `other` covers, `self` covers.
    pub fn includes(self, other: Scope) -> bool {
        match other {
            Scope::On(resource, verb) => self.covers(Required::new(resource, verb)),
            Scope::Coarse(verb) => match self {
                Scope::Coarse(own) => own == Verb::Admin || own >= verb,
                Scope::On(..) => false,
            },
        }
    }
}

impl TryFrom<String> for Scope {
    type Error = String;

    fn try_from(s: String) -> Result<Scope, String> {
        Scope::parse(&s).ok_or_else(|| format!("Unknown scope '{s}'"))
    }
}

/// The scope's string, exactly as it is parsed.
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Coarse(verb) => f.write_str(verb.as_str()),
            Scope::On(resource, verb) => write!(f, "{}:{}", resource.as_str(), verb.as_str()),
        }
    }
}

impl From<Scope> for String {
    fn from(scope: Scope) -> String {
        scope.to_string()
    }
}

/// Whether any of the granted scopes covers `required`.
pub fn any_covers(granted: &[Scope], required: Required) -> bool {
    granted.iter().any(|s| s.covers(required))
}

/// Whether the granted scopes together include `wanted`.
pub fn any_includes(granted: &[Scope], wanted: Scope) -> bool {
    granted.iter().any(|s| s.includes(wanted))
}

/// For each resource, the strongest verb the granted scopes cover (`None`: not even `read`):
/// what a client shows its user, such as the dashboard hiding the controls of writes its key
/// would be refused.
pub fn access(granted: &[Scope]) -> Vec<(&'static str, Option<&'static str>)> {
    Resource::ALL
        .into_iter()
        .map(|resource| {
            let strongest = [Verb::Admin, Verb::Write, Verb::Read]
                .into_iter()
                .find(|&verb| any_covers(granted, Required::new(resource, verb)));
            (resource.as_str(), strongest.map(Verb::as_str))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Resource::*;
    use super::Verb::*;
    use super::*;
    use crate::validate::assert_string_newtype;

    fn scopes(granted: &[&str]) -> Vec<Scope> {
        granted.iter().map(|s| Scope::parse(s).unwrap()).collect()
    }

    fn allows(granted: &str, resource: Resource, verb: Verb) -> bool {
        any_covers(&scopes(&[granted]), Required::new(resource, verb))
    }

    #[test]
    fn access_names_the_strongest_verb_per_resource() {
        let access = access(&scopes(&["read", "kb:admin", "conversations:write"]));
        let of = |name: &str| access.iter().find(|(r, _)| *r == name).unwrap().1;
        assert_eq!(of("kb"), Some("admin"));
        assert_eq!(of("conversations"), Some("write"));
        assert_eq!(of("projects"), Some("read"));
        assert_eq!(
            of("audit"),
            None,
            "coarse read does not reach the audit log"
        );
        assert_eq!(access.len(), Resource::ALL.len());
    }

    /// docs/administration.md's table, row by row.
    #[test]
    fn documented_coverage_table() {
        let cases = [
            ("read", [true, false, false]),
            ("write", [true, true, false]),
            ("admin", [true, true, true]),
            ("kb:write", [true, true, false]),
            ("conversations:read", [false, false, false]),
            ("projects:admin", [false, false, true]),
        ];
        for (granted, [list_kb, patch_kb, delete_project]) in cases {
            assert_eq!(allows(granted, Kb, Read), list_kb, "{granted} GET kb");
            assert_eq!(allows(granted, Kb, Write), patch_kb, "{granted} PATCH kb");
            assert_eq!(
                allows(granted, Projects, Admin),
                delete_project,
                "{granted} DELETE project"
            );
        }
    }

    #[test]
    fn resource_scopes_nest() {
        assert!(allows("kb:admin", Kb, Write));
        assert!(allows("kb:write", Kb, Read));
        assert!(!allows("kb:read", Kb, Write));
        assert!(!allows("kb:admin", Contacts, Read));
    }

    #[test]
    fn conversation_scopes_reach_messages() {
        assert!(allows("conversations:read", Messages, Read));
        assert!(!allows("conversations:read", Messages, Write));
        assert!(allows("conversations:write", Messages, Write));
        assert!(!allows("messages:write", Conversations, Read));
    }

    #[test]
    fn audit_needs_admin_or_audit_scope() {
        assert!(!allows("read", Audit, Read));
        assert!(!allows("write", Audit, Read));
        assert!(allows("admin", Audit, Read));
        assert!(allows("audit:read", Audit, Read));
        assert!(allows("audit:admin", Audit, Read));
    }

    #[test]
    fn keys_follow_the_usual_rules() {
        assert!(allows("write", Keys, Read));
        assert!(!allows("write", Keys, Admin));
        assert!(allows("admin", Keys, Admin));
        assert!(allows("keys:admin", Keys, Read));
    }

    #[test]
    fn unknown_scopes_cover_nothing() {
        for s in [
            "",
            "root",
            "kb:delete",
            "tickets:read",
            "kb:",
            ":read",
            "read:kb",
        ] {
            assert!(Scope::parse(s).is_none(), "{s}");
            assert_eq!(
                Scope::try_from(s.to_string()),
                Err(format!("Unknown scope '{s}'"))
            );
        }
    }

    #[test]
    fn every_scope_displays_as_the_string_it_parses_from() {
        for s in every_scope() {
            let scope = Scope::try_from(s.clone()).unwrap();
            assert_eq!(scope.to_string(), s);
            assert_eq!(String::from(scope), s);
        }
    }

    #[test]
    fn scopes_encode_as_their_strings() {
        assert_string_newtype::<Scope>("kb:write", "kb:delete");
        assert_string_newtype::<Scope>("admin", "root");
    }

    #[test]
    fn granting_needs_what_is_granted() {
        let write = scopes(&["write"]);
        assert!(any_includes(&write, Scope::parse("kb:write").unwrap()));
        assert!(any_includes(&write, Scope::parse("read").unwrap()));
        assert!(any_includes(&write, Scope::parse("write").unwrap()));
        assert!(!any_includes(&write, Scope::parse("admin").unwrap()));
        assert!(!any_includes(&write, Scope::parse("kb:admin").unwrap()));
        assert!(!any_includes(&write, Scope::parse("audit:read").unwrap()));
        let kb = scopes(&["kb:admin"]);
        assert!(any_includes(&kb, Scope::parse("kb:read").unwrap()));
        assert!(!any_includes(&kb, Scope::parse("read").unwrap()));
        assert!(any_includes(
            &scopes(&["admin"]),
            Scope::parse("audit:admin").unwrap()
        ));
    }
}
