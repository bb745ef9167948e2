//! The widget config (docs/api/README.md and the OpenAPI document): one per project, created
//! implicitly with the documented defaults. It is open-ended: keys other than the documented fields
//! are stored verbatim and returned with them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::codec::Record;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ids::ProjectId;
use crate::org_owned::audit::Actor;
use crate::project_owned::singleton::{self, ProjectConfig, Singleton};
use crate::project_owned::values::HexColor;
use crate::project_owned::{IndexEntry, Kind, ProjectScope};
use crate::store::{Reader, Tx};
use crate::validate::wire_enum;
use crate::validate::{Check, Input, LONG_TEXT_MAX, boolean, one_of, parsed, text};
use crate::view::record_view;

wire_enum! {
    pub enum Position {
        BottomRight = "bottom-right",
        BottomLeft = "bottom-left",
    }
}

wire_enum! {
    pub enum Theme {
        Light = "light",
        Dark = "dark",
        Auto = "auto",
    }
}

/// The documented fields; every other key of a PATCH body is an extra key.
const FIELDS: &[&str] = &[
    "enabled",
    "position",
    "color",
    "welcome_message",
    "show_branding",
    "theme",
    "locale",
];

/// Read-only keys that clients send back with a whole record (docs/api/README.md row 18): ignored,
/// never stored as extra keys.
pub const READ_ONLY: &[&str] = &[
    "id",
    "project_id",
    "created_at",
    "updated_at",
    "archived_at",
];

/// An ISO 639-1 language code: two lowercase letters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Locale(String);

impl TryFrom<String> for Locale {
    type Error = String;

    fn try_from(locale: String) -> Check<Locale> {
        if locale.len() == 2 && locale.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(Locale(locale))
        } else {
            Err("Must be a two-letter lowercase language code such as en".into())
        }
    }
}

impl From<Locale> for String {
    fn from(locale: Locale) -> String {
        locale.0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WidgetConfig {
    pub id: String,
    pub project_id: ProjectId,
    pub enabled: bool,
    pub position: Position,
    pub color: HexColor,
    pub welcome_message: String,
    pub show_branding: bool,
    pub theme: Theme,
    pub locale: Locale,
    /// JSON text of the object of extra keys; postcard cannot hold a free-form JSON value.
    pub extra: String,
}

impl Record for WidgetConfig {
    const NAME: &'static str = "widget config";
}

record_view! {
    /// The wire form: the documented fields, then the extra keys.
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct WidgetConfigView from WidgetConfig {
        #[schema(value_type = String)]
        project_id: ProjectId,
        enabled: bool,
        position: Position,
        color: HexColor,
        welcome_message: String,
        show_branding: bool,
        theme: Theme,
        locale: Locale,
        #[serde(flatten)]
        extra: Map<String, Value> = |config| singleton::stored_object(&config.extra),
    }
}

impl Kind for WidgetConfig {
    const TAG: u8 = 0x05;
    const INDEX_TAGS: &'static [u8] = &[];
    const PLURAL: &'static str = "widget_configs";
    const SINGULAR: &'static str = "widget_config";
    const ID_PREFIX: &'static str = "wcfg_";
    const NOT_FOUND: ErrorCode = ErrorCode::ResourceNotFound;
    type View = WidgetConfigView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        Ok(Vec::new())
    }
}

/// The defaults of docs/api/README.md.
impl Singleton for WidgetConfig {
    fn initial(scope: &ProjectScope, id: String) -> WidgetConfig {
        WidgetConfig {
            id,
            project_id: scope.project_id.clone(),
            enabled: true,
            position: Position::BottomRight,
            color: HexColor::brand(),
            welcome_message: "Hi! How can we help?".into(),
            show_branding: true,
            theme: Theme::Light,
            locale: Locale("en".into()),
            extra: "{}".into(),
        }
    }
}

/// A PATCH body: the documented fields that were sent, and the extra keys.
#[derive(Clone)]
pub struct WidgetUpdate {
    enabled: Option<bool>,
    position: Option<Position>,
    color: Option<HexColor>,
    welcome_message: Option<String>,
    show_branding: Option<bool>,
    theme: Option<Theme>,
    locale: Option<Locale>,
    extra: Map<String, Value>,
}

impl WidgetUpdate {
    /// Documented fields are validated and cannot be cleared; extra keys are kept as sent
    /// (`null` removes one; their total size is checked when they merge); read-only keys are
    /// ignored. A body of only read-only keys is `NO_UPDATES`.
    pub fn from_json(body: Value) -> ApiResult<Self> {
        let Value::Object(mut fields) = body else {
            return Err(ApiError::new(
                ErrorCode::BadJson,
                "Request body must be a JSON object",
            ));
        };
        let extra_keys: Vec<String> = fields
            .keys()
            .filter(|k| !FIELDS.contains(&k.as_str()) && !READ_ONLY.contains(&k.as_str()))
            .cloned()
            .collect();
        let mut extra = Map::new();
        for key in extra_keys {
            if let Some(value) = fields.remove(&key) {
                extra.insert(key, value);
            }
        }
        let mut input = Input::new(Value::Object(fields))?;
        let update = WidgetUpdate {
            enabled: input.updatable("enabled", boolean),
            position: input.updatable("position", one_of(Position::VALUES)),
            color: input.updatable("color", parsed::<HexColor>),
            welcome_message: input.updatable("welcome_message", text(LONG_TEXT_MAX)),
            show_branding: input.updatable("show_branding", boolean),
            theme: input.updatable("theme", one_of(Theme::VALUES)),
            locale: input.updatable("locale", parsed::<Locale>),
            extra,
        };
        if update.extra.is_empty() {
            input.finish_update_with(|| Some(update))
        } else {
            input.finish_with(|| Some(update))
        }
    }

    fn apply(self, config: &mut WidgetConfig) -> ApiResult<()> {
        if let Some(enabled) = self.enabled {
            config.enabled = enabled;
        }
        if let Some(position) = self.position {
            config.position = position;
        }
        if let Some(color) = self.color {
            config.color = color;
        }
        if let Some(message) = self.welcome_message {
            config.welcome_message = message;
        }
        if let Some(show) = self.show_branding {
            config.show_branding = show;
        }
        if let Some(theme) = self.theme {
            config.theme = theme;
        }
        if let Some(locale) = self.locale {
            config.locale = locale;
        }
        if !self.extra.is_empty() {
            let mut extra = singleton::stored_object(&config.extra);
            singleton::merge_open_object(&mut extra, self.extra, "")?;
            config.extra = Value::Object(extra).to_string();
        }
        Ok(())
    }
}

/// `GET` answers the stored config or the defaults; `PATCH` changes only the supplied fields,
/// and extra keys merge by top-level key.
impl ProjectConfig for WidgetConfig {
    type Update = WidgetUpdate;
    type View = WidgetConfigView;

    fn parse_update(body: Value) -> ApiResult<WidgetUpdate> {
        WidgetUpdate::from_json(body)
    }

    fn read(reader: &impl Reader, scope: &ProjectScope) -> ApiResult<WidgetConfigView> {
        Ok(singleton::get::<WidgetConfig>(reader, scope)?.view())
    }

    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: WidgetUpdate,
    ) -> ApiResult<WidgetConfigView> {
        Ok(
            singleton::update(tx, scope, actor, |config: &mut WidgetConfig| {
                input.apply(config)
            })?
            .view(),
        )
    }
}

/// The OpenAPI schema of the update body (`api::openapi`).
pub mod openapi {
    use utoipa::openapi::schema::Schema;

    use super::{Position, READ_ONLY, Theme};
    use crate::schema::*;
    use crate::validate::LONG_TEXT_MAX;

    /// The documented fields, plus any other key stored as sent (docs/api/README.md).
    pub fn update() -> Schema {
        let mut schema = create_body(
            vec![
                prop("enabled", boolean()),
                prop("position", wire(Position::VALUES)),
                prop("color", hex_color()),
                prop("welcome_message", text(LONG_TEXT_MAX)),
                prop("show_branding", boolean()),
                prop("theme", wire(Theme::VALUES)),
                prop("locale", string().pattern(Some("^[a-z]{2}$"))),
            ],
            &[],
        )
        .build();
        schema.min_properties = Some(1);
        // Read-only keys are ignored, so a body of only those would change nothing.
        schema.property_names = Some(Box::new(
            string()
                .pattern(Some(format!("^(?!({})$)", READ_ONLY.join("|"))))
                .build()
                .into(),
        ));
        Schema::Object(schema)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::assert_string_newtype;

    #[test]
    fn locale_rules() {
        for good in ["en", "fr", "de"] {
            assert!(Locale::try_from(good.to_string()).is_ok(), "{good}");
        }
        for bad in ["EN", "eng", "e", "", "e1", "en-US"] {
            assert!(Locale::try_from(bad.to_string()).is_err(), "{bad}");
        }
        assert_string_newtype::<Locale>("fr", "FR");
    }

    #[test]
    fn extra_keys_are_split_from_documented_and_read_only_keys() {
        let update = WidgetUpdate::from_json(json!({
            "theme": "dark", "id": "x", "project_id": "prj_x", "hours": {"mon": "9-5"}
        }))
        .unwrap();
        assert_eq!(update.theme, Some(Theme::Dark));
        assert_eq!(
            Value::Object(update.extra),
            json!({"hours": {"mon": "9-5"}})
        );
    }

    #[test]
    fn only_read_only_keys_is_no_updates() {
        let err = WidgetUpdate::from_json(json!({"project_id": "prj_x", "created_at": "x"}))
            .err()
            .unwrap();
        assert_eq!(err.code(), ErrorCode::NoUpdates);
        // An extra key alone is an update.
        assert!(WidgetUpdate::from_json(json!({"custom_css": "a{}"})).is_ok());
    }
}
