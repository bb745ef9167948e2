//! Beacons (docs/api/forms-and-beacons.md and the OpenAPI document): floating launchers that open a
//! form of the same project.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::scope::Resource;
use crate::codec::Record;
use crate::error::{ApiError, ApiResult, ErrorCode, Issue};
use crate::ids::ProjectId;
use crate::org_owned::audit::Actor;
use crate::project_owned::form::{Form, PublicFormView};
use crate::project_owned::routed::Unfiltered;
use crate::project_owned::routed::{Body, Endpoints, Standard, no_filters};
use crate::project_owned::values::{HexColor, Origin, origin_allowed, read_origins};
use crate::project_owned::{
    self, Archivable, IndexEntry, InputSettings, Kind, Listing, ProjectScope, Routed,
};
use crate::project_owned::{Id, Stamp};
use crate::query::QueryParams;
use crate::store::{Reader, Tx};
use crate::timestamp::Timestamp;
use crate::validate::wire_enum;
use crate::validate::{
    Check, Input, LONG_TEXT_MAX, Patch, SHORT_TEXT_MAX, boolean, object, one_of, parsed, text,
    trimmed,
};
use crate::view::record_view;

pub const BY_CREATED: u8 = 0x57;

/// The most a beacon's `settings` object may take, as JSON text.
const SETTINGS_MAX_BYTES: usize = 16 * 1024;

wire_enum! {
    pub enum Position {
        BottomRight = "bottom-right",
        BottomLeft = "bottom-left",
    }
}

wire_enum! {
    pub enum ButtonIcon {
        Chat = "chat",
        Mail = "mail",
        Help = "help",
        CustomSvg = "custom_svg",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Beacon {
    pub id: String,
    pub project_id: ProjectId,
    pub form_id: String,
    pub docs_site_id: Option<String>,
    pub position: Position,
    pub primary_color: HexColor,
    pub button_label: String,
    pub button_icon: ButtonIcon,
    pub custom_svg: Option<String>,
    pub greeting_title: String,
    pub greeting_text: String,
    pub allowed_origins: Vec<Origin>,
    pub ai_agent_enabled: bool,
    pub messages_enabled: bool,
    pub chat_enabled: bool,
    /// JSON text of the settings object; postcard cannot hold a free-form JSON value.
    pub settings: String,
    pub archived_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub seq: u64,
}

impl Record for Beacon {
    const NAME: &'static str = "beacon";
}

record_view! {
    /// BeaconRecord, field for field as the OpenAPI document (no `updated_at`).
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct BeaconView from Beacon {
        id: String,
        #[schema(value_type = String)]
        project_id: ProjectId,
        form_id: String,
        docs_site_id: Option<String>,
        position: Position,
        primary_color: HexColor,
        button_label: String,
        button_icon: ButtonIcon,
        custom_svg: Option<String>,
        greeting_title: String,
        greeting_text: String,
        allowed_origins: Vec<Origin>,
        ai_agent_enabled: bool,
        messages_enabled: bool,
        chat_enabled: bool,
        settings: Value = |beacon| {
            serde_json::from_str(&beacon.settings).unwrap_or_else(|_| Value::Object(Map::new()))
        },
        archived_at: Option<Timestamp>,
        created_at: Timestamp,
    }
}

/// A beacon's public config (`GET /api/beacons/{beaconId}/public`): its appearance and its form's
/// public schema, `null` when that form is not served publicly (archived, or `public_api`
/// false). Left out: the project, `docs_site_id`, allowed origins, the `*_enabled` switches
/// (this server has no public chat or messaging), `settings` (free-form, it may hold anything)
/// and the timestamps.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublicBeaconView {
    pub id: String,
    pub position: Position,
    pub primary_color: HexColor,
    pub button_label: String,
    pub button_icon: ButtonIcon,
    pub custom_svg: Option<String>,
    pub greeting_title: String,
    pub greeting_text: String,
    pub form: Option<PublicFormView>,
}

impl Kind for Beacon {
    const TAG: u8 = 0x0a;
    const INDEX_TAGS: &'static [u8] = &[BY_CREATED];
    const PLURAL: &'static str = "beacons";
    const SINGULAR: &'static str = "beacon";
    const ID_PREFIX: &'static str = "bcn_";
    const NOT_FOUND: ErrorCode = ErrorCode::ResourceNotFound;
    const PUBLIC: bool = true;
    type View = BeaconView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        Ok(vec![IndexEntry::order(BY_CREATED, b"", self.seq, &self.id)])
    }
}

impl Archivable for Beacon {
    fn archived_at(&mut self) -> &mut Option<Timestamp> {
        &mut self.archived_at
    }
}

impl Beacon {
    /// Whether a browser at `origin` (the `Origin` header, if any) may load it: any origin when
    /// the list is empty, else only a listed one.
    pub fn allows_origin(&self, origin: Option<&str>) -> bool {
        origin_allowed(&self.allowed_origins, origin)
    }

    /// The rules between fields, checked on the beacon as it would be stored.
    fn check(&self) -> ApiResult<()> {
        if self.button_icon == ButtonIcon::CustomSvg && self.custom_svg.is_none() {
            return Err(ApiError::invalid(vec![Issue::new(
                "custom_svg",
                "Required when button_icon is custom_svg",
            )]));
        }
        Ok(())
    }
}

/// The public config of a live beacon: unknown → 404, archived → 410 `BEACON_ARCHIVED`. Point
/// reads only: the id's `public_ids` entry, the beacon and its form.
pub fn public_config(reader: &impl Reader, id: &Id<Beacon>) -> ApiResult<PublicBeaconView> {
    let (scope, beacon) = project_owned::find_public::<Beacon>(reader, id)?
        .ok_or_else(project_owned::not_found::<Beacon>)?;
    if beacon.archived_at.is_some() {
        return Err(ApiError::new(
            ErrorCode::BeaconArchived,
            "This beacon is archived",
        ));
    }
    let form = project_owned::find_text::<Form>(reader, &scope, &beacon.form_id)?
        .filter(|form| form.check_live().is_ok())
        .map(|form| PublicFormView::from(&form));
    Ok(PublicBeaconView {
        id: beacon.id,
        position: beacon.position,
        primary_color: beacon.primary_color,
        button_label: beacon.button_label,
        button_icon: beacon.button_icon,
        custom_svg: beacon.custom_svg,
        greeting_title: beacon.greeting_title,
        greeting_text: beacon.greeting_text,
        form,
    })
}

/// SVG markup: an `<svg` element somewhere in at most 100 000 characters.
fn svg(value: &Value) -> Check<String> {
    let markup = text(LONG_TEXT_MAX)(value)?;
    if markup.to_ascii_lowercase().contains("<svg") {
        Ok(markup)
    } else {
        Err("Must be SVG markup with an <svg> element".into())
    }
}

/// A JSON object of at most 16 KiB.
fn settings(value: &Value) -> Check<String> {
    let map = object(value)?;
    let text = Value::Object(map).to_string();
    if text.len() > SETTINGS_MAX_BYTES {
        return Err(format!(
            "Must be at most {SETTINGS_MAX_BYTES} bytes as JSON"
        ));
    }
    Ok(text)
}

/// A create or update body; on create only `form_id` is required, the rest defaults.
#[derive(Debug, Clone)]
pub struct BeaconInput {
    form_id: Option<String>,
    docs_site_id: Patch<String>,
    position: Option<Position>,
    primary_color: Option<HexColor>,
    button_label: Option<String>,
    button_icon: Option<ButtonIcon>,
    custom_svg: Patch<String>,
    greeting_title: Option<String>,
    greeting_text: Option<String>,
    allowed_origins: Option<Vec<Origin>>,
    ai_agent_enabled: Option<bool>,
    messages_enabled: Option<bool>,
    chat_enabled: Option<bool>,
    settings: Option<String>,
}

impl BeaconInput {
    /// Fields that are not "string or null" take `null` as a type error (docs/api/README.md).
    fn read(input: &mut Input, form_id: Option<String>) -> BeaconInput {
        BeaconInput {
            form_id,
            docs_site_id: input.nullable("docs_site_id", text(SHORT_TEXT_MAX)),
            position: input.updatable("position", one_of(Position::VALUES)),
            primary_color: input.updatable("primary_color", parsed::<HexColor>),
            button_label: input.updatable("button_label", trimmed(1, SHORT_TEXT_MAX)),
            button_icon: input.updatable("button_icon", one_of(ButtonIcon::VALUES)),
            custom_svg: input.nullable("custom_svg", svg),
            greeting_title: input.updatable("greeting_title", trimmed(1, SHORT_TEXT_MAX)),
            greeting_text: input.updatable("greeting_text", text(LONG_TEXT_MAX)),
            allowed_origins: read_origins(input),
            ai_agent_enabled: input.updatable("ai_agent_enabled", boolean),
            messages_enabled: input.updatable("messages_enabled", boolean),
            chat_enabled: input.updatable("chat_enabled", boolean),
            settings: input.updatable("settings", settings),
        }
    }

    pub fn create_from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let form_id = input.required("form_id", text(SHORT_TEXT_MAX));
        let beacon = BeaconInput::read(&mut input, form_id);
        input.finish_with(|| beacon.form_id.is_some().then_some(beacon))
    }

    pub fn update_from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let form_id = input.updatable("form_id", text(SHORT_TEXT_MAX));
        let beacon = BeaconInput::read(&mut input, form_id);
        input.finish_update_with(|| Some(beacon))
    }

    /// Applies every sent field (`settings` replaces the whole object), checks the rules
    /// between fields, then that a new `form_id` names a form of the project (archived ones
    /// too): validation before look-ups (docs/administration.md).
    fn apply(self, tx: &Tx<'_>, scope: &ProjectScope, beacon: &mut Beacon) -> ApiResult<()> {
        fn set<T>(slot: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *slot = value;
            }
        }
        set(&mut beacon.docs_site_id, self.docs_site_id.into_change());
        set(&mut beacon.position, self.position);
        set(&mut beacon.primary_color, self.primary_color);
        set(&mut beacon.button_label, self.button_label);
        set(&mut beacon.button_icon, self.button_icon);
        set(&mut beacon.custom_svg, self.custom_svg.into_change());
        set(&mut beacon.greeting_title, self.greeting_title);
        set(&mut beacon.greeting_text, self.greeting_text);
        set(&mut beacon.allowed_origins, self.allowed_origins);
        set(&mut beacon.ai_agent_enabled, self.ai_agent_enabled);
        set(&mut beacon.messages_enabled, self.messages_enabled);
        set(&mut beacon.chat_enabled, self.chat_enabled);
        set(&mut beacon.settings, self.settings);
        beacon.check()?;
        if let Some(form_id) = self.form_id {
            let form: Form = project_owned::get(tx, scope, &Id::parse_found(&form_id)?)?;
            beacon.form_id = form.id;
        }
        Ok(())
    }
}

impl Routed for Beacon {
    type Create = BeaconInput;
    type Update = BeaconInput;
    type Filter = Unfiltered;

    const BY_CREATED: u8 = BY_CREATED;
    const LISTING: Listing = Listing::Plain {
        max_per_project: 500,
    };
    const ENDPOINTS: Endpoints = Endpoints {
        collection: "/api/v1/projects/{project_id}/beacons",
        resource: Resource::Beacons,
        routes: &[
            Standard::List,
            Standard::Create,
            Standard::Get,
            Standard::Update,
        ],
        create: Body {
            name: "BeaconCreate",
            schema: openapi::create,
            codes: &[ErrorCode::ResourceNotFound],
        },
        update: Body {
            name: "BeaconUpdate",
            schema: openapi::update,
            codes: &[ErrorCode::ResourceNotFound],
        },
        filters: no_filters,
        created: None,
    };

    fn parse_filter(_: &QueryParams) -> ApiResult<Unfiltered> {
        Ok(Unfiltered)
    }

    fn parse_create(body: Value, _: InputSettings<'_>) -> ApiResult<BeaconInput> {
        BeaconInput::create_from_json(body)
    }

    fn parse_update(body: Value, _: InputSettings<'_>) -> ApiResult<BeaconInput> {
        BeaconInput::update_from_json(body)
    }

    /// Defaults per docs/api/forms-and-beacons.md.
    fn create(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: BeaconInput,
    ) -> ApiResult<Beacon> {
        let stamp = Stamp::new::<Beacon>(tx);
        let mut beacon = Beacon {
            id: stamp.id,
            project_id: scope.project_id.clone(),
            form_id: String::new(),
            docs_site_id: None,
            position: Position::BottomRight,
            primary_color: HexColor::brand(),
            button_label: "Contact us".into(),
            button_icon: ButtonIcon::Chat,
            custom_svg: None,
            greeting_title: "How can we help?".into(),
            greeting_text: String::new(),
            allowed_origins: Vec::new(),
            ai_agent_enabled: false,
            messages_enabled: false,
            chat_enabled: false,
            settings: "{}".into(),
            archived_at: None,
            created_at: stamp.now,
            seq: stamp.seq,
        };
        input.apply(tx, scope, &mut beacon)?;
        project_owned::insert(tx, scope, actor, &beacon)?;
        Ok(beacon)
    }

    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &Id<Self>,
        input: BeaconInput,
    ) -> ApiResult<Beacon> {
        let before: Beacon = project_owned::get(tx, scope, id)?;
        let mut after = before.clone();
        input.apply(tx, scope, &mut after)?;
        project_owned::replace(tx, scope, actor, "updated", &before, &after)?;
        Ok(after)
    }
}

/// The OpenAPI rows of beacons: request bodies.
mod openapi {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use super::{ButtonIcon, Position, SETTINGS_MAX_BYTES};
    use crate::project_owned::values::origins_schema;
    use crate::schema::*;
    use crate::validate::{LONG_TEXT_MAX, SHORT_TEXT_MAX};

    fn fields() -> Vec<(&'static str, RefOr<Schema>)> {
        vec![
            prop("form_id", text(SHORT_TEXT_MAX)),
            prop("docs_site_id", or_null(text(SHORT_TEXT_MAX))),
            prop("position", wire(Position::VALUES)),
            prop("primary_color", hex_color()),
            prop("button_label", trimmed(SHORT_TEXT_MAX)),
            prop("button_icon", wire(ButtonIcon::VALUES)),
            prop(
                "custom_svg",
                or_null(text(LONG_TEXT_MAX).pattern(Some("[<][Ss][Vv][Gg]"))),
            ),
            prop("greeting_title", trimmed(SHORT_TEXT_MAX)),
            prop("greeting_text", text(LONG_TEXT_MAX)),
            prop("allowed_origins", origins_schema()),
            prop("ai_agent_enabled", boolean()),
            prop("messages_enabled", boolean()),
            prop("chat_enabled", boolean()),
            prop("settings", capped_object(SETTINGS_MAX_BYTES)),
        ]
    }

    /// A custom icon needs its SVG.
    fn rule() -> Vec<Schema> {
        vec![
            when("button_icon", &["chat", "mail", "help"]),
            has_string("custom_svg"),
        ]
    }

    pub fn create() -> Schema {
        all_of(create_body(fields(), &["form_id"]), vec![rule()])
    }

    pub fn update() -> Schema {
        patch_with(fields(), vec![rule()])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn svg_and_settings_are_checked() {
        assert!(svg(&json!("<svg viewBox='0 0 1 1'></svg>")).is_ok());
        assert!(svg(&json!("<SVG/>")).is_ok());
        assert!(svg(&json!("<div/>")).is_err());
        assert_eq!(settings(&json!({"a": 1})).unwrap(), r#"{"a":1}"#);
        assert!(settings(&json!([1])).is_err());
        let big = json!({"x": "y".repeat(SETTINGS_MAX_BYTES)});
        assert!(settings(&big).is_err());
    }

    #[test]
    fn form_id_is_required_and_null_is_no_value() {
        let err = BeaconInput::create_from_json(json!({"position": "top"})).unwrap_err();
        let paths: Vec<&str> = err.issues().iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["form_id", "position"]);
        let err = BeaconInput::update_from_json(json!({"chat_enabled": null})).unwrap_err();
        assert_eq!(err.issues()[0].path, "chat_enabled");
        let err =
            BeaconInput::update_from_json(json!({"id": "bcn_x", "created_at": "x"})).unwrap_err();
        assert_eq!(err.code(), ErrorCode::NoUpdates);
    }
}
