//! Webhooks (docs/api/webhooks.md and the OpenAPI document): where a project's events go, and the
//! secret that signs them. The secret is stored with the webhook, for delivery to sign with, but
//! the view has no field for it: every response but the create's (and rotation's) and every audit
//! entry is made from the view, so none of them can show it.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::scope::Resource;
use crate::codec::Record;
use crate::config::WebhookSettings;
use crate::error::{ApiResult, ErrorCode};
use crate::ids;
use crate::org_owned::audit::Actor;
use crate::project_owned::routed::{Body, Endpoints, Standard, no_filters};
use crate::project_owned::routed::{InputSettings, Unfiltered};
use crate::project_owned::webhooks::delivery_log::{IN_WEBHOOK, WebhookDelivery};
use crate::project_owned::webhooks::outbound::TargetPolicy;
use crate::project_owned::webhooks::outbox::{self, SUBSCRIBED};
use crate::project_owned::{self, IndexEntry, Kind, Listing, Order, ProjectScope, Routed};
use crate::project_owned::{Id, Stamp};
use crate::query::QueryParams;
use crate::schema::named;
use crate::store::{Reader, Tx};
use crate::timestamp::Timestamp;
use crate::validate::wire_enum;
use crate::validate::{Check, Input, Presence, one_of, parsed};
use crate::view::record_view;

pub const BY_CREATED: u8 = 0x5c;

/// The events of docs/api/webhooks.md that a webhook can subscribe to. `webhook.test` is not one:
/// the test endpoint sends it to its one webhook, whatever that subscribes to.
pub const EVENTS: &[&str] = &[
    "conversation.created",
    "conversation.updated",
    "conversation.resolved",
    "message.created",
    "contact.created",
    "contact.updated",
    "agent.escalated",
    "agent.action_executed",
    "form.submitted",
];

/// The groups of `<group>.*` subscriptions.
pub const GROUPS: &[&str] = &["conversation", "message", "contact", "agent", "form"];

/// Longest `events` array accepted; every distinct subscription (15) fits well below it.
const MAX_EVENTS: usize = 50;
/// Longest URL accepted, in characters.
pub const URL_MAX_CHARS: usize = 2048;
/// Webhooks list as a plain array, so a project holds at most this many.
const MAX_PER_PROJECT: usize = 100;
/// How many delivery records `deliveries` shows (docs/api/webhooks.md).
pub const RECENT_DELIVERIES: usize = 50;

wire_enum! {
    pub enum WebhookStatus {
        Active = "active",
        Disabled = "disabled",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub url: WebhookUrl,
    pub events: Vec<EventPattern>,
    /// Signs deliveries (docs/api/webhooks.md).
    pub secret: Secret,
    pub status: WebhookStatus,
    pub failure_count: u32,
    pub last_triggered_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub seq: u64,
}

impl Record for Webhook {
    const NAME: &'static str = "webhook";
}

record_view! {
    /// the OpenAPI document: no secret, no `project_id`, no `updated_at`.
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct WebhookView from Webhook {
        id: String,
        url: WebhookUrl,
        events: Vec<EventPattern>,
        status: WebhookStatus,
        failure_count: u32,
        last_triggered_at: Option<Timestamp>,
        created_at: Timestamp,
    }
}

/// The create response: the view and, this once, the secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub view: WebhookView,
    pub secret: Secret,
}

impl Kind for Webhook {
    const TAG: u8 = 0x0b;
    const INDEX_TAGS: &'static [u8] = &[BY_CREATED, SUBSCRIBED];
    const PLURAL: &'static str = "webhooks";
    const SINGULAR: &'static str = "webhook";
    const ID_PREFIX: &'static str = "wh_";
    const NOT_FOUND: ErrorCode = ErrorCode::ResourceNotFound;
    type View = WebhookView;

    fn id(&self) -> &str {
        &self.id
    }

    /// Its creation order and, while it is active, its subscription (`outbox::SUBSCRIBED`):
    /// the write path reads a project's subscriptions there.
    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        let mut entries = vec![IndexEntry::order(BY_CREATED, b"", self.seq, &self.id)];
        if self.status == WebhookStatus::Active {
            entries.push(IndexEntry::Key {
                tag: SUBSCRIBED,
                key: self.id.as_bytes().to_vec(),
                value: outbox::subscription_value(self.events.iter().map(|e| e.0.as_str())),
            });
        }
        Ok(entries)
    }
}

/// A signing secret: `whsec_` and 32 random base64url characters. `Debug` hides it, so a
/// record printed to a log shows none.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// 24 bytes from the operating system: 32 base64url characters, 192 bits.
    fn generate() -> Secret {
        let mut bytes = [0u8; 24];
        ids::fill_random(&mut bytes);
        Secret(format!("whsec_{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The HMAC key of docs/api/webhooks.md: the whole string's UTF-8 bytes, `whsec_` included.
    pub fn signing_key(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(whsec_…)")
    }
}

/// An absolute `http` or `https` URL with a host, without credentials, of at most 2048
/// characters, kept as sent. Whether plain `http` and private targets are allowed are server
/// settings, checked when a client sends a URL (`url_input`), not here: stored webhooks stay
/// readable when they change (and delivery checks the target again at every attempt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookUrl(String);

impl TryFrom<String> for WebhookUrl {
    type Error = String;

    fn try_from(text: String) -> Check<WebhookUrl> {
        if text.chars().count() > URL_MAX_CHARS {
            return Err(format!("Must be at most {URL_MAX_CHARS} characters"));
        }
        // The WHATWG parser drops whitespace and reads `\` as `/`; a receiver's address is
        // stored as sent, so it must already be in its plain form.
        if text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        {
            return Err("Must not contain spaces, backslashes or control characters".into());
        }
        let url = url::Url::parse(&text).map_err(|_| "Must be an absolute URL".to_string())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("Must be an http or https URL".into());
        }
        // The parser also forgives `https:host` and `https:///host`.
        let authority = text
            .get(url.scheme().len()..)
            .and_then(|rest| rest.strip_prefix("://"));
        if authority.is_none_or(|a| a.starts_with('/')) {
            return Err("Must be an absolute URL: scheme://host/…".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("Must not contain credentials".into());
        }
        // The WHATWG parser takes nearly any character in a host name (`https://a*`); a
        // receiver is named by DNS labels or an IP address.
        let host_ok = match url.host() {
            Some(url::Host::Domain(domain)) => domain.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }),
            Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => true,
            None => false,
        };
        if !host_ok {
            return Err("Must name its host by a hostname or an IP address".into());
        }
        Ok(WebhookUrl(text))
    }
}

impl From<WebhookUrl> for String {
    fn from(url: WebhookUrl) -> String {
        url.0
    }
}

impl WebhookUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_https(&self) -> bool {
        self.0
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("https:"))
    }
}

/// A URL sent by a client: `https`, and plain `http` only where the server allows it; not at
/// a private address (an address literal or a `localhost` name) unless the server allows it.
fn url_input(settings: &WebhookSettings) -> impl Fn(&Value) -> Check<WebhookUrl> {
    let allow_http = settings.allow_http;
    let targets = TargetPolicy::of(settings);
    move |value| {
        let url = parsed::<WebhookUrl>(value)?;
        if !url.is_https() && !allow_http {
            return Err(
                "Must be an https URL (this server accepts http with webhooks.allow_http)".into(),
            );
        }
        targets
            .check(url.as_str())
            .map_err(|refused| format!("Must not be a private address: {refused}"))?;
        Ok(url)
    }
}

/// One `events` entry: an event name of `EVENTS`, `*`, or `<group>.*` for a group of `GROUPS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct EventPattern(String);

impl TryFrom<String> for EventPattern {
    type Error = String;

    fn try_from(text: String) -> Check<EventPattern> {
        let known = text == "*"
            || EVENTS.contains(&text.as_str())
            || text
                .strip_suffix(".*")
                .is_some_and(|group| GROUPS.contains(&group));
        if known {
            Ok(EventPattern(text))
        } else {
            Err(format!(
                "Expected an event ({}), * or a group wildcard ({}.*)",
                EVENTS.join(", "),
                GROUPS.join(".*, ")
            ))
        }
    }
}

impl From<EventPattern> for String {
    fn from(pattern: EventPattern) -> String {
        pattern.0
    }
}

/// `events`: a non-empty array of patterns, duplicates dropped.
fn read_events(input: &mut Input, presence: Presence) -> Option<Vec<EventPattern>> {
    let events = input.array("events", presence, MAX_EVENTS, parsed::<EventPattern>)?;
    if events.is_empty() {
        input.issue("events", "Must contain at least one event");
        return None;
    }
    Some(events)
}

#[derive(Clone)]
pub struct WebhookCreate {
    url: WebhookUrl,
    events: Vec<EventPattern>,
}

impl WebhookCreate {
    pub fn from_json(body: Value, settings: &WebhookSettings) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let url = input.required("url", url_input(settings));
        let events = read_events(&mut input, Presence::Required);
        input.finish_with(|| {
            Some(WebhookCreate {
                url: url?,
                events: events?,
            })
        })
    }
}

#[derive(Clone)]
pub struct WebhookUpdate {
    url: Option<WebhookUrl>,
    events: Option<Vec<EventPattern>>,
    status: Option<WebhookStatus>,
}

impl WebhookUpdate {
    pub fn from_json(body: Value, settings: &WebhookSettings) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let update = WebhookUpdate {
            url: input.updatable("url", url_input(settings)),
            events: read_events(&mut input, Presence::Updatable),
            status: input.updatable("status", one_of(WebhookStatus::VALUES)),
        };
        input.finish_update_with(|| Some(update))
    }
}

impl Routed for Webhook {
    type Create = WebhookCreate;
    type Update = WebhookUpdate;
    type Filter = Unfiltered;

    const BY_CREATED: u8 = BY_CREATED;
    const LISTING: Listing = Listing::Plain {
        max_per_project: MAX_PER_PROJECT,
    };
    const ENDPOINTS: Endpoints = Endpoints {
        collection: "/api/v1/projects/{project_id}/webhooks",
        resource: Resource::Webhooks,
        routes: &[
            Standard::List,
            Standard::Create,
            Standard::Get,
            Standard::Update,
            Standard::Delete,
        ],
        create: Body {
            name: "WebhookCreate",
            schema: openapi::create,
            codes: &[],
        },
        update: Body {
            name: "WebhookUpdate",
            schema: openapi::update,
            codes: &[],
        },
        filters: no_filters,
        created: Some(named::<CreatedWebhook>()),
    };

    fn parse_filter(_: &QueryParams) -> ApiResult<Unfiltered> {
        Ok(Unfiltered)
    }

    fn parse_create(body: Value, settings: InputSettings<'_>) -> ApiResult<WebhookCreate> {
        WebhookCreate::from_json(body, settings.webhooks)
    }

    fn parse_update(body: Value, settings: InputSettings<'_>) -> ApiResult<WebhookUpdate> {
        WebhookUpdate::from_json(body, settings.webhooks)
    }

    fn create(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: WebhookCreate,
    ) -> ApiResult<Webhook> {
        let stamp = Stamp::new::<Webhook>(tx);
        let webhook = Webhook {
            id: stamp.id,
            url: input.url,
            events: input.events,
            secret: Secret::generate(),
            status: WebhookStatus::Active,
            failure_count: 0,
            last_triggered_at: None,
            created_at: stamp.now,
            seq: stamp.seq,
        };
        project_owned::insert(tx, scope, actor, &webhook)?;
        Ok(webhook)
    }

    /// Setting `status` to `active` also resets `failure_count` (docs/api/webhooks.md): a client
    /// re-enabling a webhook that failed gives it a fresh start. Disabling it drops its pending
    /// deliveries: a disabled webhook gets no further attempts (docs/api/webhooks.md).
    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &Id<Self>,
        input: WebhookUpdate,
    ) -> ApiResult<Webhook> {
        let before: Webhook = project_owned::get(tx, scope, id)?;
        let mut after = before.clone();
        if let Some(url) = input.url {
            after.url = url;
        }
        if let Some(events) = input.events {
            after.events = events;
        }
        if let Some(status) = input.status {
            after.status = status;
            if status == WebhookStatus::Active {
                after.failure_count = 0;
            }
        }
        project_owned::replace(tx, scope, actor, "updated", &before, &after)?;
        if after.status == WebhookStatus::Disabled {
            outbox::drop_webhook(tx, &scope.org_id, &scope.project_id, &after.id)?;
        }
        Ok(after)
    }

    /// Its delivery history and its pending deliveries go with it (docs/api/webhooks.md).
    fn delete(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &Id<Self>,
    ) -> ApiResult<()> {
        let webhook: Webhook = project_owned::get(tx, scope, id)?;
        outbox::drop_webhook(tx, &scope.org_id, &scope.project_id, &webhook.id)?;
        project_owned::remove_with_children::<Webhook, WebhookDelivery>(
            tx, scope, actor, &webhook, IN_WEBHOOK,
        )
        .map(drop)
    }

    fn created_view(&self) -> impl Serialize {
        CreatedWebhook {
            view: self.view(),
            secret: self.secret.clone(),
        }
    }
}

/// A new secret, valid from this transaction on; the old one is gone with it. Audited as
/// `webhook.secret_rotated`, whose changes are empty: the view has no secret.
pub fn rotate_secret(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    id: &Id<Webhook>,
) -> ApiResult<Secret> {
    let before: Webhook = project_owned::get(tx, scope, id)?;
    let mut after = before.clone();
    after.secret = Secret::generate();
    project_owned::replace(tx, scope, actor, "secret_rotated", &before, &after)?;
    Ok(after.secret)
}

/// The webhook's `RECENT_DELIVERIES` most recent delivery records, newest first.
pub fn recent_deliveries(
    reader: &impl Reader,
    scope: &ProjectScope,
    id: &Id<Webhook>,
) -> ApiResult<Vec<WebhookDelivery>> {
    let webhook: Webhook = project_owned::get(reader, scope, id)?;
    let order = Order {
        tag: IN_WEBHOOK,
        group: webhook.id.as_bytes(),
        descending: true,
    };
    let page = project_owned::list(reader, scope, order, None, RECENT_DELIVERIES, |_| true)?;
    Ok(page.items)
}

/// The OpenAPI rows of webhooks: request bodies.
mod openapi {
    use utoipa::openapi::schema::{ObjectBuilder, Schema};

    use super::{EVENTS, GROUPS, URL_MAX_CHARS, WebhookStatus};
    use crate::schema::*;

    /// An https URL of a webhook receiver (docs/api/webhooks.md): DNS labels whose last starts with a
    /// letter (a numeric one makes the WHATWG parser read an IPv4 address), a port, then anything but
    /// whitespace, control characters and `\`. IP-address hosts, which the server also takes, are
    /// left out of the pattern.
    fn webhook_url() -> ObjectBuilder {
        let label = "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?";
        let last = "[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?";
        let port =
            "0*([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
        let rest = format!("[^\\\\{WHITESPACE}\\u0000-\\u001f\\u007f-\\u009f]");
        string()
            .pattern(Some(format!(
                "^[Hh][Tt][Tt][Pp][Ss]://({label}\\.)*{last}(:({port})?)?([/?#]{rest}*)?$"
            )))
            .max_length(Some(URL_MAX_CHARS))
    }

    fn event_pattern() -> ObjectBuilder {
        let mut patterns: Vec<String> = vec!["*".into()];
        patterns.extend(EVENTS.iter().map(|e| e.to_string()));
        patterns.extend(GROUPS.iter().map(|g| format!("{g}.*")));
        string().enum_values(Some(patterns))
    }

    pub fn create() -> Schema {
        create_body(
            vec![
                prop("url", webhook_url()),
                prop("events", array(event_pattern(), 1, 50)),
            ],
            &["url", "events"],
        )
        .into()
    }

    pub fn update() -> Schema {
        patch_body(vec![
            prop("url", webhook_url()),
            prop("events", array(event_pattern(), 1, 50)),
            prop("status", wire(WebhookStatus::VALUES)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::validate::assert_string_newtype;

    fn url(text: &str) -> Check<WebhookUrl> {
        WebhookUrl::try_from(text.to_string())
    }

    #[test]
    fn urls_must_be_plain_absolute_http_or_https() {
        for good in [
            "https://example.com",
            "https://example.com/hooks/rogeriq?x=1",
            "http://localhost:3000/hook",
            "HTTPS://Example.com/",
            "https://127.0.0.1:8443/h",
            "https://[::1]/h",
            "https://bücher.example/h",
        ] {
            assert!(url(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "example.com/hook",
            "/hooks",
            "ftp://example.com",
            "mailto:a@example.com",
            "https://",
            "https:example.com",
            "https:/example.com",
            "https:///example.com",
            "https://user:pw@example.com",
            "https://user@example.com",
            "https://:pw@example.com",
            "https://exa mple.com",
            " https://example.com",
            "https://example.com/\n",
            "https:\\\\example.com",
            "https://example.com:99999",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
        let longest = format!("https://example.com/{}", "a".repeat(URL_MAX_CHARS - 20));
        assert_eq!(longest.chars().count(), URL_MAX_CHARS);
        assert!(url(&longest).is_ok());
        assert!(url(&format!("{longest}a")).is_err());
    }

    #[test]
    fn http_and_private_targets_need_their_settings() {
        let mut settings = Settings::default().webhooks;
        let check = |settings: &WebhookSettings, url: &str| url_input(settings)(&Value::from(url));
        assert!(check(&settings, "https://example.com").unwrap().is_https());
        assert!(check(&settings, "http://example.com").is_err());
        let refused = check(&settings, "https://127.1:8443/h").unwrap_err();
        assert!(
            refused.starts_with("Must not be a private address: 127.0.0.1 is a loopback"),
            "{refused}"
        );
        settings.allow_http = true;
        assert!(check(&settings, "http://example.com").is_ok());
        assert!(check(&settings, "ftp://example.com").is_err());
        assert!(check(&settings, "http://localhost:3000/h").is_err());
        settings.allow_private_targets = true;
        assert!(check(&settings, "http://localhost:3000/h").is_ok());
    }

    #[test]
    fn event_patterns() {
        for good in [
            "*",
            "conversation.*",
            "form.*",
            "message.created",
            "agent.action_executed",
        ] {
            assert!(EventPattern::try_from(good.to_string()).is_ok(), "{good}");
        }
        for bad in [
            "",
            "webhook.test",
            "webhook.*",
            "conversation",
            "conversation.",
            "*.created",
            "Conversation.created",
            "conversation.created ",
            ".*",
        ] {
            assert!(EventPattern::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_event_is_in_a_group_and_every_group_has_events() {
        for event in EVENTS {
            let (group, _) = event.split_once('.').unwrap();
            assert!(GROUPS.contains(&group), "{event}");
        }
        for group in GROUPS {
            assert!(EVENTS.iter().any(|e| e.starts_with(&format!("{group}."))));
        }
    }

    #[test]
    fn newtypes_encode_as_their_strings() {
        assert_string_newtype::<WebhookUrl>("https://example.com/h", "ftp://example.com");
        assert_string_newtype::<EventPattern>("contact.*", "contact.deleted");
    }

    #[test]
    fn secrets_are_whsec_and_32_base64url_characters() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b);
        let random = a.0.strip_prefix("whsec_").unwrap();
        assert_eq!(random.len(), 32);
        assert!(
            random
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert!(!format!("{a:?}").contains(random));
        assert_eq!(serde_json::to_value(&a).unwrap(), Value::from(a.0.clone()));
    }
}
