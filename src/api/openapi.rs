//! The OpenAPI 3.1 document of the API, served at `GET /api/v1/openapi.json` without a key. Its
//! paths are the route table's rows (src/api/routes.rs), walked here: each row's method, path,
//! required scope and security come from the table itself, so the document cannot list a route
//! the server lacks or miss one it has. Request bodies are written here, in one place, because
//! the server reads them field by field (`validate::Input`) rather than through serde types;
//! each schema states exactly what that reader accepts, so that a fuzzer can check both ways.

use std::collections::BTreeMap;

use actix_web::http::Method;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use serde_json::json;
use utoipa::ToSchema;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ArrayBuilder, ArrayItems, ComponentsBuilder, ObjectBuilder, Schema,
    SchemaType, Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr,
};

use crate::api::access::{Access, RouteSpec};
use crate::api::browser::{BEACON_CONFIG, FORM_SCHEMA, SUBMIT, SUBMIT_V1};
use crate::api::extract::IDEMPOTENCY_KEY;
use crate::auth::scope::every_scope;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::org_owned::project::AgentMode;
use crate::pagination::CURSOR_PATTERN;
use crate::project_owned::conversation::{Channel, Priority, Status};
use crate::project_owned::form::{
    ButtonAlign, FieldType, MAX_FIELDS, MAX_RATE_LIMIT, MAX_WINDOW_SECONDS, SuccessAction,
};
use crate::project_owned::integration::MAX_OBJECT_BYTES;
use crate::project_owned::kb::ArticleStatus;
use crate::project_owned::registry::KINDS;
use crate::project_owned::search::MAX_QUERY_CHARS;
use crate::project_owned::webhooks::webhook::{EVENTS, GROUPS, URL_MAX_CHARS, WebhookStatus};
use crate::project_owned::{beacon, widget};
use crate::rate_limit::Tier;
use crate::validate::{LONG_TEXT_MAX, SHORT_TEXT_MAX};

/// `GET /api/v1/openapi.json`: the document, built once per process.
/// The document as JSON, rendered from the route table when the routes are registered
/// (`routes::configure`), so that this module needs the table's rows, not the table's module.
pub struct Rendered(Result<String, String>);

impl Rendered {
    pub fn of(table: &[RouteSpec]) -> Self {
        Rendered(document(table).to_json().map_err(|e| e.to_string()))
    }
}

pub async fn serve(rendered: web::Data<Rendered>) -> ApiResult<HttpResponse> {
    let body = rendered
        .0
        .as_ref()
        .map_err(|e| ApiError::internal(format!("OpenAPI document: {e}")))?;
    Ok(HttpResponse::Ok()
        .insert_header(ContentType::json())
        .body(body.clone()))
}

/// The whole document: one operation per row of the route table.
pub fn document(table: &[RouteSpec]) -> OpenApi {
    let mut paths = PathsBuilder::new();
    for spec in table {
        let Some(method) = http_method(&spec.method) else {
            continue;
        };
        let path = PathItem::new(method, operation(spec));
        paths = paths.path(spec.path, path);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("rogeriq")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The self-hosted RogerIQ API. Every success body is `{data}` or, for the \
                     paginated lists, `{data, cursor, has_more}`; every error body is `Error`.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components(table)))
        .build()
}

fn http_method(method: &Method) -> Option<HttpMethod> {
    Some(match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PATCH => HttpMethod::Patch,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        _ => return None,
    })
}

/// The security schemes: an org key or the master key, in either header (docs/administration.md).
const API_KEY: &str = "ApiKey";
const BEARER: &str = "Bearer";

fn components(table: &[RouteSpec]) -> utoipa::openapi::Components {
    let mut components = ComponentsBuilder::new()
        .security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An org API key (`riq_…`), or the master key on the admin routes.",
            ))),
        )
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer riq_…`: the same key as `X-API-Key`.",
                    ))
                    .build(),
            ),
        )
        .schema("Error", error_schema(None))
        .schema(
            "Issue",
            ObjectBuilder::new()
                .property("path", string())
                .property("message", string())
                .required("path")
                .required("message"),
        );
    for (name, schema) in bodies() {
        components = components.schema(name, schema);
    }
    let mut views = Vec::new();
    for spec in table {
        if let Some(view) = data(&spec.method, spec.path).view() {
            (view.register)(&mut views);
        }
    }
    for (name, schema) in views {
        components = components.schema(name, schema);
    }
    components.build()
}

/// The error body of docs/api/errors.md; `codes` narrows `code` to those one response can carry.
fn error_schema(codes: Option<&[ErrorCode]>) -> Schema {
    let code = match codes {
        Some(codes) => string().enum_values(Some(codes.iter().map(|c| c.as_str()))),
        None => string(),
    };
    ObjectBuilder::new()
        .property("error", string())
        .property("code", code)
        .property("request_id", string())
        .property(
            "issues",
            ArrayBuilder::new().items(Ref::from_schema_name("Issue")),
        )
        .property(
            "retry_after",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .required("error")
        .required("code")
        .required("request_id")
        .into()
}

fn operation(spec: &RouteSpec) -> utoipa::openapi::path::Operation {
    let contract = contract(&spec.method, spec.path);
    let mut op = OperationBuilder::new()
        .operation_id(Some(operation_id(&spec.method, spec.path)))
        .summary(Some(format!("{} {}", spec.method, spec.path)))
        .description(Some(access_text(spec.access)));
    let mut extensions = Extensions::default();
    if let Access::Key(required) = spec.access {
        extensions.insert("x-required-scope".into(), json!(required.to_string()));
    }
    op = op.extensions(Some(extensions));
    op = match spec.access {
        Access::Public => op.securities(Some(Vec::<SecurityRequirement>::new())),
        _ => op
            .security(SecurityRequirement::new::<_, _, &str>(API_KEY, []))
            .security(SecurityRequirement::new::<_, _, &str>(BEARER, [])),
    };
    for name in path_parameters(spec.path) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(utoipa::openapi::Required::True)
                .schema(Some(string())),
        );
    }
    for parameter in query_parameters(&spec.method, spec.path) {
        op = op.parameter(parameter);
    }
    if takes_idempotency_key(spec) {
        op = op.parameter(idempotency_key());
    }
    if let Some(body) = contract.body {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(body)))
                        .build(),
                )
                .required(Some(if contract.body_optional {
                    utoipa::openapi::Required::False
                } else {
                    utoipa::openapi::Required::True
                }))
                .build(),
        ));
    }
    op.responses(responses(spec, &contract)).build()
}

/// `listConversations`-style ids are not needed; a stable id from method and path is.
fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let word: String = segment
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        id.push('_');
        id.push_str(word.trim_matches('_'));
    }
    id
}

fn access_text(access: Access) -> String {
    match access {
        Access::Public => "No key needed.".into(),
        Access::Master => "Requires the master key (admin API, docs/administration.md).".into(),
        Access::AnyKey => "Requires any usable org API key, whatever its scopes.".into(),
        Access::Key(required) => format!("Requires an org API key with scope `{required}`."),
    }
}

/// Every write with a key or the master key takes an `Idempotency-Key` (docs/api/idempotency.md);
/// the public browser endpoints take none.
fn takes_idempotency_key(spec: &RouteSpec) -> bool {
    spec.method != Method::GET && !matches!(spec.access, Access::Public)
}

fn idempotency_key() -> Parameter {
    ParameterBuilder::new()
        .name(IDEMPOTENCY_KEY)
        .parameter_in(ParameterIn::Header)
        .required(utoipa::openapi::Required::False)
        .description(Some(
            "Makes a retry safe: a request with the key of an earlier successful one (same \
             method, path and JSON body) is answered with that response, marked \
             `Idempotent-Replayed: true`, and writes nothing; the key used for another request \
             is 409 IDEMPOTENCY_CONFLICT. Keys belong to the API key that sends them and are \
             kept for `idempotency.retention_hours`. 1 to 255 printable ASCII characters; HTTP \
             drops spaces around a header value, so none may start or end it.",
        ))
        .schema(Some(
            string()
                .min_length(Some(1))
                .max_length(Some(crate::org_owned::idempotency::MAX_KEY_CHARS))
                .pattern(Some("^[!-~]([ -~]*[!-~])?$")),
        ))
        .build()
}

fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// What one route takes and answers beyond what the table says.
struct Contract {
    /// The component name of the request body, if the route reads one.
    body: Option<&'static str>,
    /// The body may be left out altogether.
    body_optional: bool,
    /// The success status and whether its body is a page (`{data, cursor, has_more}`).
    success: u16,
    paged: bool,
    /// 404 codes of objects named in the body rather than the path.
    body_refs: &'static [ErrorCode],
    /// 409 `SLUG_CONFLICT` is possible.
    slug: bool,
    /// 409 `LIMIT_REACHED`: a plainly listed kind, capped per project.
    capped: bool,
}

fn contract(method: &Method, path: &str) -> Contract {
    let tail = path
        .strip_prefix("/api/v1/projects/{project_id}")
        .or_else(|| path.strip_prefix("/api/v1/orgs/{org_id}"))
        .unwrap_or(path);
    let plain = Contract {
        body: None,
        body_optional: false,
        success: 200,
        paged: false,
        body_refs: &[],
        slug: false,
        capped: false,
    };
    let create = |body| Contract {
        body: Some(body),
        success: 201,
        ..plain
    };
    let update = |body| Contract {
        body: Some(body),
        ..plain
    };
    let agent = |body| Contract {
        body: Some(body),
        body_refs: &[ErrorCode::ConversationNotFound],
        ..plain
    };
    let paged = Contract {
        paged: true,
        ..plain
    };
    match (method.as_str(), tail) {
        ("POST", "/api/v1/admin/orgs") => create("OrgCreate"),
        // Reads no body; answers 201 with the new file.
        ("POST", "/api/v1/admin/backup") => Contract {
            success: 201,
            ..plain
        },
        ("POST", "/api/v1/admin/orgs/{org_id}/keys") | ("POST", "/keys") => create("KeyCreate"),
        ("GET", "/audit-log") => paged,
        ("POST", "/projects") => Contract {
            slug: true,
            ..create("ProjectCreate")
        },
        ("PATCH", "/projects/{project_id}") => update("ProjectUpdate"),
        ("GET", "/conversations" | "/conversations/{conversation_id}/messages") => paged,
        ("POST", "/conversations") => Contract {
            body_refs: &[ErrorCode::ContactNotFound],
            ..create("ConversationCreate")
        },
        ("PATCH", "/conversations/{conversation_id}") => update("ConversationUpdate"),
        ("POST", "/conversations/{conversation_id}/messages") => create("MessageCreate"),
        ("GET", "/contacts" | "/kb/articles") => paged,
        ("POST", "/contacts") => create("ContactUpsert"),
        ("PATCH", "/contacts/{contact_id}") => update("ContactUpdate"),
        ("POST", "/kb/articles") => create("ArticleCreate"),
        ("PATCH", "/kb/articles/{kb_article_id}") => update("ArticleUpdate"),
        ("PATCH", "/integrations/{provider}/lifecycle") => update("LifecycleUpdate"),
        ("POST", "/api/v1/admin/projects/{project_id}/integrations/{provider}") => Contract {
            body_optional: true,
            ..create("IntegrationInstall")
        },
        ("POST", "/webhooks") => Contract {
            capped: true,
            ..create("WebhookCreate")
        },
        ("PATCH", "/webhooks/{webhook_id}") => update("WebhookUpdate"),
        ("PATCH", "/widget/config") => update("WidgetUpdate"),
        ("PATCH", "/agent/config") => update("AgentConfigUpdate"),
        ("POST", "/agent/respond") => agent("AgentRespond"),
        ("POST", "/agent/classify" | "/agent/suggest") => agent("AgentTask"),
        ("POST", "/forms") => Contract {
            slug: true,
            capped: true,
            ..create("FormCreate")
        },
        ("PATCH", "/forms/{form_id}") => Contract {
            slug: true,
            ..update("FormUpdate")
        },
        // 200, as the docs have it (docs/api/forms-and-beacons.md); an HTML form post is answered
        // 303 instead.
        ("POST", SUBMIT | SUBMIT_V1) => update("FormSubmission"),
        ("POST", "/beacons") => Contract {
            body_refs: &[ErrorCode::ResourceNotFound],
            capped: true,
            ..create("BeaconCreate")
        },
        ("PATCH", "/beacons/{beacon_id}") => Contract {
            body_refs: &[ErrorCode::ResourceNotFound],
            ..update("BeaconUpdate")
        },
        _ => plain,
    }
}

/// A response type of the server, derived with `utoipa::ToSchema` beside its type.
#[derive(Clone, Copy)]
struct View {
    name: fn() -> std::borrow::Cow<'static, str>,
    register: fn(&mut Vec<(String, RefOr<Schema>)>),
}

fn view<T: ToSchema>() -> View {
    fn register<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
        T::schemas(out);
        out.push((T::name().into_owned(), T::schema()));
    }
    View {
        name: T::name,
        register: register::<T>,
    }
}

/// What a success body's `data` holds.
#[derive(Clone, Copy)]
enum Data {
    One(View),
    OneOrNull(View),
    /// A plain list `{data: [...]}` or the items of a page.
    List(View),
    /// A small object the handler writes in place (`{id, deleted}` and the like).
    Object(&'static [&'static str]),
}

impl Data {
    fn view(self) -> Option<View> {
        match self {
            Data::One(v) | Data::OneOrNull(v) | Data::List(v) => Some(v),
            Data::Object(_) => None,
        }
    }

    fn schema(self) -> Schema {
        let reference = |v: View| Ref::from_schema_name((v.name)());
        match self {
            Data::One(v) => AllOfBuilder::new().item(reference(v)).into(),
            Data::OneOrNull(v) => utoipa::openapi::schema::OneOfBuilder::new()
                .item(reference(v))
                .item(ObjectBuilder::new().schema_type(Type::Null))
                .into(),
            Data::List(v) => ArrayBuilder::new().items(reference(v)).into(),
            Data::Object(fields) => {
                let mut object = object();
                for field in fields {
                    object = object.property(*field, any()).required(*field);
                }
                object.into()
            }
        }
    }
}

/// The `data` of each route's success body.
fn data(method: &Method, path: &str) -> Data {
    use crate::org_owned::{api_key, audit, org, project};
    use crate::project_owned::webhooks::{delivery_log, dispatch, webhook};
    use crate::project_owned::{
        agent, contact, conversation, form, form_submission, integration, kb, message,
    };
    let tail = path
        .strip_prefix("/api/v1/projects/{project_id}")
        .or_else(|| path.strip_prefix("/api/v1/orgs/{org_id}"))
        .unwrap_or(path);
    let kind = |plural: &str| -> Option<(View, bool)> {
        Some(match plural {
            "projects" => (view::<project::ProjectView>(), false),
            "conversations" => (view::<conversation::ConversationView>(), true),
            "contacts" => (view::<contact::ContactView>(), true),
            "kb/articles" => (view::<kb::ArticleView>(), true),
            "webhooks" => (view::<webhook::WebhookView>(), false),
            "forms" => (view::<form::FormView>(), false),
            "beacons" => (view::<beacon::BeaconView>(), false),
            _ => return None,
        })
    };
    let get = *method == Method::GET;
    match (method.as_str(), tail) {
        ("GET", "/api/v1/admin/orgs") => Data::List(view::<org::OrgView>()),
        ("POST", "/api/v1/admin/backup") => Data::One(view::<super::admin::BackupView>()),
        ("POST", "/api/v1/admin/orgs") => Data::One(view::<org::OrgView>()),
        ("POST", "/api/v1/admin/orgs/{org_id}/keys" | "/keys") => {
            Data::One(view::<api_key::CreatedKeyView>())
        }
        ("GET", "/keys") => Data::List(view::<api_key::ApiKeyView>()),
        ("DELETE", "/keys/{key_id}") => Data::Object(&["id", "revoked", "already_revoked"]),
        ("GET", "/api/v1/auth/whoami") => Data::One(view::<api_key::ApiKeyView>()),
        ("GET", "/audit-log") => Data::List(view::<audit::AuditEntryView>()),
        ("GET", "/projects/{project_id}/contents") => {
            Data::One(view::<super::projects::RecordCounts>())
        }
        ("POST", "/webhooks") => Data::One(view::<webhook::CreatedWebhook>()),
        ("GET", "/conversations/{conversation_id}/messages") => {
            Data::List(view::<message::MessageView>())
        }
        ("POST", "/conversations/{conversation_id}/messages") => {
            Data::One(view::<message::MessageView>())
        }
        ("GET", "/kb/search") => Data::List(view::<super::kb::SearchHit>()),
        ("POST", "/kb/articles/{kb_article_id}/publish") => Data::One(view::<kb::ArticleView>()),
        ("GET", "/integrations") => Data::List(view::<integration::IntegrationView>()),
        ("GET", "/integrations/catalog") => Data::List(view::<integration::CatalogEntry>()),
        ("GET", "/integrations/catalog/{provider}") => {
            Data::One(view::<integration::CatalogEntry>())
        }
        ("POST", "/integrations/{provider}/install-url") => {
            Data::One(view::<integration::InstallUrl>())
        }
        ("PATCH", "/integrations/{provider}/lifecycle") => {
            Data::OneOrNull(view::<integration::IntegrationView>())
        }
        ("DELETE", "/integrations/{provider}")
        | ("POST", "/api/v1/admin/projects/{project_id}/integrations/{provider}") => {
            Data::One(view::<integration::IntegrationView>())
        }
        ("POST", "/webhooks/{webhook_id}/test") => Data::One(view::<dispatch::TestResult>()),
        ("GET", "/webhooks/{webhook_id}/deliveries") => {
            Data::List(view::<delivery_log::WebhookDeliveryView>())
        }
        ("POST", "/webhooks/{webhook_id}/rotate-secret") => {
            Data::One(view::<super::webhooks::Rotated>())
        }
        ("GET" | "PATCH", "/widget/config") => Data::One(view::<widget::WidgetConfigView>()),
        ("GET", "/agent/status") => Data::One(view::<agent::AgentStatus>()),
        ("GET" | "PATCH", "/agent/config") => Data::One(view::<agent::AgentConfig>()),
        ("POST", "/agent/respond") => Data::One(view::<agent::RespondResult>()),
        ("POST", "/agent/classify") => {
            Data::One(view::<crate::project_owned::agent::classify::Classification>())
        }
        ("POST", "/agent/suggest") => Data::One(view::<agent::SuggestResult>()),
        ("GET", "/forms/{form_id}/submissions") => {
            Data::List(view::<form_submission::FormSubmissionView>())
        }
        ("POST", SUBMIT | SUBMIT_V1) => Data::One(view::<super::forms::SubmitResult>()),
        ("GET", FORM_SCHEMA) => Data::One(view::<form::PublicFormView>()),
        ("GET", BEACON_CONFIG) => Data::One(view::<beacon::PublicBeaconView>()),
        (_, t) if t.ends_with("/archive") || t.ends_with("/unarchive") => {
            Data::Object(&["id", "archived"])
        }
        ("DELETE", _) => Data::Object(&["id", "deleted"]),
        (_, t) => {
            let plural = t.trim_start_matches('/');
            let (collection, is_item) = match plural.rsplit_once("/{") {
                Some((collection, _)) => (collection, true),
                None => (plural, false),
            };
            match kind(collection) {
                Some((v, _)) if get && !is_item => Data::List(v),
                Some((v, _)) => Data::One(v),
                None => Data::Object(&[]),
            }
        }
    }
}

/// The success response and one response per error status, each listing the codes the route
/// can answer with at that status (docs/api/errors.md).
fn responses(spec: &RouteSpec, contract: &Contract) -> utoipa::openapi::Responses {
    let data = if contract.paged {
        ObjectBuilder::new()
            .property("data", data(&spec.method, spec.path).schema())
            .property(
                "cursor",
                ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])),
            )
            .property("has_more", ObjectBuilder::new().schema_type(Type::Boolean))
            .required("data")
            .required("cursor")
            .required("has_more")
            .into()
    } else if spec.path == "/healthz" {
        ObjectBuilder::new()
            .property("status", string())
            .required("status")
            .into()
    } else if spec.path == "/api/v1/openapi.json" {
        Schema::Object(ObjectBuilder::new().build())
    } else {
        ObjectBuilder::new()
            .property("data", data(&spec.method, spec.path).schema())
            .required("data")
            .into()
    };
    let mut success = with_request_id(ResponseBuilder::new().description("Success").content(
        "application/json",
        ContentBuilder::new().schema(Some(data)).build(),
    ));
    if takes_idempotency_key(spec) {
        success = success
            .header(
                "Idempotent-Replayed",
                HeaderBuilder::new()
                    .schema(string().enum_values(Some(["true"])))
                    .description(Some(
                        "`true` on a response replayed for a repeated Idempotency-Key.",
                    ))
                    .build(),
            )
            .header(
                "Idempotency-Key-Age",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    )
                    .description(Some("On a replay: seconds since the response was stored."))
                    .build(),
            );
    }
    let mut responses = ResponsesBuilder::new().response(contract.success.to_string(), success);
    for (status, codes) in error_codes(spec, contract) {
        responses = responses.response(
            status.to_string(),
            with_request_id(
                ResponseBuilder::new()
                    .description(
                        codes
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(error_schema(Some(&codes))))
                            .build(),
                    ),
            ),
        );
    }
    if spec.path == "/healthz" {
        let degraded = ObjectBuilder::new()
            .property("status", string().enum_values(Some(["degraded"])))
            .property("reason", string())
            .required("status")
            .required("reason");
        responses = responses.response(
            "503",
            with_request_id(
                ResponseBuilder::new()
                    .description("The store cannot commit writes now: a full or failing disk")
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(degraded)).build(),
                    ),
            ),
        );
    }
    responses.build()
}

fn with_request_id(response: ResponseBuilder) -> ResponseBuilder {
    response.header(
        "X-Request-Id",
        HeaderBuilder::new()
            .schema(string())
            .description(Some("The request's id, repeated in error bodies."))
            .build(),
    )
}

/// The error codes a route can answer, grouped by the status the code table gives each.
fn error_codes(spec: &RouteSpec, contract: &Contract) -> BTreeMap<u16, Vec<ErrorCode>> {
    use ErrorCode::*;
    let path = spec.path;
    let mut codes = vec![BadRequest];
    if contract.body.is_some() {
        codes.push(BadJson);
        if spec.method == Method::PATCH {
            codes.push(NoUpdates);
        }
    }
    match spec.access {
        Access::Public => {}
        Access::Master => codes.extend([Unauthorized, Forbidden]),
        Access::AnyKey => codes.push(Unauthorized),
        Access::Key(_) => {
            codes.extend([Unauthorized, InsufficientScope]);
            if path.contains("{org_id}") {
                codes.push(ApiKeyOrgMismatch);
            }
            if path.contains("{project_id}") {
                codes.push(ApiKeyProjectMismatch);
            }
        }
    }
    codes.push(ResourceNotFound);
    if path.contains("{project_id}") {
        codes.push(ProjectNotFound);
    }
    for kind in KINDS {
        if path.contains(&format!("{{{}_id}}", kind.singular)) {
            codes.push(kind.not_found);
        }
    }
    codes.extend(contract.body_refs);
    if contract.slug {
        codes.push(SlugConflict);
    }
    if contract.capped {
        codes.push(LimitReached);
    }
    if takes_idempotency_key(spec) {
        codes.push(IdempotencyConflict);
    }
    match path {
        // A form whose `public_api` is off, or (submitting) an origin it does not allow.
        SUBMIT | SUBMIT_V1 | FORM_SCHEMA => codes.extend([Forbidden, FormArchived]),
        BEACON_CONFIG => codes.push(BeaconArchived),
        _ => {}
    }
    if path.starts_with("/api/") {
        codes.push(RateLimited);
    }
    codes.push(InternalError);
    // Every route that reads or writes the store; `/healthz` says so in its own body.
    if !matches!(path, "/healthz" | "/api/v1/openapi.json") {
        codes.push(StorageUnavailable);
    }
    // A write that kept conflicting on a shared database (PostgreSQL).
    if spec.method != Method::GET {
        codes.push(ServiceUnavailable);
    }
    let mut by_status = BTreeMap::<u16, Vec<ErrorCode>>::new();
    for code in codes {
        let listed = by_status.entry(code.status()).or_default();
        if !listed.contains(&code) {
            listed.push(code);
        }
    }
    by_status
}

/// The query parameters each list or search reads (docs/api/README.md).
fn query_parameters(method: &Method, path: &str) -> Vec<Parameter> {
    if *method != Method::GET {
        return Vec::new();
    }
    let tail = path
        .strip_prefix("/api/v1/projects/{project_id}")
        .or_else(|| path.strip_prefix("/api/v1/orgs/{org_id}"))
        .unwrap_or(path);
    // An empty value is no value (`QueryParams`), so each restricted parameter also takes "".
    let paging = || {
        vec![
            limit(),
            query(
                "cursor",
                string().pattern(Some(format!("^$|{CURSOR_PATTERN}"))),
            ),
        ]
    };
    let sorting = || {
        vec![
            query("sort", names(&["", "created_at", "updated_at"])),
            query("order", names(&["", "asc", "desc"])),
        ]
    };
    let filter = |name: &str| query(name, text(SHORT_TEXT_MAX));
    match tail {
        "/conversations" => [
            paging(),
            sorting(),
            vec![
                query("status", wire_or_empty(Status::VALUES)),
                query("priority", wire_or_empty(Priority::VALUES)),
                query("channel", wire_or_empty(Channel::VALUES)),
                filter("assigned_to"),
                filter("contact_id"),
                filter("q"),
            ],
        ]
        .concat(),
        "/conversations/{conversation_id}/messages" => paging(),
        "/contacts" => [
            paging(),
            vec![filter("q"), filter("email"), filter("external_id")],
        ]
        .concat(),
        "/kb/articles" => [
            paging(),
            sorting(),
            vec![
                query("status", wire_or_empty(ArticleStatus::VALUES)),
                filter("category"),
                filter("q"),
            ],
        ]
        .concat(),
        "/kb/search" => vec![
            ParameterBuilder::from(query(
                "q",
                string()
                    .pattern(Some(NOT_BLANK))
                    .max_length(Some(MAX_QUERY_CHARS)),
            ))
            .required(utoipa::openapi::Required::True)
            .build(),
        ],
        "/integrations/catalog" => vec![
            filter("q"),
            filter("category"),
            query("status", names(&["", "installed", "available"])),
        ],
        "/forms/{form_id}/submissions" => vec![limit()],
        "/audit-log" => [
            paging(),
            vec![
                query("project_id", string()),
                query("action", string()),
                query("api_key_id", string()),
            ],
        ]
        .concat(),
        _ => Vec::new(),
    }
}

fn query(name: &str, schema: impl Into<RefOr<Schema>>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(utoipa::openapi::Required::False)
        .schema(Some(schema))
        .build()
}

/// `limit`: any integer of at least 1 in decimal digits, however large: above the list's
/// maximum it is clamped (docs/api/README.md). Empty is no value.
fn limit() -> Parameter {
    query(
        "limit",
        string()
            .pattern(Some("^([ \\t\\n\\f\\r]*0*[1-9][0-9]*[ \\t\\n\\f\\r]*)?$"))
            .description(Some(
                "An integer of at least 1; above the maximum it is clamped.",
            )),
    )
}

// ---- Schema vocabulary: each helper states what one of `validate`'s readers accepts. ----

/// Rust's `char::is_whitespace`, the set that `str::trim` removes, as a regex class body.
const WHITESPACE: &str =
    r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Some character that is not whitespace (`validate::non_blank`).
const NOT_BLANK: &str =
    r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn any() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .build(),
    )
}

/// `validate::text`: at most `max` characters, kept as sent.
fn text(max: usize) -> ObjectBuilder {
    string().max_length(Some(max))
}

/// `validate::non_blank`: not only whitespace, at most `max` characters as sent.
fn content(max: usize) -> ObjectBuilder {
    string().pattern(Some(NOT_BLANK)).max_length(Some(max))
}

/// `validate::trimmed(1, max)`: 1 to `max` characters once leading and trailing whitespace is
/// trimmed (docs/api/README.md), so the bound is on the trimmed part.
fn trimmed(max: usize) -> ObjectBuilder {
    let ws = format!("[{WHITESPACE}]");
    let solid = format!("[^{WHITESPACE}]");
    string().pattern(Some(format!(
        "^{ws}*{solid}([\\s\\S]{{0,{}}}{solid})?{ws}*$",
        max.saturating_sub(2)
    )))
}

fn names(values: &[&str]) -> ObjectBuilder {
    string().enum_values(Some(values.iter().copied()))
}

/// A query parameter's enum: its values, or "", which is no value.
fn wire_or_empty<T>(values: &[(&str, T)]) -> ObjectBuilder {
    string().enum_values(Some(
        std::iter::once("").chain(values.iter().map(|(name, _)| *name)),
    ))
}

fn wire<T>(values: &[(&str, T)]) -> ObjectBuilder {
    string().enum_values(Some(values.iter().map(|(name, _)| *name)))
}

fn boolean() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Boolean)
}

fn object() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Object)
}

/// A JSON object of at most `bytes` bytes of JSON: JSON Schema has no keyword for a size in
/// bytes, so the cap is stated in words.
fn capped_object(bytes: usize) -> ObjectBuilder {
    object().description(Some(format!("At most {bytes} bytes as JSON.")))
}

fn integer(min: u64, max: u64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min))
        .maximum(Some(max))
}

/// A string field whose `null` is a value ("string or null", docs/api/README.md).
fn or_null(schema: ObjectBuilder) -> ObjectBuilder {
    schema.schema_type(SchemaType::from_iter([Type::String, Type::Null]))
}

fn items(schema: impl Into<RefOr<Schema>>) -> ArrayItems {
    ArrayItems::RefOrSchema(Box::new(schema.into()))
}

fn array(items: impl Into<RefOr<Schema>>, min: usize, max: usize) -> ArrayBuilder {
    ArrayBuilder::new()
        .items(self::items(items))
        .min_items(Some(min))
        .max_items(Some(max))
}

/// A create body: the listed properties, `required` among them; unknown keys are ignored
/// (docs/api/README.md), so they are allowed.
fn create_body(properties: Vec<(&str, RefOr<Schema>)>, required: &[&str]) -> ObjectBuilder {
    let mut schema = object();
    for (name, property) in properties {
        schema = schema.property(name, property);
    }
    for name in required {
        schema = schema.required(*name);
    }
    schema
}

/// A create body whose fields are all optional: `null` as the whole body is no body, `{}`
/// (docs/api/README.md), so it is valid too.
fn optional_body(properties: Vec<(&str, RefOr<Schema>)>) -> ObjectBuilder {
    create_body(properties, &[]).schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
}

/// A PATCH body: at least one of the listed properties, since a body without any is
/// `NO_UPDATES`; unknown keys are ignored as on a create.
fn patch_body(properties: Vec<(&str, RefOr<Schema>)>) -> Schema {
    patch_with(properties, Vec::new())
}

/// A PATCH body that must also satisfy each group of `alternatives`.
fn patch_with(
    properties: Vec<(&str, RefOr<Schema>)>,
    mut alternatives: Vec<Vec<Schema>>,
) -> Schema {
    let names: Vec<String> = properties.iter().map(|(n, _)| n.to_string()).collect();
    alternatives.insert(
        0,
        names
            .into_iter()
            .map(|name| object().required(name).into())
            .collect(),
    );
    all_of(create_body(properties, &[]), alternatives)
}

/// A lowercase slug: 2-50 characters, single hyphens between letters and digits.
fn slug() -> ObjectBuilder {
    string()
        .pattern(Some("^[a-z0-9]+(-[a-z0-9]+)*$"))
        .min_length(Some(2))
        .max_length(Some(50))
}

/// An RFC 1123 hostname, single labels included, any case (docs/api/README.md).
fn domain() -> ObjectBuilder {
    let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    string()
        .pattern(Some(format!("^{label}(\\.{label})*$")))
        .max_length(Some(253))
}

/// `<vendor>/<model>`: both parts non-empty, no whitespace.
fn ai_model() -> ObjectBuilder {
    let solid = format!("[^{WHITESPACE}]");
    let vendor = format!("[^/{WHITESPACE}]");
    string()
        .pattern(Some(format!("^{vendor}+/{solid}+$")))
        .max_length(Some(SHORT_TEXT_MAX))
}

fn hex_color() -> ObjectBuilder {
    string().pattern(Some("^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$"))
}

/// An IPv6 address in hex groups (`values::is_ipv6_literal`).
const IPV6: &str = "(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|\
     ([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|\
     ([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|\
     ([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:((:[0-9a-fA-F]{1,4}){1,6})|\
     :((:[0-9a-fA-F]{1,4}){1,7}|:))";

/// An absolute http(s) URL with a host, no whitespace or control characters, ≤ 2048; brackets
/// in the authority only around one IPv6 address.
fn http_url() -> ObjectBuilder {
    let plain = format!("[^{WHITESPACE}\\u0000-\\u001f\\u007f-\\u009f]");
    let host = format!("[^/?#\\[\\]{WHITESPACE}\\u0000-\\u001f\\u007f-\\u009f]");
    string()
        .pattern(Some(format!(
            "^[Hh][Tt][Tt][Pp][Ss]?://({host}*\\[{IPV6}\\]{host}*|{host}+)([/?#]{plain}*)?$"
        )))
        .max_length(Some(2048))
}

/// `scheme://host[:port]`, http or https.
fn origin() -> ObjectBuilder {
    let port =
        "0*([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
    string()
        .pattern(Some(format!(
            "^[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*|\\[{IPV6}\\])(:{port})?$"
        )))
        .max_length(Some(SHORT_TEXT_MAX))
}

fn email() -> ObjectBuilder {
    let part = format!("[^@.{WHITESPACE}]");
    let local = format!("[^@{WHITESPACE}]");
    string()
        .pattern(Some(format!("^{local}+@{part}+(\\.{part}+)+$")))
        .max_length(Some(SHORT_TEXT_MAX))
}

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

fn tags() -> ArrayBuilder {
    array(trimmed(50), 0, 50)
}

fn origins() -> ArrayBuilder {
    array(origin(), 0, crate::project_owned::values::MAX_ORIGINS)
}

/// An object's own keywords and, for each group, `anyOf` the group's alternatives.
fn all_of(base: ObjectBuilder, groups: Vec<Vec<Schema>>) -> Schema {
    let mut all = AllOfBuilder::new().item(base);
    for group in groups {
        let mut any = AnyOfBuilder::new();
        for alternative in group {
            any = any.item(alternative);
        }
        all = all.item(any);
    }
    all.into()
}

/// An object whose `key`, when present, is one of `values`.
fn when(key: &str, values: &[&str]) -> Schema {
    object().property(key, names(values)).into()
}

/// An object whose `key` is present and a string.
fn has_string(key: &str) -> Schema {
    object().property(key, string()).required(key).into()
}

/// Every request body, by component name.
fn bodies() -> Vec<(&'static str, Schema)> {
    let p = |name: &'static str, schema: ObjectBuilder| (name, RefOr::T(schema.into()));
    let pa = |name: &'static str, schema: ArrayBuilder| (name, RefOr::T(schema.into()));
    let org = create_body(vec![p("name", trimmed(100))], &["name"]);
    let key = create_body(
        vec![
            p("name", trimmed(100)),
            pa(
                "scopes",
                array(string().enum_values(Some(every_scope())), 1, 64),
            ),
            p("tier", wire(Tier::VALUES)),
            p(
                "expires_at",
                string()
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::DateTime,
                    )))
                    .description(Some(
                        "RFC 3339, in the future; a past time is refused with 400",
                    )),
            ),
        ],
        &["name", "scopes"],
    );
    // Without a slug, one is derived from the name, which needs two letters or digits.
    let project_create = all_of(
        create_body(
            vec![
                p("name", trimmed(100)),
                p("slug", slug()),
                p("domain", domain()),
            ],
            &["name"],
        ),
        vec![vec![
            object().required("slug").into(),
            object()
                .property(
                    "name",
                    string().pattern(Some("[A-Za-z0-9][\\s\\S]*[A-Za-z0-9]")),
                )
                .into(),
        ]],
    );
    let project_update = patch_body(vec![
        p("name", trimmed(100)),
        p("domain", or_null(domain())),
        p("agent_mode", wire(AgentMode::VALUES)),
        p("ai_model", or_null(ai_model())),
    ]);
    let conversation_create = optional_body(vec![
        p("subject", text(SHORT_TEXT_MAX)),
        p("contact_id", text(SHORT_TEXT_MAX)),
        p("channel", wire(Channel::VALUES)),
        p("priority", wire(Priority::VALUES)),
        pa("tags", tags()),
    ]);
    let conversation_update = patch_body(vec![
        p("subject", text(SHORT_TEXT_MAX)),
        p("status", wire(Status::VALUES)),
        p("priority", wire(Priority::VALUES)),
        p("assigned_to", or_null(trimmed(SHORT_TEXT_MAX))),
        pa("tags", tags()),
    ]);
    let message = create_body(
        vec![
            p("content", content(LONG_TEXT_MAX)),
            p("sender_type", names(&["agent", "system"])),
            p("is_internal", boolean()),
        ],
        &["content"],
    );
    let contact_fields = |clearable: bool| {
        let maybe = |schema: ObjectBuilder| if clearable { or_null(schema) } else { schema };
        vec![
            p("email", maybe(email())),
            p("name", maybe(trimmed(SHORT_TEXT_MAX))),
            p("phone", maybe(text(SHORT_TEXT_MAX))),
            p("external_id", maybe(text(SHORT_TEXT_MAX))),
            p("company", maybe(text(SHORT_TEXT_MAX))),
            p("job_title", maybe(text(SHORT_TEXT_MAX))),
            p("metadata", object()),
        ]
    };
    let contact_upsert = all_of(
        create_body(contact_fields(false), &[]),
        vec![vec![
            has_string("email"),
            has_string("name"),
            has_string("external_id"),
        ]],
    );
    let contact_update = patch_body(contact_fields(true));
    let article_fields = || {
        vec![
            p("title", trimmed(SHORT_TEXT_MAX)),
            p("content", content(LONG_TEXT_MAX)),
            p("category", text(SHORT_TEXT_MAX)),
            p("status", wire(ArticleStatus::VALUES)),
            p("is_public", boolean()),
        ]
    };
    let article_create = create_body(article_fields(), &["title", "content"]);
    let article_update = patch_body(article_fields());
    let lifecycle = patch_body(vec![
        p("status", names(&["active", "paused"])),
        p("display_name", trimmed(SHORT_TEXT_MAX)),
        p("sidebar_enabled", boolean()),
        p("settings", capped_object(MAX_OBJECT_BYTES)),
        p("action_permissions", capped_object(MAX_OBJECT_BYTES)),
    ]);
    let install = optional_body(vec![
        p("display_name", trimmed(SHORT_TEXT_MAX)),
        p("settings", capped_object(MAX_OBJECT_BYTES)),
    ]);
    let webhook_create = create_body(
        vec![
            p("url", webhook_url()),
            pa("events", array(event_pattern(), 1, 50)),
        ],
        &["url", "events"],
    );
    let webhook_update = patch_body(vec![
        p("url", webhook_url()),
        pa("events", array(event_pattern(), 1, 50)),
        p("status", wire(WebhookStatus::VALUES)),
    ]);
    let widget_update = widget_update();
    let agent_config = patch_body(vec![
        p("agent_mode", wire(AgentMode::VALUES)),
        p("ai_model", or_null(ai_model())),
        (
            "confidence_threshold",
            RefOr::T(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0))
                    .maximum(Some(1))
                    .into(),
            ),
        ),
        p("settings", object()),
    ]);
    let respond = create_body(
        vec![
            p("conversation_id", text(SHORT_TEXT_MAX)),
            p("mode_override", wire(AgentMode::VALUES)),
        ],
        &["conversation_id"],
    );
    let task = create_body(
        vec![p("conversation_id", text(SHORT_TEXT_MAX))],
        &["conversation_id"],
    );
    let form_rule = vec![
        when("success_action", &["inline"]),
        has_string("redirect_url"),
    ];
    let form_create = all_of(
        create_body(form_fields(), &["name"]),
        vec![form_rule.clone()],
    );
    let form_update = patch_with(form_fields(), vec![form_rule]);
    let beacon_rule = || {
        vec![
            when("button_icon", &["chat", "mail", "help"]),
            has_string("custom_svg"),
        ]
    };
    let beacon_create = all_of(
        create_body(beacon_fields(), &["form_id"]),
        vec![beacon_rule()],
    );
    let beacon_update = patch_with(beacon_fields(), vec![beacon_rule()]);
    let submission = optional_body(Vec::new())
        .description(Some(
            "The form's field values by field name; an HTML form post is also accepted.",
        ))
        .into();
    vec![
        ("OrgCreate", org.into()),
        ("KeyCreate", key.into()),
        ("ProjectCreate", project_create),
        ("ProjectUpdate", project_update),
        ("ConversationCreate", conversation_create.into()),
        ("ConversationUpdate", conversation_update),
        ("MessageCreate", message.into()),
        ("ContactUpsert", contact_upsert),
        ("ContactUpdate", contact_update),
        ("ArticleCreate", article_create.into()),
        ("ArticleUpdate", article_update),
        ("LifecycleUpdate", lifecycle),
        ("IntegrationInstall", install.into()),
        ("WebhookCreate", webhook_create.into()),
        ("WebhookUpdate", webhook_update),
        ("WidgetUpdate", widget_update),
        ("AgentConfigUpdate", agent_config),
        ("AgentRespond", respond.into()),
        ("AgentTask", task.into()),
        ("FormCreate", form_create),
        ("FormUpdate", form_update),
        ("FormSubmission", submission),
        ("BeaconCreate", beacon_create),
        ("BeaconUpdate", beacon_update),
    ]
}

fn form_fields() -> Vec<(&'static str, RefOr<Schema>)> {
    let p = |name: &'static str, schema: ObjectBuilder| (name, RefOr::T(schema.into()));
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
            p("label", trimmed(SHORT_TEXT_MAX)),
            p("id", field_key()),
            p("name", field_key()),
            p("required", boolean()),
            p("placeholder", or_null(text(SHORT_TEXT_MAX))),
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
        p("name", trimmed(SHORT_TEXT_MAX)),
        p("slug", slug()),
        (
            "fields",
            RefOr::T(
                array(field, 0, MAX_FIELDS)
                    .description(Some("Field ids and names must be unique within the form."))
                    .into(),
            ),
        ),
        p("success_action", wire(SuccessAction::VALUES)),
        p("success_message", text(LONG_TEXT_MAX)),
        p("redirect_url", or_null(http_url())),
        ("allowed_origins", RefOr::T(origins().into())),
        p("rate_limit_per_ip", integer(1, MAX_RATE_LIMIT)),
        p("rate_limit_window_seconds", integer(1, MAX_WINDOW_SECONDS)),
        p("public_api", boolean()),
        p("submit_button_label", trimmed(SHORT_TEXT_MAX)),
        p("submit_button_align", wire(ButtonAlign::VALUES)),
        p("submit_button_color", or_null(hex_color())),
        p("show_title", boolean()),
        p("logo_url", or_null(http_url())),
    ]
}

fn beacon_fields() -> Vec<(&'static str, RefOr<Schema>)> {
    let p = |name: &'static str, schema: ObjectBuilder| (name, RefOr::T(schema.into()));
    vec![
        p("form_id", text(SHORT_TEXT_MAX)),
        p("docs_site_id", or_null(text(SHORT_TEXT_MAX))),
        p("position", wire(beacon::Position::VALUES)),
        p("primary_color", hex_color()),
        p("button_label", trimmed(SHORT_TEXT_MAX)),
        p("button_icon", wire(beacon::ButtonIcon::VALUES)),
        p(
            "custom_svg",
            or_null(text(LONG_TEXT_MAX).pattern(Some("[<][Ss][Vv][Gg]"))),
        ),
        p("greeting_title", trimmed(SHORT_TEXT_MAX)),
        p("greeting_text", text(LONG_TEXT_MAX)),
        ("allowed_origins", RefOr::T(origins().into())),
        p("ai_agent_enabled", boolean()),
        p("messages_enabled", boolean()),
        p("chat_enabled", boolean()),
        p("settings", capped_object(MAX_OBJECT_BYTES)),
    ]
}

/// The widget PATCH: the documented fields, plus any other key stored as sent (docs/api/README.md).
fn widget_update() -> Schema {
    let p = |name: &'static str, schema: ObjectBuilder| (name, RefOr::T(schema.into()));
    let mut schema = create_body(
        vec![
            p("enabled", boolean()),
            p("position", wire(widget::Position::VALUES)),
            p("color", hex_color()),
            p("welcome_message", text(LONG_TEXT_MAX)),
            p("show_branding", boolean()),
            p("theme", wire(widget::Theme::VALUES)),
            p("locale", string().pattern(Some("^[a-z]{2}$"))),
        ],
        &[],
    )
    .build();
    schema.min_properties = Some(1);
    // Read-only keys are ignored, so a body of only those would change nothing.
    schema.property_names = Some(Box::new(
        string()
            .pattern(Some(format!("^(?!({})$)", widget::READ_ONLY.join("|"))))
            .build()
            .into(),
    ));
    Schema::Object(schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::routes::table;

    #[test]
    fn every_route_names_the_type_of_its_data() {
        for spec in table() {
            if matches!(spec.path, "/healthz" | "/api/v1/openapi.json") {
                continue;
            }
            let data = data(&spec.method, spec.path);
            assert!(
                !matches!(data, Data::Object(fields) if fields.is_empty()),
                "{} {} has no response type in `data`",
                spec.method,
                spec.path
            );
        }
    }

    /// Two response types of one name (say two `Position` enums) must be the same schema, or
    /// the document would describe one of them wrongly.
    #[test]
    fn response_types_of_one_name_agree() {
        let mut views = Vec::new();
        for spec in table() {
            if let Some(view) = data(&spec.method, spec.path).view() {
                (view.register)(&mut views);
            }
        }
        let mut seen = std::collections::HashMap::new();
        for (name, schema) in views {
            let json = serde_json::to_string(&schema).unwrap();
            if let Some(earlier) = seen.insert(name.clone(), json.clone()) {
                assert_eq!(earlier, json, "two different schemas named {name}");
            }
        }
    }

    #[test]
    fn every_body_is_named_once() {
        let names: Vec<&str> = bodies().iter().map(|(n, _)| *n).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len());
    }

    #[test]
    fn the_document_serialises() {
        let json: serde_json::Value =
            serde_json::from_str(&document(&table()).to_json().unwrap()).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
    }
}
