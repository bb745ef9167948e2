//! Integrations (docs/api/integrations.md and the OpenAPI document): a built-in catalog of
//! providers, and a project's installations of them. Connecting a provider needs a human in a
//! browser (OAuth), which this server does not run, so installations are seeded by the admin API
//! (`install`); clients list them, browse the catalog, get the dashboard's install URL, change
//! lifecycle fields and disconnect. A project holds at most one installation per provider, found by
//! its provider through a look-up entry.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::codec::Record;
use crate::error::{ApiError, ApiResult, ErrorCode, Issue};
use crate::ids::ProjectId;
use crate::org_owned::audit::Actor;
use crate::project_owned::Stamp;
use crate::project_owned::{self, IndexEntry, Kind, Order, ProjectScope};
use crate::query::{QueryParams, enum_param, lowercase_param};
use crate::store::{Reader, Tx};
use crate::timestamp::Timestamp;
use crate::validate::wire_enum;
use crate::validate::{Check, Input, Patch, SHORT_TEXT_MAX, boolean, object, one_of, trimmed};

pub const BY_CREATED: u8 = 0x50;
/// `len ++ provider ++ seq ++ id`: a project's installation of a provider (at most one).
pub const BY_PROVIDER: u8 = 0x51;

/// The largest `settings` or `action_permissions` object, in bytes of JSON.
pub const MAX_OBJECT_BYTES: usize = 16 * 1024;

/// A provider the server knows (docs/api/integrations.md).
#[derive(Debug)]
pub struct Provider {
    pub provider: &'static str,
    pub name: &'static str,
    pub category: &'static str,
    pub description: &'static str,
    pub setup_type: &'static str,
}

/// The catalog, in the order it is listed.
pub const CATALOG: &[Provider] = &[
    Provider {
        provider: "slack",
        name: "Slack",
        category: "messaging",
        description: "Get conversation alerts in Slack channels and reply to customers from \
                      Slack threads.",
        setup_type: "oauth",
    },
    Provider {
        provider: "shopify",
        name: "Shopify",
        category: "commerce",
        description: "See a customer's Shopify orders and shipping status beside their \
                      conversations.",
        setup_type: "oauth",
    },
    Provider {
        provider: "stripe",
        name: "Stripe",
        category: "commerce",
        description: "See a customer's Stripe subscriptions, invoices and payments beside their \
                      conversations.",
        setup_type: "oauth",
    },
    Provider {
        provider: "linear",
        name: "Linear",
        category: "engineering",
        description: "Create Linear issues from conversations and follow their progress.",
        setup_type: "oauth",
    },
    Provider {
        provider: "github",
        name: "GitHub",
        category: "engineering",
        description: "Create GitHub issues from conversations and link them to customer reports.",
        setup_type: "oauth",
    },
    Provider {
        provider: "discord",
        name: "Discord",
        category: "messaging",
        description: "Answer support questions asked in a Discord server.",
        setup_type: "oauth",
    },
];

/// The catalog's provider named `name` (exactly, as in paths), else 404 `RESOURCE_NOT_FOUND`.
pub fn provider(name: &str) -> ApiResult<&'static Provider> {
    CATALOG.iter().find(|p| p.provider == name).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("Unknown integration provider '{name}'"),
        )
    })
}

wire_enum! {
    pub enum IntegrationStatus {
        Active = "active",
        Paused = "paused",
        Disconnected = "disconnected",
        Error = "error",
    }
}

impl IntegrationStatus {
    /// Health follows the status: only a connection that runs is checked.
    fn health(self) -> &'static str {
        match self {
            IntegrationStatus::Active => "healthy",
            IntegrationStatus::Paused | IntegrationStatus::Disconnected => "unknown",
            IntegrationStatus::Error => "unhealthy",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Integration {
    pub id: String,
    pub provider: String,
    pub status: IntegrationStatus,
    pub display_name: Option<String>,
    /// Copied from the catalog at install time.
    pub setup_type: String,
    pub sidebar_enabled: bool,
    /// JSON text of an object; postcard cannot hold a free-form JSON value.
    pub settings: String,
    /// JSON text of an object.
    pub action_permissions: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub seq: u64,
}

impl Record for Integration {
    const NAME: &'static str = "integration";
}

/// The wire form: the OpenAPI document, plus `settings` and `action_permissions` (Integration is an
/// open object), so that what the lifecycle PATCH sets can be read back.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntegrationView {
    pub id: String,
    pub provider: String,
    pub status: IntegrationStatus,
    pub display_name: Option<String>,
    pub setup_type: String,
    pub health_status: &'static str,
    pub sidebar_enabled: bool,
    /// No sync runs locally, so these are always null.
    pub last_synced_at: Option<Timestamp>,
    pub error_message: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub settings: Value,
    pub action_permissions: Value,
}

impl From<&Integration> for IntegrationView {
    fn from(integration: &Integration) -> IntegrationView {
        IntegrationView {
            id: integration.id.clone(),
            provider: integration.provider.clone(),
            status: integration.status,
            display_name: integration.display_name.clone(),
            setup_type: integration.setup_type.clone(),
            health_status: integration.status.health(),
            sidebar_enabled: integration.sidebar_enabled,
            last_synced_at: None,
            error_message: None,
            created_at: integration.created_at,
            updated_at: integration.updated_at,
            settings: json_object(&integration.settings),
            action_permissions: json_object(&integration.action_permissions),
        }
    }
}

impl Kind for Integration {
    const TAG: u8 = 0x07;
    const INDEX_TAGS: &'static [u8] = &[BY_CREATED, BY_PROVIDER];
    const PLURAL: &'static str = "integrations";
    const SINGULAR: &'static str = "integration";
    const ID_PREFIX: &'static str = "int_";
    const NOT_FOUND: ErrorCode = ErrorCode::ResourceNotFound;
    type View = IntegrationView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        Ok(vec![
            IndexEntry::order(BY_CREATED, b"", self.seq, &self.id),
            IndexEntry::lookup(BY_PROVIDER, &self.provider, self.seq, &self.id),
        ])
    }
}

impl Integration {
    /// Installed means connected, running or paused; a disconnected row is kept for its history
    /// but counts as not installed.
    fn is_installed(&self) -> bool {
        self.status != IntegrationStatus::Disconnected
    }
}

fn json_object(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::Object(Map::new()))
}

fn object_map(text: &str) -> Map<String, Value> {
    match json_object(text) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A JSON object of at most `MAX_OBJECT_BYTES` bytes of JSON, kept as sent.
fn capped_object(value: &Value) -> Check<Map<String, Value>> {
    let map = object(value)?;
    within_cap(&map)?;
    Ok(map)
}

fn within_cap(map: &Map<String, Value>) -> Check<()> {
    let bytes = serde_json::to_vec(map).map_or(usize::MAX, |json| json.len());
    if bytes > MAX_OBJECT_BYTES {
        return Err(format!("Must be at most {MAX_OBJECT_BYTES} bytes of JSON"));
    }
    Ok(())
}

/// Every installation of the project (disconnected ones included), oldest first. A project
/// holds at most one per catalog provider, so the list is short.
pub fn list(reader: &impl Reader, scope: &ProjectScope) -> ApiResult<Vec<Integration>> {
    let order = Order {
        tag: BY_CREATED,
        group: b"",
        descending: false,
    };
    Ok(project_owned::list::<Integration>(reader, scope, order, None, usize::MAX, |_| true)?.items)
}

/// The project's row for `provider`, whatever its status.
fn find(
    reader: &impl Reader,
    scope: &ProjectScope,
    provider: &Provider,
) -> ApiResult<Option<Integration>> {
    project_owned::find_by(reader, scope, BY_PROVIDER, provider.provider)
}

/// Whether a catalog entry is listed as installed (`status` filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Installed,
    Available,
}

/// One provider as the catalog lists it for a project (docs/api/integrations.md).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogEntry {
    pub provider: &'static str,
    pub name: &'static str,
    pub category: &'static str,
    pub description: &'static str,
    pub setup_type: &'static str,
    pub status: &'static str,
    pub installed: bool,
    /// The project's row for this provider, a disconnected one included; null if never
    /// installed.
    pub integration: Option<IntegrationView>,
}

fn catalog_entry(provider: &'static Provider, row: Option<&Integration>) -> CatalogEntry {
    let installed = row.is_some_and(Integration::is_installed);
    CatalogEntry {
        provider: provider.provider,
        name: provider.name,
        category: provider.category,
        description: provider.description,
        setup_type: provider.setup_type,
        status: if installed { "installed" } else { "available" },
        installed,
        integration: row.map(Integration::view),
    }
}

/// The filters of `GET …/integrations/catalog`; text held in lowercase.
#[derive(Debug, Default)]
pub struct CatalogFilter {
    /// Substring of the provider, name or description.
    pub q: Option<String>,
    /// A category, matched exactly. Categories are open (RogerIQ's catalog has more than this
    /// server's), so an unknown one matches nothing rather than being refused.
    pub category: Option<String>,
    pub status: Option<Availability>,
}

impl CatalogFilter {
    pub fn from_query(query: &QueryParams) -> ApiResult<Self> {
        Ok(CatalogFilter {
            q: lowercase_param(query, "q")?,
            category: lowercase_param(query, "category")?,
            status: enum_param(
                query,
                "status",
                &[
                    ("installed", Availability::Installed),
                    ("available", Availability::Available),
                ],
            )?,
        })
    }

    fn matches(&self, entry: &CatalogEntry) -> bool {
        self.q.as_ref().is_none_or(|q| {
            [entry.provider, entry.name, entry.description]
                .iter()
                .any(|text| text.to_lowercase().contains(q.as_str()))
        }) && self.category.as_ref().is_none_or(|c| entry.category == c)
            && self
                .status
                .is_none_or(|s| entry.installed == (s == Availability::Installed))
    }
}

/// The catalog for a project, in catalog order, filtered.
pub fn catalog(
    reader: &impl Reader,
    scope: &ProjectScope,
    filter: &CatalogFilter,
) -> ApiResult<Vec<CatalogEntry>> {
    let rows = list(reader, scope)?;
    Ok(CATALOG
        .iter()
        .map(|p| catalog_entry(p, rows.iter().find(|r| r.provider == p.provider)))
        .filter(|entry| filter.matches(entry))
        .collect())
}

/// One provider's catalog entry for a project; unknown provider → 404.
pub fn catalog_item(
    reader: &impl Reader,
    scope: &ProjectScope,
    name: &str,
) -> ApiResult<CatalogEntry> {
    let provider = provider(name)?;
    Ok(catalog_entry(
        provider,
        find(reader, scope, provider)?.as_ref(),
    ))
}

/// the OpenAPI document InstallUrlResponse.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstallUrl {
    pub provider: &'static str,
    pub install_url: String,
    pub setup_type: &'static str,
    pub message: String,
}

/// The dashboard page that connects `name` to a project: the dashboard base (without a
/// trailing slash), `/dashboard/projects/{projectId}/integrations/{provider}`.
pub fn install_url(
    dashboard_url: &str,
    project_id: &ProjectId,
    name: &str,
) -> ApiResult<InstallUrl> {
    let provider = provider(name)?;
    let base = dashboard_url.trim_end_matches('/');
    Ok(InstallUrl {
        provider: provider.provider,
        install_url: format!(
            "{base}/dashboard/projects/{project_id}/integrations/{}",
            provider.provider
        ),
        setup_type: provider.setup_type,
        message: format!(
            "Open this URL in a browser to connect {} to this project.",
            provider.name
        ),
    })
}

/// The writable fields of the lifecycle PATCH, each left out or set; `display_name` can also
/// be cleared.
#[derive(Clone)]
pub struct LifecycleUpdate {
    status: Option<IntegrationStatus>,
    display_name: Patch<String>,
    sidebar_enabled: Option<bool>,
    settings: Option<Map<String, Value>>,
    action_permissions: Option<Map<String, Value>>,
}

/// The statuses a client may set; `disconnected` and `error` are the server's to set.
const SETTABLE: &[(&str, IntegrationStatus)] = &[
    ("active", IntegrationStatus::Active),
    ("paused", IntegrationStatus::Paused),
];

fn settable_status(value: &Value) -> Check<IntegrationStatus> {
    one_of(SETTABLE)(value).map_err(|message| {
        if one_of(IntegrationStatus::VALUES)(value).is_ok() {
            "Set by the server: clients may set only active or paused (disconnect with DELETE)"
                .to_string()
        } else {
            message
        }
    })
}

fn display_name(value: &Value) -> Check<String> {
    trimmed(1, SHORT_TEXT_MAX)(value)
}

impl LifecycleUpdate {
    pub fn from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let update = LifecycleUpdate {
            status: input.updatable("status", settable_status),
            display_name: input.settable("display_name", display_name),
            sidebar_enabled: input.updatable("sidebar_enabled", boolean),
            settings: input.updatable("settings", capped_object),
            action_permissions: input.updatable("action_permissions", capped_object),
        };
        input.finish_update_with(|| Some(update))
    }

    /// Settings merge shallowly (top-level keys replaced); action permissions are replaced.
    fn apply(self, integration: &mut Integration) -> ApiResult<()> {
        if let Some(status) = self.status {
            integration.status = status;
        }
        if let Some(name) = self.display_name.into_change() {
            integration.display_name = name;
        }
        if let Some(enabled) = self.sidebar_enabled {
            integration.sidebar_enabled = enabled;
        }
        if let Some(incoming) = self.settings {
            let mut merged = object_map(&integration.settings);
            merged.extend(incoming);
            within_cap(&merged).map_err(|message| {
                ApiError::invalid(vec![Issue::new(
                    "settings",
                    format!("Merged with the stored settings: {message}"),
                )])
            })?;
            integration.settings = Value::Object(merged).to_string();
        }
        if let Some(permissions) = self.action_permissions {
            integration.action_permissions = Value::Object(permissions).to_string();
        }
        Ok(())
    }
}

/// Changes an installed integration's lifecycle fields, audited `integration.updated`. A
/// catalog provider that is not installed in the project answers `None` (docs/api/integrations.md).
pub fn update_lifecycle(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    name: &str,
    update: LifecycleUpdate,
) -> ApiResult<Option<Integration>> {
    let provider = provider(name)?;
    let Some(before) = find(tx, scope, provider)?.filter(Integration::is_installed) else {
        return Ok(None);
    };
    let mut after = before.clone();
    update.apply(&mut after)?;
    after.updated_at = tx.now;
    project_owned::replace(tx, scope, actor, "updated", &before, &after)?;
    Ok(Some(after))
}

/// Disconnects: status `disconnected`, settings (what a connection stores of the provider)
/// cleared, the row kept so that it still lists. Audited `integration.disconnected`. Not
/// installed (never, or already disconnected) → 404.
pub fn disconnect(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    name: &str,
) -> ApiResult<Integration> {
    let provider = provider(name)?;
    let before = find(tx, scope, provider)?
        .filter(Integration::is_installed)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("The integration '{name}' is not installed in this project"),
            )
        })?;
    let mut after = before.clone();
    after.status = IntegrationStatus::Disconnected;
    after.settings = "{}".into();
    after.updated_at = tx.now;
    project_owned::replace(tx, scope, actor, "disconnected", &before, &after)?;
    Ok(after)
}

/// The admin install body: both fields optional, the whole body too.
#[derive(Default, Clone)]
pub struct InstallInput {
    display_name: Option<String>,
    settings: Option<Map<String, Value>>,
}

impl InstallInput {
    /// No body, or a `null` one, installs with defaults (docs/api/README.md).
    pub fn from_json(body: Option<Value>) -> ApiResult<Self> {
        let Some(body) = body.filter(|b| !b.is_null()) else {
            return Ok(InstallInput::default());
        };
        let mut input = Input::new(body)?;
        let display_name = input.optional("display_name", display_name);
        let settings = input.optional("settings", capped_object);
        input.finish_with(|| {
            Some(InstallInput {
                display_name,
                settings,
            })
        })
    }
}

/// Installs a catalog provider in a project, standing in for the OAuth flow: a new row
/// (`integration.created`), or an existing one made active again (`integration.installed`),
/// taking the given display name and settings (replaced, as by a fresh connection).
pub fn install(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    name: &str,
    input: InstallInput,
) -> ApiResult<Integration> {
    let provider = provider(name)?;
    let settings = input.settings.map(|s| Value::Object(s).to_string());
    if let Some(before) = find(tx, scope, provider)? {
        let mut after = before.clone();
        after.status = IntegrationStatus::Active;
        if let Some(display_name) = input.display_name {
            after.display_name = Some(display_name);
        }
        if let Some(settings) = settings {
            after.settings = settings;
        }
        after.updated_at = tx.now;
        project_owned::replace(tx, scope, actor, "installed", &before, &after)?;
        return Ok(after);
    }
    let stamp = Stamp::new::<Integration>(tx);
    let integration = Integration {
        id: stamp.id,
        provider: provider.provider.to_string(),
        status: IntegrationStatus::Active,
        display_name: input.display_name,
        setup_type: provider.setup_type.to_string(),
        sidebar_enabled: true,
        settings: settings.unwrap_or_else(|| "{}".into()),
        action_permissions: "{}".into(),
        created_at: stamp.now,
        updated_at: stamp.now,
        seq: stamp.seq,
    };
    project_owned::insert(tx, scope, actor, &integration)?;
    Ok(integration)
}

/// The OpenAPI schemas of the lifecycle update and the admin install (`api::openapi`).
pub mod openapi {
    use utoipa::openapi::schema::Schema;

    use super::MAX_OBJECT_BYTES;
    use crate::schema::*;
    use crate::validate::SHORT_TEXT_MAX;

    pub fn lifecycle() -> Schema {
        patch_body(vec![
            prop("status", names(&["active", "paused"])),
            prop("display_name", trimmed(SHORT_TEXT_MAX)),
            prop("sidebar_enabled", boolean()),
            prop("settings", capped_object(MAX_OBJECT_BYTES)),
            prop("action_permissions", capped_object(MAX_OBJECT_BYTES)),
        ])
    }

    pub fn install() -> Schema {
        optional_body(vec![
            prop("display_name", trimmed(SHORT_TEXT_MAX)),
            prop("settings", capped_object(MAX_OBJECT_BYTES)),
        ])
        .into()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(provider: &str, status: IntegrationStatus) -> Integration {
        Integration {
            id: "int_abcdefghijkl".into(),
            provider: provider.into(),
            status,
            display_name: None,
            setup_type: "oauth".into(),
            sidebar_enabled: true,
            settings: r##"{"channel":"#support"}"##.into(),
            action_permissions: "{}".into(),
            created_at: Timestamp::from_unix(1_700_000_000),
            updated_at: Timestamp::from_unix(1_700_000_000),
            seq: 1,
        }
    }

    #[test]
    fn catalog_has_the_six_documented_providers() {
        let names: Vec<&str> = CATALOG.iter().map(|p| p.provider).collect();
        assert_eq!(
            names,
            ["slack", "shopify", "stripe", "linear", "github", "discord"]
        );
        for p in CATALOG {
            let expected = match p.provider {
                "slack" | "discord" => "messaging",
                "shopify" | "stripe" => "commerce",
                _ => "engineering",
            };
            assert_eq!(p.category, expected, "{}", p.provider);
            assert_eq!(p.setup_type, "oauth");
            assert!(provider(p.provider).is_ok());
        }
        for unknown in ["catalog", "Slack", "", "jira"] {
            assert_eq!(
                provider(unknown).unwrap_err().code(),
                ErrorCode::ResourceNotFound
            );
        }
    }

    #[test]
    fn install_urls_point_at_the_dashboard() {
        let project = ProjectId::parse("prj_abcdefghijkl").unwrap();
        for base in ["https://dash.example.com", "https://dash.example.com/"] {
            let url = install_url(base, &project, "github").unwrap();
            assert_eq!(
                url.install_url,
                "https://dash.example.com/dashboard/projects/prj_abcdefghijkl/integrations/github"
            );
            assert_eq!((url.provider, url.setup_type), ("github", "oauth"));
            assert!(url.message.contains("GitHub"), "{}", url.message);
        }
        assert!(install_url("https://x.io", &project, "nope").is_err());
    }

    #[test]
    fn health_follows_status() {
        let health = |s| row("slack", s).view().health_status;
        assert_eq!(health(IntegrationStatus::Active), "healthy");
        assert_eq!(health(IntegrationStatus::Paused), "unknown");
        assert_eq!(health(IntegrationStatus::Disconnected), "unknown");
        assert_eq!(health(IntegrationStatus::Error), "unhealthy");
    }

    #[test]
    fn catalog_filters() {
        let slack = row("slack", IntegrationStatus::Paused);
        let stripe = row("stripe", IntegrationStatus::Disconnected);
        let entries: Vec<CatalogEntry> = CATALOG
            .iter()
            .map(|p| {
                catalog_entry(
                    p,
                    [&slack, &stripe]
                        .into_iter()
                        .find(|r| r.provider == p.provider),
                )
            })
            .collect();
        let matching = |filter: CatalogFilter| -> Vec<&str> {
            entries
                .iter()
                .filter(|e| filter.matches(e))
                .map(|e| e.provider)
                .collect()
        };
        let q = |text: &str| CatalogFilter {
            q: Some(text.to_lowercase()),
            ..CatalogFilter::default()
        };
        assert_eq!(matching(q("GIT")), ["github"]);
        assert_eq!(matching(q("issues")), ["linear", "github"]);
        assert_eq!(matching(q("zzz")), Vec::<&str>::new());
        let category = |c: &str| CatalogFilter {
            category: Some(c.into()),
            ..CatalogFilter::default()
        };
        assert_eq!(matching(category("messaging")), ["slack", "discord"]);
        assert_eq!(matching(category("crm")), Vec::<&str>::new());
        let status = |s| CatalogFilter {
            status: Some(s),
            ..CatalogFilter::default()
        };
        // Paused is installed; disconnected is available again, its row still shown.
        assert_eq!(matching(status(Availability::Installed)), ["slack"]);
        assert_eq!(matching(status(Availability::Available)).len(), 5);
        let stripe_entry = entries.iter().find(|e| e.provider == "stripe").unwrap();
        assert_eq!(stripe_entry.status, "available");
        assert!(stripe_entry.integration.is_some());
    }

    #[test]
    fn lifecycle_status_is_active_or_paused() {
        assert_eq!(
            settable_status(&json!("paused")),
            Ok(IntegrationStatus::Paused)
        );
        assert!(
            settable_status(&json!("disconnected"))
                .unwrap_err()
                .contains("server")
        );
        assert!(
            settable_status(&json!("error"))
                .unwrap_err()
                .contains("server")
        );
        assert_eq!(
            settable_status(&json!("on")).unwrap_err(),
            "Expected one of: active, paused"
        );
    }

    #[test]
    fn settings_merge_and_stay_capped() {
        let mut integration = row("slack", IntegrationStatus::Active);
        let update = LifecycleUpdate::from_json(json!({"settings": {"mode": "all"}})).unwrap();
        update.apply(&mut integration).unwrap();
        assert_eq!(
            json_object(&integration.settings),
            json!({"channel": "#support", "mode": "all"})
        );
        let half = "x".repeat(MAX_OBJECT_BYTES / 2);
        let update = LifecycleUpdate::from_json(json!({"settings": {"a": half}})).unwrap();
        update.apply(&mut integration).unwrap();
        let update = LifecycleUpdate::from_json(json!({"settings": {"b": half}})).unwrap();
        let err = update.apply(&mut integration).unwrap_err();
        assert_eq!(err.issues()[0].path, "settings");
        let too_big = json!({"action_permissions": {"a": "x".repeat(MAX_OBJECT_BYTES)}});
        assert!(LifecycleUpdate::from_json(too_big).is_err());
    }
}
