//! The field names of the wire objects of the OpenAPI document, in the order the server renders
//! them: one list per object, shared by the area tests and the SDK compatibility walk.

pub const CONVERSATION_FIELDS: &[&str] = &[
    "id",
    "project_id",
    "contact_id",
    "subject",
    "status",
    "priority",
    "channel",
    "assigned_to",
    "tags",
    "ai_resolved",
    "created_at",
    "updated_at",
];

pub const MESSAGE_FIELDS: &[&str] = &[
    "id",
    "conversation_id",
    "sender_type",
    "sender_id",
    "content",
    "content_type",
    "is_internal",
    "created_at",
];

pub const CONTACT_FIELDS: &[&str] = &[
    "id",
    "project_id",
    "email",
    "name",
    "phone",
    "external_id",
    "company",
    "job_title",
    "metadata",
    "last_seen_at",
    "created_at",
];

pub const ARTICLE_FIELDS: &[&str] = &[
    "id",
    "project_id",
    "title",
    "slug",
    "content",
    "category",
    "status",
    "is_public",
    "view_count",
    "helpful_count",
    "not_helpful_count",
    "ai_generated",
    "created_at",
    "updated_at",
];

pub const WIDGET_FIELDS: &[&str] = &[
    "project_id",
    "enabled",
    "position",
    "color",
    "welcome_message",
    "show_branding",
    "theme",
    "locale",
];

pub const STATUS_FIELDS: &[&str] = &[
    "enabled",
    "mode",
    "model",
    "domain",
    "has_byom_key",
    "usage_this_month",
];

pub const CONFIG_FIELDS: &[&str] = &[
    "project_name",
    "agent_mode",
    "ai_model",
    "domain",
    "has_byom_key",
    "settings",
];

pub const RESPOND_FIELDS: &[&str] = &[
    "content",
    "confidence",
    "mode",
    "effective_mode",
    "message_created",
    "message_id",
    "sources",
    "usage",
];

pub const INTEGRATION_FIELDS: &[&str] = &[
    "id",
    "provider",
    "status",
    "display_name",
    "setup_type",
    "health_status",
    "sidebar_enabled",
    "last_synced_at",
    "error_message",
    "created_at",
    "updated_at",
    "settings",
    "action_permissions",
];

pub const CATALOG_FIELDS: &[&str] = &[
    "provider",
    "name",
    "category",
    "description",
    "setup_type",
    "status",
    "installed",
    "integration",
];

pub const WEBHOOK_FIELDS: &[&str] = &[
    "id",
    "url",
    "events",
    "status",
    "failure_count",
    "last_triggered_at",
    "created_at",
];

pub const DELIVERY_FIELDS: &[&str] = &[
    "id",
    "event",
    "status_code",
    "duration_ms",
    "attempt",
    "status",
    "created_at",
];

/// the OpenAPI document's three, and why nothing was delivered (docs/webhooks.md).
pub const TEST_RESULT_FIELDS: &[&str] = &[
    "delivered",
    "status_code",
    "duration_ms",
    "error",
    "message",
];

pub const FORM_FIELDS: &[&str] = &[
    "id",
    "project_id",
    "name",
    "slug",
    "fields",
    "success_action",
    "success_message",
    "redirect_url",
    "allowed_origins",
    "rate_limit_per_ip",
    "rate_limit_window_seconds",
    "public_api",
    "submit_button_label",
    "submit_button_align",
    "submit_button_color",
    "show_title",
    "logo_url",
    "archived_at",
    "created_at",
    "updated_at",
];

pub const SUBMISSION_FIELDS: &[&str] = &["id", "form_id", "payload", "submitted_at", "ip_hash"];

pub const BEACON_FIELDS: &[&str] = &[
    "id",
    "project_id",
    "form_id",
    "docs_site_id",
    "position",
    "primary_color",
    "button_label",
    "button_icon",
    "custom_svg",
    "greeting_title",
    "greeting_text",
    "allowed_origins",
    "ai_agent_enabled",
    "messages_enabled",
    "chat_enabled",
    "settings",
    "archived_at",
    "created_at",
];

pub const PROJECT_FIELDS: &[&str] = &[
    "id",
    "org_id",
    "name",
    "slug",
    "domain",
    "agent_mode",
    "ai_model",
    "created_at",
];

/// FormField, one entry of a form's `fields` (`options` on every field, `[]` unless a choice).
pub const FORMFIELD_FIELDS: &[&str] = &[
    "id",
    "type",
    "label",
    "name",
    "required",
    "placeholder",
    "options",
];

/// A form's public schema (`GET /api/forms/{idOrSlug}/public`): exactly these, no more.
pub const PUBLIC_FORM_FIELDS: &[&str] = &[
    "id",
    "name",
    "fields",
    "success_action",
    "success_message",
    "submit_button_label",
    "submit_button_align",
    "submit_button_color",
];

/// A beacon's public config (`GET /api/beacons/{beaconId}/public`): exactly these, no more.
pub const PUBLIC_BEACON_FIELDS: &[&str] = &[
    "id",
    "position",
    "primary_color",
    "button_label",
    "button_icon",
    "custom_svg",
    "greeting_title",
    "greeting_text",
    "form",
];
