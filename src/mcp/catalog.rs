//! The tools: one per useful operation of the API, named `<group>_<verb>`. Each names its route
//! by method and path as the route table and the OpenAPI document spell them; its input schema
//! is read from that document's operation (`tools::ToolTable::from_openapi`), so this list holds
//! only what the document cannot say: the name, the words for an agent, and the kind of effect.

/// What a tool does to the server's data; it sets the tool's annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Reads only (`GET`).
    Read,
    /// Makes a new object (answers 201): a retry makes another, unless it sends the same
    /// `idempotency_key`.
    Create,
    /// Sets fields or a state; the same call twice leaves the same result.
    Update,
    /// Removes or revokes; the same call twice leaves the same result.
    Delete,
    /// Replaces something that cannot be had back (a webhook's signing secret).
    Replace,
    /// Reaches outside the server (the agent's model provider, a webhook receiver).
    External,
}

impl Effect {
    pub fn read_only(self) -> bool {
        self == Read
    }

    pub fn destructive(self) -> bool {
        matches!(self, Delete | Replace)
    }

    /// The same call twice has no further effect.
    pub fn idempotent(self) -> bool {
        matches!(self, Read | Update | Delete)
    }

    pub fn open_world(self) -> bool {
        self == External
    }

    /// The annotations in words, for the list of tools.
    pub fn hints(self) -> &'static str {
        match self {
            Read => "read-only",
            Create => "creates; `idempotency_key` makes a retry safe",
            Update => "idempotent",
            Delete => "destructive, idempotent",
            Replace => "destructive",
            External => "reaches outside the server",
        }
    }
}

/// One tool of the catalog.
pub struct ToolDef {
    pub name: &'static str,
    /// The route: its method and its path pattern in the route table.
    pub method: &'static str,
    pub path: &'static str,
    pub description: &'static str,
    pub effect: Effect,
    /// Body fields the tool sets itself, left out of its input schema.
    pub fixed: &'static [(&'static str, &'static str)],
}

const fn tool(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    effect: Effect,
    description: &'static str,
) -> ToolDef {
    ToolDef {
        name,
        method,
        path,
        description,
        effect,
        fixed: &[],
    }
}

use Effect::*;

macro_rules! org {
    ($tail:literal) => {
        concat!("/api/v1/orgs/{org_id}", $tail)
    };
}

macro_rules! project {
    ($tail:literal) => {
        concat!("/api/v1/projects/{project_id}", $tail)
    };
}

/// Every tool, in the order `tools/list` shows them.
pub const CATALOG: &[ToolDef] = &[
    tool(
        "auth_whoami",
        "GET",
        "/api/v1/auth/whoami",
        Read,
        "Show the API key in use: its id, organisation, scopes and tier.",
    ),
    // Projects.
    tool(
        "projects_list",
        "GET",
        org!("/projects"),
        Read,
        "List the organisation's projects, oldest first.",
    ),
    tool(
        "projects_get",
        "GET",
        org!("/projects/{project_id}"),
        Read,
        "Show one project.",
    ),
    tool(
        "projects_create",
        "POST",
        org!("/projects"),
        Create,
        "Create a project. Without a slug, one is derived from the name.",
    ),
    tool(
        "projects_update",
        "PATCH",
        org!("/projects/{project_id}"),
        Update,
        "Change a project's name, domain, agent mode or AI model.",
    ),
    tool(
        "projects_delete",
        "DELETE",
        org!("/projects/{project_id}"),
        Delete,
        "Delete a project and everything it owns: conversations, contacts, articles, webhooks, \
         forms. Needs the scope projects:admin. Cannot be undone.",
    ),
    // Conversations and messages.
    tool(
        "conversations_list",
        "GET",
        project!("/conversations"),
        Read,
        "List a project's conversations, newest first; filter by status, priority, channel, \
         assignee, contact or text (q). Pass `cursor` from one page to get the next.",
    ),
    tool(
        "conversations_get",
        "GET",
        project!("/conversations/{conversation_id}"),
        Read,
        "Show one conversation.",
    ),
    tool(
        "conversations_create",
        "POST",
        project!("/conversations"),
        Create,
        "Open a conversation, optionally for a contact.",
    ),
    tool(
        "conversations_update",
        "PATCH",
        project!("/conversations/{conversation_id}"),
        Update,
        "Change a conversation's subject, status, priority, assignee or tags.",
    ),
    ToolDef {
        fixed: &[("status", "closed")],
        ..tool(
            "conversations_close",
            "PATCH",
            project!("/conversations/{conversation_id}"),
            Update,
            "Close a conversation (status `closed`).",
        )
    },
    tool(
        "messages_list",
        "GET",
        project!("/conversations/{conversation_id}/messages"),
        Read,
        "List a conversation's messages, oldest first.",
    ),
    tool(
        "messages_send",
        "POST",
        project!("/conversations/{conversation_id}/messages"),
        Create,
        "Post a message to a conversation: a reply (sender_type `agent`), or an internal note \
         with is_internal true.",
    ),
    // Contacts.
    tool(
        "contacts_list",
        "GET",
        project!("/contacts"),
        Read,
        "List a project's contacts, newest first; filter by email, external id or text (q).",
    ),
    tool(
        "contacts_get",
        "GET",
        project!("/contacts/{contact_id}"),
        Read,
        "Show one contact.",
    ),
    tool(
        "contacts_upsert",
        "POST",
        project!("/contacts"),
        Create,
        "Create a contact, or update the one with the same external id or email. Needs at \
         least one of email, name, external_id.",
    ),
    tool(
        "contacts_update",
        "PATCH",
        project!("/contacts/{contact_id}"),
        Update,
        "Change a contact; metadata merges key by key, null clears a field.",
    ),
    // Knowledge base.
    tool(
        "kb_list",
        "GET",
        project!("/kb/articles"),
        Read,
        "List knowledge-base articles; filter by status, category or text (q).",
    ),
    tool(
        "kb_get",
        "GET",
        project!("/kb/articles/{kb_article_id}"),
        Read,
        "Show one knowledge-base article with its content.",
    ),
    tool(
        "kb_search",
        "GET",
        project!("/kb/search"),
        Read,
        "Search the published articles; the best 10, each with a score from 0 to 1.",
    ),
    tool(
        "kb_create",
        "POST",
        project!("/kb/articles"),
        Create,
        "Write a knowledge-base article (a draft unless status says otherwise).",
    ),
    tool(
        "kb_update",
        "PATCH",
        project!("/kb/articles/{kb_article_id}"),
        Update,
        "Change an article's title, content, category, status or visibility.",
    ),
    tool(
        "kb_publish",
        "POST",
        project!("/kb/articles/{kb_article_id}/publish"),
        Update,
        "Publish an article: it becomes searchable.",
    ),
    tool(
        "kb_delete",
        "DELETE",
        project!("/kb/articles/{kb_article_id}"),
        Delete,
        "Delete an article.",
    ),
    // The AI agent.
    tool(
        "agent_status",
        "GET",
        project!("/agent/status"),
        Read,
        "Show whether the project's agent is on, its mode and model, and this month's usage.",
    ),
    tool(
        "agent_config_get",
        "GET",
        project!("/agent/config"),
        Read,
        "Show the agent's configuration.",
    ),
    tool(
        "agent_config_update",
        "PATCH",
        project!("/agent/config"),
        Update,
        "Change the agent's mode, model, confidence threshold or settings.",
    ),
    tool(
        "agent_respond",
        "POST",
        project!("/agent/respond"),
        External,
        "Let the agent answer a conversation: in autopilot it posts the reply, in copilot it \
         drafts an internal note.",
    ),
    tool(
        "agent_classify",
        "POST",
        project!("/agent/classify"),
        External,
        "Classify a conversation: category, intent, priority, sentiment.",
    ),
    tool(
        "agent_suggest",
        "POST",
        project!("/agent/suggest"),
        External,
        "Suggest a reply to a conversation without posting it.",
    ),
    // The chat widget.
    tool(
        "widget_config_get",
        "GET",
        project!("/widget/config"),
        Read,
        "Show the chat widget's configuration.",
    ),
    tool(
        "widget_config_update",
        "PATCH",
        project!("/widget/config"),
        Update,
        "Change the chat widget's configuration; keys beyond the documented ones are stored \
         as sent.",
    ),
    // Integrations.
    tool(
        "integrations_list",
        "GET",
        project!("/integrations"),
        Read,
        "List the integrations installed in a project.",
    ),
    tool(
        "integrations_catalog",
        "GET",
        project!("/integrations/catalog"),
        Read,
        "Browse the providers the server knows; filter by text, category or status.",
    ),
    tool(
        "integrations_get",
        "GET",
        project!("/integrations/catalog/{provider}"),
        Read,
        "Show one provider of the catalog.",
    ),
    tool(
        "integrations_install_url",
        "POST",
        project!("/integrations/{provider}/install-url"),
        Read,
        "Get the URL where a person connects a provider in a browser.",
    ),
    tool(
        "integrations_update",
        "PATCH",
        project!("/integrations/{provider}/lifecycle"),
        Update,
        "Pause, resume, rename or hide an installed integration, or change its settings.",
    ),
    tool(
        "integrations_disconnect",
        "DELETE",
        project!("/integrations/{provider}"),
        Delete,
        "Disconnect an integration (it stays listed as disconnected).",
    ),
    // Webhooks.
    tool(
        "webhooks_list",
        "GET",
        project!("/webhooks"),
        Read,
        "List a project's webhooks.",
    ),
    tool(
        "webhooks_get",
        "GET",
        project!("/webhooks/{webhook_id}"),
        Read,
        "Show one webhook.",
    ),
    tool(
        "webhooks_create",
        "POST",
        project!("/webhooks"),
        Create,
        "Create a webhook for some events; the answer holds its signing secret, shown this once.",
    ),
    tool(
        "webhooks_update",
        "PATCH",
        project!("/webhooks/{webhook_id}"),
        Update,
        "Change a webhook's URL, events or status.",
    ),
    tool(
        "webhooks_delete",
        "DELETE",
        project!("/webhooks/{webhook_id}"),
        Delete,
        "Delete a webhook and its delivery history.",
    ),
    tool(
        "webhooks_test",
        "POST",
        project!("/webhooks/{webhook_id}/test"),
        External,
        "Send one test event to the webhook's receiver now and report its answer.",
    ),
    tool(
        "webhooks_deliveries",
        "GET",
        project!("/webhooks/{webhook_id}/deliveries"),
        Read,
        "The 50 latest delivery attempts of a webhook, newest first.",
    ),
    tool(
        "webhooks_rotate_secret",
        "POST",
        project!("/webhooks/{webhook_id}/rotate-secret"),
        Replace,
        "Replace a webhook's signing secret; the old one stops working at once.",
    ),
    // Forms and their submissions.
    tool(
        "forms_list",
        "GET",
        project!("/forms"),
        Read,
        "List a project's forms, archived ones included.",
    ),
    tool(
        "forms_get",
        "GET",
        project!("/forms/{form_id}"),
        Read,
        "Show one form.",
    ),
    tool(
        "forms_create",
        "POST",
        project!("/forms"),
        Create,
        "Create a form; without fields it gets name, email and message.",
    ),
    tool(
        "forms_update",
        "PATCH",
        project!("/forms/{form_id}"),
        Update,
        "Change a form.",
    ),
    tool(
        "forms_archive",
        "POST",
        project!("/forms/{form_id}/archive"),
        Update,
        "Archive a form: it stops taking submissions.",
    ),
    tool(
        "forms_unarchive",
        "POST",
        project!("/forms/{form_id}/unarchive"),
        Update,
        "Unarchive a form.",
    ),
    tool(
        "forms_submissions",
        "GET",
        project!("/forms/{form_id}/submissions"),
        Read,
        "List a form's latest submissions.",
    ),
    // Beacons.
    tool(
        "beacons_list",
        "GET",
        project!("/beacons"),
        Read,
        "List a project's beacons (help buttons for a web page).",
    ),
    tool(
        "beacons_get",
        "GET",
        project!("/beacons/{beacon_id}"),
        Read,
        "Show one beacon.",
    ),
    tool(
        "beacons_create",
        "POST",
        project!("/beacons"),
        Create,
        "Create a beacon for one of the project's forms.",
    ),
    tool(
        "beacons_update",
        "PATCH",
        project!("/beacons/{beacon_id}"),
        Update,
        "Change a beacon.",
    ),
    tool(
        "beacons_archive",
        "POST",
        project!("/beacons/{beacon_id}/archive"),
        Update,
        "Archive a beacon.",
    ),
    tool(
        "beacons_unarchive",
        "POST",
        project!("/beacons/{beacon_id}/unarchive"),
        Update,
        "Unarchive a beacon.",
    ),
    // The organisation's keys and audit log.
    tool(
        "keys_list",
        "GET",
        org!("/keys"),
        Read,
        "List the organisation's API keys (never their secrets).",
    ),
    tool(
        "keys_create",
        "POST",
        org!("/keys"),
        Create,
        "Create an API key with some scopes; the answer's `key` is the secret, shown this once.",
    ),
    tool(
        "keys_revoke",
        "DELETE",
        org!("/keys/{key_id}"),
        Delete,
        "Revoke an API key, from its next request on.",
    ),
    tool(
        "audit_list",
        "GET",
        org!("/audit-log"),
        Read,
        "List the organisation's audit entries, newest first; filter by project, action or key.",
    ),
];

/// The path parameter every organisation route has, filled from the caller's key.
pub const ORG_PARAMETER: &str = "org_id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_group_verb_and_unique() {
        let mut names: Vec<&str> = CATALOG.iter().map(|t| t.name).collect();
        for name in &names {
            assert!(
                name.contains('_') && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
        }
        names.sort();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a tool name twice");
    }

    /// A GET only reads (and one POST: the install URL, which only reads).
    #[test]
    fn gets_are_reads() {
        for def in CATALOG {
            if def.method == "GET" {
                assert_eq!(def.effect, Read, "{}", def.name);
            }
        }
    }
}
