//! Forms (docs/api/forms-and-beacons.md and the OpenAPI document): a project's contact forms, their
//! fields and how the public submit endpoint treats them. Submissions are in `form_submission`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::scope::Resource;
use crate::codec::Record;
use crate::error::{ApiError, ApiResult, ErrorCode, Issue};
use crate::ids::{self, ProjectId};
use crate::org_owned::audit::Actor;
use crate::org_owned::project::{Slug, unique_slug};
use crate::project_owned::routed::Unfiltered;
use crate::project_owned::routed::{Body, Endpoints, Standard, no_filters};
use crate::project_owned::values::{HexColor, HttpUrl, Origin, origin_allowed, read_origins};
use crate::project_owned::{
    self, Archivable, IndexEntry, InputSettings, Kind, Listing, ProjectScope, Routed,
};
use crate::project_owned::{Id, Stamp};
use crate::query::QueryParams;
use crate::store::{Reader, Tx};
use crate::timestamp::Timestamp;
use crate::validate::wire_enum;
use crate::validate::{
    Check, Input, LONG_TEXT_MAX, Patch, Presence, SHORT_TEXT_MAX, boolean, one_of, parsed, text,
    trimmed,
};
use crate::view::record_view;

pub const BY_CREATED: u8 = 0x54;
/// `len ++ slug ++ seq ++ id`: slugs are unique within a project.
pub const BY_SLUG: u8 = 0x55;

/// A form holds at most this many fields, and a choice field this many options.
pub const MAX_FIELDS: usize = 100;
const MAX_OPTIONS: usize = 100;
pub const MAX_RATE_LIMIT: u64 = 1_000_000;
/// Thirty days: the limiter keeps a window in memory for this long at most.
pub const MAX_WINDOW_SECONDS: u64 = 30 * 24 * 3600;

wire_enum! {
    pub enum FieldType {
        ShortText = "short_text",
        LongText = "long_text",
        Email = "email",
        Number = "number",
        Phone = "phone",
        Checkbox = "checkbox",
        Radio = "radio",
        SingleSelect = "single_select",
        MultiSelect = "multi_select",
        Date = "date",
        File = "file",
    }
}

impl FieldType {
    /// Choice fields carry `options`, and their values must be among them.
    pub fn is_choice(self) -> bool {
        matches!(
            self,
            FieldType::Radio | FieldType::SingleSelect | FieldType::MultiSelect
        )
    }
}

wire_enum! {
    pub enum SuccessAction {
        Inline = "inline",
        Redirect = "redirect",
    }
}

wire_enum! {
    pub enum ButtonAlign {
        Left = "left",
        Center = "center",
        Right = "right",
        Full = "full",
    }
}

/// A field's `id` or `name`: 1-64 letters, digits, `_` or `-`. Names key the submitted values,
/// so they must be safe in issue paths (no dots).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct FieldKey(String);

const FIELD_KEY_MAX: usize = 64;

impl TryFrom<String> for FieldKey {
    type Error = String;

    fn try_from(key: String) -> Check<FieldKey> {
        let ok = (1..=FIELD_KEY_MAX).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(FieldKey(key))
        } else {
            Err("Must be 1-64 letters, digits, underscores or hyphens".into())
        }
    }
}

impl From<FieldKey> for String {
    fn from(key: FieldKey) -> String {
        key.0
    }
}

impl FieldKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn generated_id() -> FieldKey {
        FieldKey(format!("fld_{}", ids::random_alphanumeric(8)))
    }

    /// A name from a label: lowercase letters and digits, other runs as one `_`; `field` when
    /// nothing is left.
    fn derived_name(label: &str) -> FieldKey {
        let mut name = String::new();
        for c in label.chars() {
            if c.is_ascii_alphanumeric() {
                name.push(c.to_ascii_lowercase());
            } else if !name.is_empty() && !name.ends_with('_') {
                name.push('_');
            }
        }
        // Room for a `_<n>` suffix.
        name.truncate(FIELD_KEY_MAX - 8);
        let name = name.trim_end_matches('_');
        FieldKey(if name.is_empty() { "field" } else { name }.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormField {
    pub id: FieldKey,
    pub kind: FieldType,
    pub label: String,
    pub name: FieldKey,
    pub required: bool,
    pub placeholder: Option<String>,
    /// Empty unless `kind` is a choice.
    pub options: Vec<String>,
}

record_view! {
    /// A field on the wire, in the authenticated views and the public schema alike: `options` is
    /// always there, `[]` on fields that are not choices (the "Get a form" reference page).
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct FormFieldView from FormField {
        id: FieldKey,
        #[serde(rename = "type")]
        kind: FieldType,
        label: String,
        name: FieldKey,
        required: bool,
        placeholder: Option<String>,
        options: Vec<String> = |field| {
            if field.kind.is_choice() {
                field.options.clone()
            } else {
                Vec::new()
            }
        },
    }
}

/// Name, Email and Message, all required: the fields of a form created without any.
fn default_fields() -> Vec<FormField> {
    [
        ("Name", "name", FieldType::ShortText),
        ("Email", "email", FieldType::Email),
        ("Message", "message", FieldType::LongText),
    ]
    .into_iter()
    .map(|(label, name, kind)| FormField {
        id: FieldKey::generated_id(),
        kind,
        label: label.into(),
        name: FieldKey(name.into()),
        required: true,
        placeholder: None,
        options: Vec::new(),
    })
    .collect()
}

/// One field as sent: `id` and `name` may still be missing.
struct FieldDraft {
    id: Option<FieldKey>,
    kind: FieldType,
    label: String,
    name: Option<FieldKey>,
    required: bool,
    placeholder: Option<String>,
    options: Vec<String>,
}

impl FieldDraft {
    /// Reads one item of `fields`; its issues are relative to the item.
    fn from_json(item: &Value) -> ApiResult<FieldDraft> {
        let options_sent = item.get("options").is_some();
        let mut input = Input::new(item.clone())
            .map_err(|_| ApiError::invalid(vec![Issue::new("", "Expected object")]))?;
        let kind = input.required("type", one_of(FieldType::VALUES));
        let label = input.required("label", trimmed(1, SHORT_TEXT_MAX));
        let id = input.updatable("id", parsed::<FieldKey>);
        let name = input.updatable("name", parsed::<FieldKey>);
        let required = input.updatable("required", boolean);
        // `null` is the record's own value (the OpenAPI document), which a client may send back.
        let placeholder = input
            .nullable("placeholder", text(SHORT_TEXT_MAX))
            .into_change()
            .flatten();
        let mut options = Vec::new();
        if kind.is_some_and(FieldType::is_choice) {
            match input.array(
                "options",
                Presence::Optional,
                MAX_OPTIONS,
                trimmed(1, SHORT_TEXT_MAX),
            ) {
                Some(sent) if sent.is_empty() => {
                    input.issue("options", "Must contain at least one option")
                }
                Some(sent) => options = sent,
                None if !options_sent => input.issue("options", "Required"),
                None => {}
            }
        }
        input.finish_with(|| {
            Some(FieldDraft {
                id,
                kind: kind?,
                label: label?,
                name,
                required: required.unwrap_or(false),
                placeholder,
                options,
            })
        })
    }
}

/// Reads `fields`: absent → `None`; empty → the default fields. Issues are reported at
/// `fields.N.<key>`; ids and names must be unique within the form, and those left out are
/// filled in (`fld_` + 8 characters; a name from the label, numbered when taken).
fn read_fields(input: &mut Input) -> Option<Vec<FormField>> {
    let items = input.updatable("fields", |v| {
        v.as_array()
            .cloned()
            .ok_or_else(|| "Expected array".to_string())
    })?;
    if items.is_empty() {
        return Some(default_fields());
    }
    if items.len() > MAX_FIELDS {
        input.issue("fields", format!("Must contain at most {MAX_FIELDS} items"));
        return None;
    }
    let mut drafts = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match FieldDraft::from_json(item) {
            Ok(draft) => drafts.push(draft),
            Err(err) => {
                for issue in err.issues() {
                    let path = match issue.path.as_str() {
                        "" => format!("fields.{i}"),
                        key => format!("fields.{i}.{key}"),
                    };
                    input.issue(&path, issue.message.clone());
                }
            }
        }
    }
    if drafts.len() != items.len() {
        return None;
    }
    let mut ids: HashSet<FieldKey> = HashSet::new();
    let mut names: HashSet<FieldKey> = HashSet::new();
    let mut valid = true;
    for (i, draft) in drafts.iter().enumerate() {
        if let Some(id) = &draft.id
            && !ids.insert(id.clone())
        {
            input.issue(&format!("fields.{i}.id"), "Duplicate field id");
            valid = false;
        }
        if let Some(name) = &draft.name
            && !names.insert(name.clone())
        {
            input.issue(&format!("fields.{i}.name"), "Duplicate field name");
            valid = false;
        }
    }
    if !valid {
        return None;
    }
    let fields = drafts
        .into_iter()
        .map(|draft| {
            let id = draft.id.unwrap_or_else(|| {
                loop {
                    let id = FieldKey::generated_id();
                    if ids.insert(id.clone()) {
                        break id;
                    }
                }
            });
            let name = draft.name.unwrap_or_else(|| {
                let base = FieldKey::derived_name(&draft.label);
                let mut name = base.clone();
                let mut n = 1;
                while names.contains(&name) {
                    n += 1;
                    name = FieldKey(format!("{}_{n}", base.0));
                }
                names.insert(name.clone());
                name
            });
            FormField {
                id,
                kind: draft.kind,
                label: draft.label,
                name,
                required: draft.required,
                placeholder: draft.placeholder,
                options: draft.options,
            }
        })
        .collect();
    Some(fields)
}

/// A whole number from 1 to `max`. As in JSON Schema, `5.0` is the integer 5.
fn count(max: u64) -> impl Fn(&Value) -> Check<u32> {
    move |value| {
        if !value.is_number() {
            return Err("Expected integer".into());
        }
        let whole = value.as_u64().or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                // Saturates above u64::MAX, which the bound below refuses anyway.
                .map(|f| f as u64)
        });
        match whole {
            Some(n) if (1..=max).contains(&n) => u32::try_from(n).map_err(|e| e.to_string()),
            Some(n) if n > max => Err(format!("Must be at most {max}")),
            _ => Err("Must be an integer of at least 1".into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Form {
    pub id: String,
    pub project_id: ProjectId,
    pub name: String,
    pub slug: Slug,
    pub fields: Vec<FormField>,
    pub success_action: SuccessAction,
    pub success_message: String,
    pub redirect_url: Option<HttpUrl>,
    pub allowed_origins: Vec<Origin>,
    pub rate_limit_per_ip: u32,
    pub rate_limit_window_seconds: u32,
    pub public_api: bool,
    pub submit_button_label: String,
    pub submit_button_align: ButtonAlign,
    pub submit_button_color: Option<HexColor>,
    pub show_title: bool,
    pub logo_url: Option<HttpUrl>,
    pub archived_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub seq: u64,
}

impl Record for Form {
    const NAME: &'static str = "form";
}

record_view! {
    /// FormRecord, field for field as the OpenAPI document.
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct FormView from Form {
        id: String,
        #[schema(value_type = String)]
        project_id: ProjectId,
        name: String,
        slug: Slug,
        fields: Vec<FormFieldView> = |form| form.fields.iter().map(FormFieldView::from).collect(),
        success_action: SuccessAction,
        success_message: String,
        redirect_url: Option<HttpUrl>,
        allowed_origins: Vec<Origin>,
        rate_limit_per_ip: u32,
        rate_limit_window_seconds: u32,
        public_api: bool,
        submit_button_label: String,
        submit_button_align: ButtonAlign,
        submit_button_color: Option<HexColor>,
        show_title: bool,
        logo_url: Option<HttpUrl>,
        archived_at: Option<Timestamp>,
        created_at: Timestamp,
        updated_at: Timestamp,
    }
}

record_view! {
    /// A form's public schema (`GET /api/forms/{idOrSlug}/public`): what a browser needs to render
    /// and submit it, and nothing else. Left out: the project, slug, allowed origins, rate limits,
    /// `public_api`, `redirect_url` (the submit answer carries it), `show_title`, `logo_url`,
    /// `archived_at` and the timestamps.
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct PublicFormView from Form {
        id: String,
        name: String,
        fields: Vec<FormFieldView> = |form| form.fields.iter().map(FormFieldView::from).collect(),
        success_action: SuccessAction,
        success_message: String,
        submit_button_label: String,
        submit_button_align: ButtonAlign,
        submit_button_color: Option<HexColor>,
    }
}

impl Kind for Form {
    const TAG: u8 = 0x08;
    const INDEX_TAGS: &'static [u8] = &[BY_CREATED, BY_SLUG];
    const PLURAL: &'static str = "forms";
    const SINGULAR: &'static str = "form";
    const ID_PREFIX: &'static str = "frm_";
    const NOT_FOUND: ErrorCode = ErrorCode::ResourceNotFound;
    const PUBLIC: bool = true;
    type View = FormView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        Ok(vec![
            IndexEntry::order(BY_CREATED, b"", self.seq, &self.id),
            IndexEntry::lookup(BY_SLUG, self.slug.as_str(), self.seq, &self.id),
        ])
    }
}

impl Archivable for Form {
    fn archived_at(&mut self) -> &mut Option<Timestamp> {
        &mut self.archived_at
    }
}

impl Form {
    /// Whether the public endpoints serve this form: archived → 410 `FORM_ARCHIVED`, closed to
    /// the public API (`public_api` false) → 403 `FORBIDDEN`.
    pub fn check_live(&self) -> ApiResult<()> {
        if self.archived_at.is_some() {
            return Err(ApiError::new(
                ErrorCode::FormArchived,
                "This form is archived",
            ));
        }
        if !self.public_api {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "This form is closed to the public API (public_api is false)",
            ));
        }
        Ok(())
    }

    /// Whether a browser at `origin` (the `Origin` header, if any) may submit: any origin when
    /// the list is empty, else only a listed one.
    pub fn allows_origin(&self, origin: Option<&str>) -> bool {
        origin_allowed(&self.allowed_origins, origin)
    }

    /// The rules between fields, checked on the form as it would be stored.
    fn check(&self) -> ApiResult<()> {
        if self.success_action == SuccessAction::Redirect && self.redirect_url.is_none() {
            return Err(ApiError::invalid(vec![Issue::new(
                "redirect_url",
                "Required when success_action is redirect",
            )]));
        }
        Ok(())
    }
}

/// A create or update body; on create only `name` is required, the rest defaults.
#[derive(Clone)]
pub struct FormInput {
    name: Option<String>,
    slug: Option<Slug>,
    fields: Option<Vec<FormField>>,
    success_action: Option<SuccessAction>,
    success_message: Option<String>,
    redirect_url: Patch<HttpUrl>,
    allowed_origins: Option<Vec<Origin>>,
    rate_limit_per_ip: Option<u32>,
    rate_limit_window_seconds: Option<u32>,
    public_api: Option<bool>,
    submit_button_label: Option<String>,
    submit_button_align: Option<ButtonAlign>,
    submit_button_color: Patch<HexColor>,
    show_title: Option<bool>,
    logo_url: Patch<HttpUrl>,
}

impl FormInput {
    /// Fields that are not "string or null" take `null` as a type error (docs/api/README.md).
    fn read(input: &mut Input, name: Option<String>) -> FormInput {
        FormInput {
            name,
            slug: input.updatable("slug", parsed::<Slug>),
            fields: read_fields(input),
            success_action: input.updatable("success_action", one_of(SuccessAction::VALUES)),
            success_message: input.updatable("success_message", text(LONG_TEXT_MAX)),
            redirect_url: input.nullable("redirect_url", parsed::<HttpUrl>),
            allowed_origins: read_origins(input),
            rate_limit_per_ip: input.updatable("rate_limit_per_ip", count(MAX_RATE_LIMIT)),
            rate_limit_window_seconds: input
                .updatable("rate_limit_window_seconds", count(MAX_WINDOW_SECONDS)),
            public_api: input.updatable("public_api", boolean),
            submit_button_label: input.updatable("submit_button_label", trimmed(1, SHORT_TEXT_MAX)),
            submit_button_align: input
                .updatable("submit_button_align", one_of(ButtonAlign::VALUES)),
            submit_button_color: input.nullable("submit_button_color", parsed::<HexColor>),
            show_title: input.updatable("show_title", boolean),
            logo_url: input.nullable("logo_url", parsed::<HttpUrl>),
        }
    }

    pub fn create_from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let name = input.required("name", trimmed(1, SHORT_TEXT_MAX));
        let form = FormInput::read(&mut input, name);
        input.finish_with(|| form.name.is_some().then_some(form))
    }

    pub fn update_from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let name = input.updatable("name", trimmed(1, SHORT_TEXT_MAX));
        let form = FormInput::read(&mut input, name);
        input.finish_update_with(|| Some(form))
    }

    /// Applies everything but the slug, which needs the store.
    fn apply(self, form: &mut Form) {
        fn set<T>(slot: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *slot = value;
            }
        }
        set(&mut form.name, self.name);
        set(&mut form.fields, self.fields);
        set(&mut form.success_action, self.success_action);
        set(&mut form.success_message, self.success_message);
        set(&mut form.redirect_url, self.redirect_url.into_change());
        set(&mut form.allowed_origins, self.allowed_origins);
        set(&mut form.rate_limit_per_ip, self.rate_limit_per_ip);
        set(
            &mut form.rate_limit_window_seconds,
            self.rate_limit_window_seconds,
        );
        set(&mut form.public_api, self.public_api);
        set(&mut form.submit_button_label, self.submit_button_label);
        set(&mut form.submit_button_align, self.submit_button_align);
        set(
            &mut form.submit_button_color,
            self.submit_button_color.into_change(),
        );
        set(&mut form.show_title, self.show_title);
        set(&mut form.logo_url, self.logo_url.into_change());
    }
}

/// The form that the public endpoints' `{idOrSlug}` names, whatever its state: by id, or by slug
/// when the server holds exactly one project, since a slug is unique only within its project.
/// A slug on a server with several projects is 404 with a hint to use the id.
pub fn find_public_form(
    reader: &impl Reader,
    id_or_slug: &str,
) -> ApiResult<Option<(ProjectScope, Form)>> {
    if let Some(id) = Id::parse(id_or_slug) {
        return project_owned::find_public(reader, &id);
    }
    let Ok(slug) = Slug::try_from(id_or_slug.to_string()) else {
        return Ok(None);
    };
    let Some(scope) = ProjectScope::the_only_one(reader)? else {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            "Form slugs are looked up only on a server with a single project: use the form's id",
        ));
    };
    let Some(id) = slug_holder(reader, &scope, &slug)? else {
        return Ok(None);
    };
    Ok(project_owned::find_text(reader, &scope, &id)?.map(|form| (scope, form)))
}

/// The form of this project that holds `slug`, if any.
fn slug_holder(
    reader: &impl Reader,
    scope: &ProjectScope,
    slug: &Slug,
) -> ApiResult<Option<String>> {
    scope.first(reader, BY_SLUG, slug.as_str())
}

fn slug_conflict(slug: &Slug) -> ApiError {
    ApiError::new(
        ErrorCode::SlugConflict,
        format!("The slug '{slug}' is already used by a form of this project"),
    )
}

impl Routed for Form {
    type Create = FormInput;
    type Update = FormInput;
    type Filter = Unfiltered;

    const BY_CREATED: u8 = BY_CREATED;
    const LISTING: Listing = Listing::Plain {
        max_per_project: 500,
    };
    const ENDPOINTS: Endpoints = Endpoints {
        collection: "/api/v1/projects/{project_id}/forms",
        resource: Resource::Forms,
        routes: &[
            Standard::List,
            Standard::Create,
            Standard::Get,
            Standard::Update,
        ],
        create: Body {
            name: "FormCreate",
            schema: openapi::create,
            codes: &[ErrorCode::SlugConflict],
        },
        update: Body {
            name: "FormUpdate",
            schema: openapi::update,
            codes: &[ErrorCode::SlugConflict],
        },
        filters: no_filters,
        created: None,
    };

    fn parse_filter(_: &QueryParams) -> ApiResult<Unfiltered> {
        Ok(Unfiltered)
    }

    fn parse_create(body: Value, _: InputSettings<'_>) -> ApiResult<FormInput> {
        FormInput::create_from_json(body)
    }

    fn parse_update(body: Value, _: InputSettings<'_>) -> ApiResult<FormInput> {
        FormInput::update_from_json(body)
    }

    /// Defaults per docs/api/forms-and-beacons.md; a given slug must be free, a derived one is
    /// numbered.
    fn create(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        mut input: FormInput,
    ) -> ApiResult<Form> {
        let name = input.name.clone().unwrap_or_default();
        let slug = match input.slug.take() {
            Some(slug) if slug_holder(tx, scope, &slug)?.is_some() => {
                return Err(slug_conflict(&slug));
            }
            Some(slug) => slug,
            None => unique_slug(&name, "form", |slug| {
                Ok(slug_holder(tx, scope, slug)?.is_some())
            })?,
        };
        let stamp = Stamp::new::<Form>(tx);
        let mut form = Form {
            id: stamp.id,
            project_id: scope.project_id.clone(),
            name,
            slug,
            fields: default_fields(),
            success_action: SuccessAction::Inline,
            success_message: "Thanks! We'll be in touch soon.".into(),
            redirect_url: None,
            allowed_origins: Vec::new(),
            rate_limit_per_ip: 5,
            rate_limit_window_seconds: 3600,
            public_api: true,
            submit_button_label: "Submit".into(),
            submit_button_align: ButtonAlign::Full,
            submit_button_color: None,
            show_title: true,
            logo_url: None,
            archived_at: None,
            created_at: stamp.now,
            updated_at: stamp.now,
            seq: stamp.seq,
        };
        input.apply(&mut form);
        form.check()?;
        project_owned::insert(tx, scope, actor, &form)?;
        Ok(form)
    }

    /// `fields` replaces the whole list; a new slug must be free.
    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &Id<Self>,
        mut input: FormInput,
    ) -> ApiResult<Form> {
        let before: Form = project_owned::get(tx, scope, id)?;
        let mut after = before.clone();
        let slug = input.slug.take();
        input.apply(&mut after);
        after.check()?;
        if let Some(slug) = slug {
            if slug_holder(tx, scope, &slug)?.is_some_and(|holder| holder != before.id) {
                return Err(slug_conflict(&slug));
            }
            after.slug = slug;
        }
        after.updated_at = tx.now;
        project_owned::replace(tx, scope, actor, "updated", &before, &after)?;
        Ok(after)
    }
}

/// The OpenAPI rows of forms: request bodies.
mod openapi {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use super::{
        ButtonAlign, FieldType, MAX_FIELDS, MAX_RATE_LIMIT, MAX_WINDOW_SECONDS, SuccessAction,
    };
    use crate::project_owned::values::origins_schema;
    use crate::schema::*;
    use crate::validate::{LONG_TEXT_MAX, SHORT_TEXT_MAX};

    fn fields() -> Vec<(&'static str, RefOr<Schema>)> {
        let field_key = || {
            string()
                .pattern(Some("^[A-Za-z0-9_-]+$"))
                .min_length(Some(1))
                .max_length(Some(64))
        };
        let choice: Vec<&str> = FieldType::VALUES
            .iter()
            .filter(|(_, t)| t.is_choice())
            .map(|(n, _)| *n)
            .collect();
        let plain: Vec<&str> = FieldType::VALUES
            .iter()
            .filter(|(_, t)| !t.is_choice())
            .map(|(n, _)| *n)
            .collect();
        let field_base = create_body(
            vec![
                prop("label", trimmed(SHORT_TEXT_MAX)),
                prop("id", field_key()),
                prop("name", field_key()),
                prop("required", boolean()),
                prop("placeholder", or_null(text(SHORT_TEXT_MAX))),
            ],
            &["type", "label"],
        );
        let field = all_of(
            field_base,
            vec![vec![
                object().property("type", names(&plain)).into(),
                object()
                    .property("type", names(&choice))
                    .property("options", array(trimmed(SHORT_TEXT_MAX), 1, 100))
                    .required("options")
                    .into(),
            ]],
        );
        vec![
            prop("name", trimmed(SHORT_TEXT_MAX)),
            prop("slug", slug()),
            (
                "fields",
                RefOr::T(
                    array(field, 0, MAX_FIELDS)
                        .description(Some("Field ids and names must be unique within the form."))
                        .into(),
                ),
            ),
            prop("success_action", wire(SuccessAction::VALUES)),
            prop("success_message", text(LONG_TEXT_MAX)),
            prop("redirect_url", or_null(http_url())),
            prop("allowed_origins", origins_schema()),
            prop("rate_limit_per_ip", integer(1, MAX_RATE_LIMIT)),
            prop("rate_limit_window_seconds", integer(1, MAX_WINDOW_SECONDS)),
            prop("public_api", boolean()),
            prop("submit_button_label", trimmed(SHORT_TEXT_MAX)),
            prop("submit_button_align", wire(ButtonAlign::VALUES)),
            prop("submit_button_color", or_null(hex_color())),
            prop("show_title", boolean()),
            prop("logo_url", or_null(http_url())),
        ]
    }

    /// An inline success shows a message; a redirect needs its URL.
    fn rule() -> Vec<Schema> {
        vec![
            when("success_action", &["inline"]),
            has_string("redirect_url"),
        ]
    }

    pub fn create() -> Schema {
        all_of(create_body(fields(), &["name"]), vec![rule()])
    }

    pub fn update() -> Schema {
        patch_with(fields(), vec![rule()])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::assert_string_newtype;

    fn fields_of(body: Value) -> ApiResult<Vec<FormField>> {
        FormInput::create_from_json(body).map(|f| f.fields.unwrap_or_else(default_fields))
    }

    fn issue_paths(err: &ApiError) -> Vec<&str> {
        err.issues().iter().map(|i| i.path.as_str()).collect()
    }

    #[test]
    fn field_keys() {
        assert_string_newtype::<FieldKey>("first_name", "first.name");
    }

    #[test]
    fn no_fields_means_the_three_defaults() {
        for body in [
            json!({"name": "Contact"}),
            json!({"name": "Contact", "fields": []}),
        ] {
            let fields = fields_of(body).unwrap();
            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(names, ["name", "email", "message"]);
            assert!(
                fields
                    .iter()
                    .all(|f| f.required && f.id.as_str().starts_with("fld_"))
            );
            assert!(fields.iter().all(|f| f.id.as_str().len() == 12));
        }
    }

    #[test]
    fn fields_are_filled_in() {
        let fields = fields_of(json!({"name": "F", "fields": [
            {"type": "short_text", "label": "  First Name  ", "options": ["x"]},
            {"type": "radio", "label": "Plan", "options": ["a", " b ", "a"], "required": true},
            {"type": "email", "label": "first name!"},
            {"type": "number", "label": "Age", "id": "age-id", "name": "age", "placeholder": "42"},
            {"type": "date", "label": "???"},
        ]}))
        .unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["first_name", "plan", "first_name_2", "age", "field"]
        );
        assert_eq!(fields[0].label, "First Name");
        assert!(
            fields[0].options.is_empty(),
            "no options on non-choice fields"
        );
        assert_eq!(fields[1].options, ["a", "b"]);
        assert!(fields[1].required && !fields[0].required);
        assert_eq!(fields[3].id.as_str(), "age-id");
        assert_eq!(fields[3].placeholder.as_deref(), Some("42"));
        assert_eq!(fields[0].placeholder, None);
        let view = serde_json::to_value(FormFieldView::from(&fields[0])).unwrap();
        assert_eq!(
            view["options"],
            json!([]),
            "always there, empty on non-choices"
        );
        assert_eq!(view["type"], "short_text");
        assert_eq!(
            serde_json::to_value(FormFieldView::from(&fields[1])).unwrap()["options"],
            json!(["a", "b"])
        );
    }

    #[test]
    fn field_issues_are_reported_at_their_paths() {
        let err = fields_of(json!({"name": "F", "fields": [
            {"type": "short_text"},
            {"label": "No type"},
            {"type": "select", "label": "Bad type"},
            {"type": "radio", "label": "No options"},
            {"type": "multi_select", "label": "Empty", "options": []},
            {"type": "single_select", "label": "Bad option", "options": ["", 3]},
            "text",
            {"type": "short_text", "label": "Bad name", "name": "a.b", "required": "yes"},
        ]}))
        .unwrap_err();
        assert_eq!(
            issue_paths(&err),
            [
                "fields.0.label",
                "fields.1.type",
                "fields.2.type",
                "fields.3.options",
                "fields.4.options",
                "fields.5.options.0",
                "fields.5.options.1",
                "fields.6",
                "fields.7.name",
                "fields.7.required",
            ]
        );
        assert_eq!(err.issues()[0].message, "Required");
    }

    #[test]
    fn duplicate_ids_and_names_are_refused() {
        let err = fields_of(json!({"name": "F", "fields": [
            {"type": "short_text", "label": "A", "id": "x", "name": "n"},
            {"type": "short_text", "label": "B", "id": "x", "name": "n"},
        ]}))
        .unwrap_err();
        assert_eq!(issue_paths(&err), ["fields.1.id", "fields.1.name"]);
        let too_many: Vec<Value> = (0..=MAX_FIELDS)
            .map(|i| json!({"type": "short_text", "label": format!("F{i}")}))
            .collect();
        let err = fields_of(json!({"name": "F", "fields": too_many})).unwrap_err();
        assert_eq!(issue_paths(&err), ["fields"]);
    }

    #[test]
    fn counts_are_whole_and_positive() {
        let c = count(10);
        assert_eq!(c(&json!(1)), Ok(1));
        assert_eq!(c(&json!(10)), Ok(10));
        assert_eq!(c(&json!(5.0)), Ok(5));
        for bad in [
            json!(11.0),
            json!(1e300),
            json!(-0.0),
            json!(0),
            json!(-1),
            json!(1.5),
            json!(11),
            json!("5"),
            json!(null),
        ] {
            assert!(c(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_allow_by_list() {
        let mut form = Form {
            id: "frm_abcdefghijkl".into(),
            project_id: ProjectId::parse("prj_abcdefghijkl").unwrap(),
            name: "F".into(),
            slug: Slug::try_from("f1".to_string()).unwrap(),
            fields: default_fields(),
            success_action: SuccessAction::Inline,
            success_message: String::new(),
            redirect_url: None,
            allowed_origins: Vec::new(),
            rate_limit_per_ip: 5,
            rate_limit_window_seconds: 3600,
            public_api: true,
            submit_button_label: "Submit".into(),
            submit_button_align: ButtonAlign::Full,
            submit_button_color: None,
            show_title: true,
            logo_url: None,
            archived_at: None,
            created_at: Timestamp::from_unix(0),
            updated_at: Timestamp::from_unix(0),
            seq: 1,
        };
        assert!(form.allows_origin(None));
        assert!(form.allows_origin(Some("https://any.io")));
        form.allowed_origins = vec![Origin::try_from("https://a.io".to_string()).unwrap()];
        assert!(form.allows_origin(Some("https://a.io")));
        assert!(form.allows_origin(Some("https://A.io:443")));
        assert!(!form.allows_origin(Some("https://b.io")));
        assert!(!form.allows_origin(Some("null")));
        assert!(!form.allows_origin(None));
        form.success_action = SuccessAction::Redirect;
        assert_eq!(issue_paths(&form.check().unwrap_err()), ["redirect_url"]);
    }
}
