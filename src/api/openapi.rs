//! The OpenAPI 3.1 document of the API, served at `GET /api/v1/openapi.json` without a key. Its
//! paths are the route table's rows (src/api/routes.rs), walked here: each row's method, path,
//! required scope and security come from the table itself, so the document cannot list a route
//! the server lacks or miss one it has. A kind served by the generic handlers declares its
//! contract beside its record (`Routed::ENDPOINTS`: request bodies, filters, the codes its bodies
//! can cause), and its rows carry that declaration here. Request bodies are written by hand, in
//! `crate::schema`'s vocabulary, because the server reads them field by field (`validate::Input`)
//! rather than through serde types; each schema states exactly what that reader accepts, so that
//! a fuzzer can check both ways. Those of the other routes are below.

use std::collections::BTreeMap;

use actix_web::http::Method;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use serde_json::json;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{
    AllOfBuilder, ArrayBuilder, ComponentsBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref,
};

use crate::api::access::{Access, OwnedRoute, RouteSpec};
use crate::api::browser::{BEACON_CONFIG, FORM_SCHEMA, SUBMIT, SUBMIT_V1};
use crate::api::extract::IDEMPOTENCY_KEY;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::pagination::CURSOR_PATTERN;
use crate::project_owned::registry::KINDS;
use crate::project_owned::routed::{Body, Standard};
use crate::project_owned::search::MAX_QUERY_CHARS;
use crate::project_owned::{beacon, widget};
use crate::schema::*;

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
    for body in table.iter().filter_map(|spec| spec.owned.as_ref()?.body()) {
        components = components.schema(body.name, (body.schema)());
    }
    let mut views = Vec::new();
    for spec in table {
        if let Some(view) = data(spec).view() {
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
    let contract = match &spec.owned {
        Some(owned) => owned.contract(),
        None => contract(&spec.method, spec.path),
    };
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
    for parameter in query_parameters(spec) {
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
        ("GET", "/conversations/{conversation_id}/messages") => paged,
        ("POST", "/conversations/{conversation_id}/messages") => create("MessageCreate"),
        ("PATCH", "/integrations/{provider}/lifecycle") => update("LifecycleUpdate"),
        ("POST", "/api/v1/admin/projects/{project_id}/integrations/{provider}") => Contract {
            body_optional: true,
            ..create("IntegrationInstall")
        },
        ("PATCH", "/widget/config") => update("WidgetUpdate"),
        ("PATCH", "/agent/config") => update("AgentConfigUpdate"),
        ("POST", "/agent/respond") => agent("AgentRespond"),
        ("POST", "/agent/classify" | "/agent/suggest") => agent("AgentTask"),
        // 200, as the docs have it (docs/api/forms-and-beacons.md); an HTML form post is answered
        // 303 instead.
        ("POST", SUBMIT | SUBMIT_V1) => update("FormSubmission"),
        _ => plain,
    }
}

/// What the document reads of a row generated from a kind's declaration.
impl OwnedRoute {
    fn body(&self) -> Option<Body> {
        match self.standard {
            Standard::Create => Some(self.endpoints.create),
            Standard::Update => Some(self.endpoints.update),
            _ => None,
        }
    }

    /// A plain list is capped per project, so a create can meet its cap.
    fn contract(&self) -> Contract {
        let body = self.body();
        let create = self.standard == Standard::Create;
        Contract {
            body: body.map(|b| b.name),
            body_optional: false,
            success: if create { 201 } else { 200 },
            paged: self.standard == Standard::List && self.paged,
            body_refs: body.map(|b| b.codes).unwrap_or_default(),
            slug: false,
            capped: create && !self.paged,
        }
    }

    fn data(&self) -> Data {
        match self.standard {
            Standard::List => Data::List(self.view),
            Standard::Create => Data::One(self.endpoints.created.unwrap_or(self.view)),
            Standard::Get | Standard::Update => Data::One(self.view),
            Standard::Delete => Data::Object(&["id", "deleted"]),
            Standard::Archive | Standard::Unarchive => Data::Object(&["id", "archived"]),
        }
    }

    fn query_parameters(&self) -> Vec<Parameter> {
        if self.standard != Standard::List {
            return Vec::new();
        }
        let mut parameters = Vec::new();
        if self.paged {
            parameters.extend(paging());
        }
        if self.sorted {
            parameters.extend(sorting());
        }
        parameters.extend((self.endpoints.filters)());
        parameters
    }
}

/// What a success body's `data` holds.
#[derive(Clone, Copy)]
enum Data {
    One(Named),
    OneOrNull(Named),
    /// A plain list `{data: [...]}` or the items of a page.
    List(Named),
    /// A small object the handler writes in place (`{id, deleted}` and the like).
    Object(&'static [&'static str]),
}

impl Data {
    fn view(self) -> Option<Named> {
        match self {
            Data::One(v) | Data::OneOrNull(v) | Data::List(v) => Some(v),
            Data::Object(_) => None,
        }
    }

    fn schema(self) -> Schema {
        let reference = |v: Named| Ref::from_schema_name((v.name)());
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
fn data(spec: &RouteSpec) -> Data {
    if let Some(owned) = &spec.owned {
        return owned.data();
    }
    let (method, path) = (&spec.method, spec.path);
    use crate::org_owned::{api_key, audit, org, project};
    use crate::project_owned::webhooks::{delivery_log, dispatch};
    use crate::project_owned::{agent, form, form_submission, integration, kb, message};
    let tail = path
        .strip_prefix("/api/v1/projects/{project_id}")
        .or_else(|| path.strip_prefix("/api/v1/orgs/{org_id}"))
        .unwrap_or(path);
    match (method.as_str(), tail) {
        ("GET", "/api/v1/admin/orgs") => Data::List(named::<org::OrgView>()),
        ("POST", "/api/v1/admin/backup") => Data::One(named::<super::admin::BackupView>()),
        ("POST", "/api/v1/admin/orgs") => Data::One(named::<org::OrgView>()),
        ("POST", "/api/v1/admin/orgs/{org_id}/keys" | "/keys") => {
            Data::One(named::<api_key::CreatedKeyView>())
        }
        ("GET", "/keys") => Data::List(named::<api_key::ApiKeyView>()),
        ("DELETE", "/keys/{key_id}") => Data::Object(&["id", "revoked", "already_revoked"]),
        ("GET", "/api/v1/auth/whoami") => Data::One(named::<api_key::ApiKeyView>()),
        ("GET", "/audit-log") => Data::List(named::<audit::AuditEntryView>()),
        ("GET", "/projects/{project_id}/contents") => {
            Data::One(named::<super::projects::RecordCounts>())
        }
        ("GET", "/conversations/{conversation_id}/messages") => {
            Data::List(named::<message::MessageView>())
        }
        ("POST", "/conversations/{conversation_id}/messages") => {
            Data::One(named::<message::MessageView>())
        }
        ("GET", "/kb/search") => Data::List(named::<super::kb::SearchHit>()),
        ("POST", "/kb/articles/{kb_article_id}/publish") => Data::One(named::<kb::ArticleView>()),
        ("GET", "/integrations") => Data::List(named::<integration::IntegrationView>()),
        ("GET", "/integrations/catalog") => Data::List(named::<integration::CatalogEntry>()),
        ("GET", "/integrations/catalog/{provider}") => {
            Data::One(named::<integration::CatalogEntry>())
        }
        ("POST", "/integrations/{provider}/install-url") => {
            Data::One(named::<integration::InstallUrl>())
        }
        ("PATCH", "/integrations/{provider}/lifecycle") => {
            Data::OneOrNull(named::<integration::IntegrationView>())
        }
        ("DELETE", "/integrations/{provider}")
        | ("POST", "/api/v1/admin/projects/{project_id}/integrations/{provider}") => {
            Data::One(named::<integration::IntegrationView>())
        }
        ("POST", "/webhooks/{webhook_id}/test") => Data::One(named::<dispatch::TestResult>()),
        ("GET", "/webhooks/{webhook_id}/deliveries") => {
            Data::List(named::<delivery_log::WebhookDeliveryView>())
        }
        ("POST", "/webhooks/{webhook_id}/rotate-secret") => {
            Data::One(named::<super::webhooks::Rotated>())
        }
        ("GET" | "PATCH", "/widget/config") => Data::One(named::<widget::WidgetConfigView>()),
        ("GET", "/agent/status") => Data::One(named::<agent::AgentStatus>()),
        ("GET" | "PATCH", "/agent/config") => Data::One(named::<agent::AgentConfig>()),
        ("POST", "/agent/respond") => Data::One(named::<agent::RespondResult>()),
        ("POST", "/agent/classify") => {
            Data::One(named::<crate::project_owned::agent::classify::Classification>())
        }
        ("POST", "/agent/suggest") => Data::One(named::<agent::SuggestResult>()),
        ("GET", "/forms/{form_id}/submissions") => {
            Data::List(named::<form_submission::FormSubmissionView>())
        }
        ("POST", SUBMIT | SUBMIT_V1) => Data::One(named::<super::forms::SubmitResult>()),
        ("GET", FORM_SCHEMA) => Data::One(named::<form::PublicFormView>()),
        ("GET", BEACON_CONFIG) => Data::One(named::<beacon::PublicBeaconView>()),
        ("DELETE", _) => Data::Object(&["id", "deleted"]),
        ("GET", "/projects") => Data::List(named::<project::ProjectView>()),
        (_, "/projects" | "/projects/{project_id}") => Data::One(named::<project::ProjectView>()),
        _ => Data::Object(&[]),
    }
}

/// The success response and one response per error status, each listing the codes the route
/// can answer with at that status (docs/api/errors.md).
fn responses(spec: &RouteSpec, contract: &Contract) -> utoipa::openapi::Responses {
    let data = if contract.paged {
        ObjectBuilder::new()
            .property("data", data(spec).schema())
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
            .property("data", data(spec).schema())
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

/// `limit` and `cursor`. An empty value is no value (`QueryParams`), so each restricted
/// parameter also takes "".
fn paging() -> Vec<Parameter> {
    vec![
        limit(),
        query(
            "cursor",
            string().pattern(Some(format!("^$|{CURSOR_PATTERN}"))),
        ),
    ]
}

/// `sort` and `order`, of a list that keeps both orderings.
fn sorting() -> Vec<Parameter> {
    vec![
        query("sort", names(&["", "created_at", "updated_at"])),
        query("order", names(&["", "asc", "desc"])),
    ]
}

/// The query parameters each list or search reads (docs/api/README.md).
fn query_parameters(spec: &RouteSpec) -> Vec<Parameter> {
    if let Some(owned) = &spec.owned {
        return owned.query_parameters();
    }
    let (method, path) = (&spec.method, spec.path);
    if *method != Method::GET {
        return Vec::new();
    }
    let tail = path
        .strip_prefix("/api/v1/projects/{project_id}")
        .or_else(|| path.strip_prefix("/api/v1/orgs/{org_id}"))
        .unwrap_or(path);
    let filter = text_filter;
    match tail {
        "/conversations/{conversation_id}/messages" => paging(),
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

/// The request bodies of the routes other than the kinds' generated ones, by component name;
/// each written beside the `Input` reader it describes.
fn bodies() -> Vec<(&'static str, Schema)> {
    use crate::org_owned::{api_key, org, project};
    use crate::project_owned::{agent, form_submission, integration, message, widget};
    vec![
        ("OrgCreate", org::openapi::create()),
        ("KeyCreate", api_key::openapi::create()),
        ("ProjectCreate", project::openapi::create()),
        ("ProjectUpdate", project::openapi::update()),
        ("MessageCreate", message::openapi::create()),
        ("LifecycleUpdate", integration::openapi::lifecycle()),
        ("IntegrationInstall", integration::openapi::install()),
        ("WidgetUpdate", widget::openapi::update()),
        ("AgentConfigUpdate", agent::openapi::config_update()),
        ("AgentRespond", agent::openapi::respond()),
        ("AgentTask", agent::openapi::task()),
        ("FormSubmission", form_submission::openapi::submission()),
    ]
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
            let data = data(&spec);
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
            if let Some(view) = data(&spec).view() {
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
        let declared = KINDS
            .iter()
            .filter_map(|kind| kind.endpoints)
            .flat_map(|endpoints| [endpoints.create.name, endpoints.update.name]);
        let names: Vec<&str> = bodies().iter().map(|(n, _)| *n).chain(declared).collect();
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
