//! The agent (docs/api/agent.md and the OpenAPI document). Its mode and model are the project's own
//! `agent_mode` and
//! `ai_model` (changed through `org_owned::project`, so both APIs show one value); its free-form
//! `settings` and its monthly usage are project-owned singletons.
//!
//! respond, classify and suggest run in three steps: `Context::load` reads everything the
//! agent needs in one read transaction; `think` asks the responder, outside any transaction;
//! `Outcome::commit` posts the reply (if the mode says so) and counts the call, in one write
//! transaction that checks the conversation again.

pub mod classify;
pub mod responder;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::codec::Record;
use crate::error::{ApiResult, ErrorCode};
use crate::ids::ProjectId;
use crate::org_owned::audit::Actor;
use crate::org_owned::project::{self, AgentMode, Domain, ProjectUpdate, check_ai_model};
use crate::project_owned::contact::Contact;
use crate::project_owned::conversation::Conversation;
use crate::project_owned::kb::{self, Article};
use crate::project_owned::message::{self, IN_CONVERSATION, Message, MessageCreate, SenderType};
use crate::project_owned::search::MAX_QUERY_CHARS;
use crate::project_owned::singleton::{self, ProjectConfig, Singleton};
use crate::project_owned::{self, Id, IndexEntry, Kind, Order, ProjectScope};
use crate::store::{Reader, Tx};
use crate::timestamp::Timestamp;
use crate::validate::{Check, Input, Patch, SHORT_TEXT_MAX, boolean, object, one_of, string, text};
use crate::view::record_view;

pub use classify::Classification;
pub use responder::{Reply, Responder, Usage};

/// Below this confidence an autopilot reply is held for review, unless the project's
/// `settings.confidence_threshold` says otherwise.
pub const DEFAULT_CONFIDENCE_THRESHOLD: f64 = 0.5;
/// How many of a conversation's latest messages the agent reads.
const TRANSCRIPT_MESSAGES: usize = 20;

/// The project's free-form agent settings (guardrails, tone, persona, `confidence_threshold`,
/// `enabled`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentSettings {
    pub id: String,
    pub project_id: ProjectId,
    /// JSON text of the settings object.
    pub settings: String,
}

impl Record for AgentSettings {
    const NAME: &'static str = "agent settings";
}

record_view! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct AgentSettingsView from AgentSettings {
        #[schema(value_type = String)]
        project_id: ProjectId,
        settings: Value = |settings| Value::Object(settings.object()),
    }
}

impl Kind for AgentSettings {
    const TAG: u8 = 0x06;
    const INDEX_TAGS: &'static [u8] = &[];
    const PLURAL: &'static str = "agent_settings";
    const SINGULAR: &'static str = "agent_settings";
    const ID_PREFIX: &'static str = "ags_";
    const NOT_FOUND: ErrorCode = ErrorCode::ResourceNotFound;
    type View = AgentSettingsView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        Ok(Vec::new())
    }
}

impl Singleton for AgentSettings {
    fn initial(scope: &ProjectScope, id: String) -> AgentSettings {
        AgentSettings {
            id,
            project_id: scope.project_id.clone(),
            settings: "{}".into(),
        }
    }
}

impl AgentSettings {
    fn object(&self) -> Map<String, Value> {
        singleton::stored_object(&self.settings)
    }

    /// On unless `settings.enabled` is `false`.
    pub fn enabled(&self) -> bool {
        self.object().get("enabled") != Some(&Value::Bool(false))
    }

    pub fn confidence_threshold(&self) -> f64 {
        self.object()
            .get("confidence_threshold")
            .and_then(Value::as_f64)
            .unwrap_or(DEFAULT_CONFIDENCE_THRESHOLD)
    }
}

/// The agent calls of the current calendar month (UTC); the first call of a new month starts
/// the counts again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentUsage {
    pub id: String,
    pub project_id: ProjectId,
    /// `YYYY-MM`; empty before the first call.
    pub month: String,
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

impl Record for AgentUsage {
    const NAME: &'static str = "agent usage";
}

record_view! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct AgentUsageView from AgentUsage {
        #[schema(value_type = String)]
        project_id: ProjectId,
        month: String,
        calls: u64,
        input_tokens: u64,
        output_tokens: u64,
        cost_usd: f64,
    }
}

impl Kind for AgentUsage {
    const TAG: u8 = 0x0d;
    const INDEX_TAGS: &'static [u8] = &[];
    const PLURAL: &'static str = "agent_usage";
    const SINGULAR: &'static str = "agent_usage";
    const ID_PREFIX: &'static str = "agu_";
    const NOT_FOUND: ErrorCode = ErrorCode::ResourceNotFound;
    type View = AgentUsageView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        Ok(Vec::new())
    }
}

impl Singleton for AgentUsage {
    fn initial(scope: &ProjectScope, id: String) -> AgentUsage {
        AgentUsage {
            id,
            project_id: scope.project_id.clone(),
            month: String::new(),
            calls: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
        }
    }
}

/// `YYYY-MM` of a moment, in UTC.
fn month_of(at: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(at.unix())
        .map(|t| format!("{:04}-{:02}", t.year(), u8::from(t.month())))
        .unwrap_or_default()
}

impl AgentUsage {
    fn this_month(&self, now: Timestamp) -> UsageThisMonth {
        if self.month != month_of(now) {
            return UsageThisMonth::default();
        }
        UsageThisMonth {
            calls: self.calls,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cost_usd: self.cost_usd,
        }
    }

    fn add(&mut self, now: Timestamp, usage: &Usage) {
        let month = month_of(now);
        if self.month != month {
            let reset = AgentUsage {
                id: self.id.clone(),
                project_id: self.project_id.clone(),
                month,
                calls: 0,
                input_tokens: 0,
                output_tokens: 0,
                cost_usd: 0.0,
            };
            *self = reset;
        }
        self.calls = self.calls.saturating_add(1);
        self.input_tokens = self.input_tokens.saturating_add(usage.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(usage.output_tokens);
        self.cost_usd += usage.cost_usd;
    }
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct UsageThisMonth {
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

/// AgentStatus (the OpenAPI document).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentStatus {
    pub enabled: bool,
    pub mode: AgentMode,
    pub model: String,
    pub domain: Option<Domain>,
    pub has_byom_key: bool,
    pub usage_this_month: UsageThisMonth,
}

/// AgentConfig (the OpenAPI document).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentConfig {
    pub project_name: String,
    pub agent_mode: AgentMode,
    pub ai_model: Option<String>,
    pub domain: Option<Domain>,
    pub has_byom_key: bool,
    pub settings: Value,
}

/// No per-project model keys exist here: every project uses the server's provider.
const HAS_BYOM_KEY: bool = false;

/// The project's model, or the server's default.
fn effective_model(ai_model: Option<&str>, default_model: &str) -> String {
    ai_model.unwrap_or(default_model).to_string()
}

pub fn status(
    reader: &impl Reader,
    scope: &ProjectScope,
    default_model: &str,
) -> ApiResult<AgentStatus> {
    let project = project::resolve(reader, &scope.org_id, &scope.project_id)?;
    let settings: AgentSettings = singleton::get(reader, scope)?;
    let usage: AgentUsage = singleton::get(reader, scope)?;
    Ok(AgentStatus {
        enabled: settings.enabled(),
        mode: project.agent_mode,
        model: effective_model(project.ai_model.as_deref(), default_model),
        domain: project.domain,
        has_byom_key: HAS_BYOM_KEY,
        usage_this_month: usage.this_month(Timestamp::now()),
    })
}

fn threshold(value: &Value) -> Check<f64> {
    let n = value
        .as_f64()
        .ok_or_else(|| "Expected number".to_string())?;
    if (0.0..=1.0).contains(&n) {
        Ok(n)
    } else {
        Err("Must be between 0 and 1".into())
    }
}

/// A key of `settings` that the server reads itself, checked when it is sent and not `null`.
fn check_setting<T>(
    input: &mut Input,
    settings: &Map<String, Value>,
    key: &str,
    check: impl Fn(&Value) -> Check<T>,
) {
    if let Some(Err(message)) = settings.get(key).filter(|v| !v.is_null()).map(check) {
        input.issue(&format!("settings.{key}"), message);
    }
}

/// The body of `PATCH …/agent/config`.
#[derive(Clone)]
pub struct ConfigUpdate {
    agent_mode: Option<AgentMode>,
    ai_model: Patch<String>,
    confidence_threshold: Option<f64>,
    settings: Option<Map<String, Value>>,
}

impl ConfigUpdate {
    /// `settings` merges by top-level key (`null` removes one); the keys the server reads
    /// itself, `confidence_threshold` and `enabled`, are checked there too.
    pub fn from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let agent_mode = input.updatable("agent_mode", one_of(AgentMode::VALUES));
        let ai_model = input.nullable("ai_model", |v| check_ai_model(string(v)?));
        let confidence_threshold = input.updatable("confidence_threshold", threshold);
        let settings = input.updatable("settings", object);
        if let Some(settings) = &settings {
            check_setting(&mut input, settings, "confidence_threshold", threshold);
            check_setting(&mut input, settings, "enabled", boolean);
        }
        input.finish_update_with(|| {
            Some(ConfigUpdate {
                agent_mode,
                ai_model,
                confidence_threshold,
                settings,
            })
        })
    }
}

/// The agent config joins the project's mode and model to the agent settings: `GET` reads both,
/// `PATCH` changes them in one transaction, each audited, and answers the new AgentConfig.
impl ProjectConfig for AgentSettings {
    type Update = ConfigUpdate;
    type View = AgentConfig;

    fn parse_update(body: Value) -> ApiResult<ConfigUpdate> {
        ConfigUpdate::from_json(body)
    }

    fn read(reader: &impl Reader, scope: &ProjectScope) -> ApiResult<AgentConfig> {
        let project = project::resolve(reader, &scope.org_id, &scope.project_id)?;
        let settings: AgentSettings = singleton::get(reader, scope)?;
        Ok(AgentConfig {
            project_name: project.name,
            agent_mode: project.agent_mode,
            ai_model: project.ai_model,
            domain: project.domain,
            has_byom_key: HAS_BYOM_KEY,
            settings: Value::Object(settings.object()),
        })
    }

    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: ConfigUpdate,
    ) -> ApiResult<AgentConfig> {
        update_config(tx, scope, actor, input)?;
        AgentSettings::read(tx, scope)
    }
}

fn update_config(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    input: ConfigUpdate,
) -> ApiResult<()> {
    if input.agent_mode.is_some() || input.ai_model != Patch::Absent {
        let change = ProjectUpdate {
            name: None,
            domain: Patch::Absent,
            agent_mode: input.agent_mode,
            ai_model: input.ai_model,
        };
        project::update(tx, actor, &scope.org_id, &scope.project_id, change)?;
    }
    if input.settings.is_some() || input.confidence_threshold.is_some() {
        let mut incoming = input.settings.unwrap_or_default();
        if let Some(t) = input.confidence_threshold {
            incoming.insert("confidence_threshold".into(), json!(t));
        }
        singleton::update::<AgentSettings>(tx, scope, actor, |record| {
            let mut merged = record.object();
            singleton::merge_open_object(&mut merged, incoming, "settings.")?;
            record.settings = Value::Object(merged).to_string();
            Ok(())
        })?;
    }
    Ok(())
}

/// What the agent is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Respond { mode_override: Option<AgentMode> },
    Classify,
    Suggest,
}

/// Which endpoint a body came to.
#[derive(Debug, Clone, Copy)]
pub enum TaskKind {
    Respond,
    Classify,
    Suggest,
}

pub struct AgentRequest {
    conversation_id: String,
    task: Task,
}

impl AgentRequest {
    /// `conversation_id` is required; respond also reads `mode_override`.
    pub fn from_json(kind: TaskKind, body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let conversation_id = input.required("conversation_id", text(SHORT_TEXT_MAX));
        let task = match kind {
            TaskKind::Respond => Task::Respond {
                mode_override: input.optional("mode_override", one_of(AgentMode::VALUES)),
            },
            TaskKind::Classify => Task::Classify,
            TaskKind::Suggest => Task::Suggest,
        };
        input.finish_with(|| {
            Some(AgentRequest {
                conversation_id: conversation_id?,
                task,
            })
        })
    }
}

/// Everything the agent reads about one conversation, from one snapshot.
pub struct Context {
    pub task: Task,
    pub project_name: String,
    pub conversation: Conversation,
    /// The latest messages, oldest first.
    pub transcript: Vec<Message>,
    pub contact: Option<Contact>,
    /// Knowledge-base hits for the customer's question, best first, scores 0-1.
    pub hits: Vec<(Article, f64)>,
    /// The mode asked for: the override, else the project's.
    pub mode: AgentMode,
    pub model: String,
    pub confidence_threshold: f64,
}

impl Context {
    /// Reads the conversation (404 `CONVERSATION_NOT_FOUND` if it is not one of this
    /// project's), its latest messages, its contact and the knowledge-base hits.
    pub fn load(
        reader: &impl Reader,
        scope: &ProjectScope,
        request: AgentRequest,
        default_model: &str,
    ) -> ApiResult<Context> {
        let conversation: Conversation =
            project_owned::get(reader, scope, &Id::parse_found(&request.conversation_id)?)?;
        let order = Order {
            tag: IN_CONVERSATION,
            group: conversation.id.as_bytes(),
            descending: true,
        };
        let mut transcript = project_owned::list::<Message>(
            reader,
            scope,
            order,
            None,
            TRANSCRIPT_MESSAGES,
            |_| true,
        )?
        .items;
        transcript.reverse();
        let contact = match &conversation.contact_id {
            Some(id) => project_owned::find_text::<Contact>(reader, scope, id)?,
            None => None,
        };
        let hits = kb::search(reader, scope, &question(&conversation, &transcript))?;
        let project = project::resolve(reader, &scope.org_id, &scope.project_id)?;
        let settings: AgentSettings = singleton::get(reader, scope)?;
        let mode = match request.task {
            Task::Respond {
                mode_override: Some(mode),
            } => mode,
            _ => project.agent_mode,
        };
        Ok(Context {
            task: request.task,
            project_name: project.name,
            conversation,
            transcript,
            contact,
            hits,
            mode,
            model: effective_model(project.ai_model.as_deref(), default_model),
            confidence_threshold: settings.confidence_threshold(),
        })
    }

    /// The messages the customer can see, oldest first (internal notes stay with the team).
    pub fn public_messages(&self) -> impl Iterator<Item = &Message> {
        self.transcript.iter().filter(|m| !m.is_internal)
    }

    fn sources(&self) -> Vec<Source> {
        self.hits
            .iter()
            .map(|(article, score)| Source {
                id: article.id.clone(),
                title: article.title.clone(),
                score: *score,
            })
            .collect()
    }
}

/// What the knowledge base is searched for: the customer's latest message, else the latest
/// public message, else the subject.
fn question(conversation: &Conversation, transcript: &[Message]) -> String {
    let public = || transcript.iter().rev().filter(|m| !m.is_internal);
    let text = public()
        .find(|m| m.sender_type == SenderType::Customer)
        .or_else(|| public().next())
        .map(|m| m.content.as_str())
        .or(conversation.subject.as_deref())
        .unwrap_or("");
    text.chars().take(MAX_QUERY_CHARS).collect()
}

/// A knowledge-base article the answer drew on.
#[derive(Debug, Serialize, Clone, utoipa::ToSchema)]
pub struct Source {
    pub id: String,
    pub title: String,
    pub score: f64,
}

/// AgentRespondResult (the OpenAPI document); `content_html` is omitted.
#[derive(Debug, Serialize, Clone, utoipa::ToSchema)]
pub struct RespondResult {
    pub content: String,
    pub confidence: f64,
    pub mode: AgentMode,
    pub effective_mode: AgentMode,
    pub message_created: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub sources: Vec<Source>,
    pub usage: Usage,
}

/// SuggestResult (the OpenAPI document).
#[derive(Debug, Serialize, Clone, utoipa::ToSchema)]
pub struct SuggestResult {
    pub suggested_response: String,
    pub confidence: f64,
    pub sources: Vec<Source>,
}

#[derive(Debug, Serialize, Clone)]
#[serde(untagged)]
pub enum AgentResult {
    Respond(RespondResult),
    Classify(Classification),
    Suggest(SuggestResult),
}

/// What the agent decided, to be written by `commit`.
#[derive(Clone)]
pub struct Outcome {
    conversation_id: String,
    post: Option<MessageCreate>,
    usage: Usage,
    result: AgentResult,
}

/// Below the threshold, autopilot holds the reply for review: it becomes a copilot draft.
fn effective_mode(mode: AgentMode, confidence: f64, threshold: f64) -> AgentMode {
    if mode == AgentMode::Autopilot && confidence < threshold {
        AgentMode::Copilot
    } else {
        mode
    }
}

/// Runs the task on the context: the responder for respond and suggest, the keyword classifier
/// for classify. Runs outside any transaction.
pub async fn think(responder: &Responder<'_>, context: Context) -> ApiResult<Outcome> {
    let conversation_id = context.conversation.id.clone();
    let sources = context.sources();
    match context.task {
        Task::Respond { .. } => {
            let reply = responder.reply(&context).await?;
            let effective =
                effective_mode(context.mode, reply.confidence, context.confidence_threshold);
            let post = match effective {
                AgentMode::Autopilot => Some(false),
                AgentMode::Copilot => Some(true),
                AgentMode::Assist => None,
            }
            .map(|internal| MessageCreate::new(reply.content.clone(), SenderType::Ai, internal));
            Ok(Outcome {
                conversation_id,
                post,
                usage: reply.usage.clone(),
                result: AgentResult::Respond(RespondResult {
                    content: reply.content,
                    confidence: reply.confidence,
                    mode: context.mode,
                    effective_mode: effective,
                    message_created: false,
                    message_id: None,
                    sources,
                    usage: reply.usage,
                }),
            })
        }
        Task::Suggest => {
            let reply = responder.reply(&context).await?;
            Ok(Outcome {
                conversation_id,
                post: None,
                usage: reply.usage,
                result: AgentResult::Suggest(SuggestResult {
                    suggested_response: reply.content,
                    confidence: reply.confidence,
                    sources,
                }),
            })
        }
        Task::Classify => Ok(Outcome {
            conversation_id,
            post: None,
            usage: Usage::offline(),
            result: AgentResult::Classify(classify::classify(&context)),
        }),
    }
}

impl Outcome {
    /// Checks the conversation again, posts the reply if there is one (bumping the
    /// conversation, audited), and counts the call in this month's usage.
    pub fn commit(
        self,
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
    ) -> ApiResult<AgentResult> {
        let conversation: Conversation =
            project_owned::get(tx, scope, &Id::parse_found(&self.conversation_id)?)?;
        let posted = match self.post {
            Some(input) => Some(message::post(
                tx,
                scope,
                actor,
                &Id::of(&conversation),
                input,
            )?),
            None => None,
        };
        let now = tx.now;
        let usage = self.usage;
        singleton::update::<AgentUsage>(tx, scope, actor, |counts| {
            counts.add(now, &usage);
            Ok(())
        })?;
        let mut result = self.result;
        if let (AgentResult::Respond(respond), Some(message)) = (&mut result, posted) {
            respond.message_created = true;
            respond.message_id = Some(message.id);
        }
        Ok(result)
    }
}

/// The OpenAPI schemas of the configuration update and the agent's calls (`api::openapi`).
pub mod openapi {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

    use crate::org_owned::project::AgentMode;
    use crate::schema::*;
    use crate::validate::SHORT_TEXT_MAX;

    pub fn config_update() -> Schema {
        patch_body(vec![
            prop("agent_mode", wire(AgentMode::VALUES)),
            prop("ai_model", or_null(ai_model())),
            prop(
                "confidence_threshold",
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0))
                    .maximum(Some(1)),
            ),
            prop("settings", object()),
        ])
    }

    pub fn respond() -> Schema {
        create_body(
            vec![
                prop("conversation_id", text(SHORT_TEXT_MAX)),
                prop("mode_override", wire(AgentMode::VALUES)),
            ],
            &["conversation_id"],
        )
        .into()
    }

    pub fn task() -> Schema {
        create_body(
            vec![prop("conversation_id", text(SHORT_TEXT_MAX))],
            &["conversation_id"],
        )
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_utc_calendar_months() {
        // 2026-05-31T23:59:59Z and one second later.
        assert_eq!(month_of(Timestamp::from_unix(1_780_271_999)), "2026-05");
        assert_eq!(month_of(Timestamp::from_unix(1_780_272_000)), "2026-06");
    }

    #[test]
    fn usage_starts_again_each_month() {
        let mut usage = AgentUsage {
            id: "agu_abcdefghijkl".into(),
            project_id: ProjectId::parse("prj_abcdefghijkl").unwrap(),
            month: String::new(),
            calls: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
        };
        let may = Timestamp::from_unix(1_780_271_999);
        let june = Timestamp::from_unix(1_780_272_000);
        let call = Usage {
            model: "m/x".into(),
            input_tokens: 10,
            output_tokens: 5,
            cost_usd: 0.25,
        };
        usage.add(may, &call);
        usage.add(may, &call);
        assert_eq!(usage.this_month(may).calls, 2);
        assert_eq!(usage.this_month(may).input_tokens, 20);
        assert_eq!(usage.this_month(june).calls, 0);
        usage.add(june, &call);
        let june_usage = usage.this_month(june);
        assert_eq!((june_usage.calls, june_usage.output_tokens), (1, 5));
        assert_eq!(june_usage.cost_usd, 0.25);
    }

    #[test]
    fn autopilot_below_the_threshold_becomes_copilot() {
        use AgentMode::*;
        assert_eq!(effective_mode(Autopilot, 0.4, 0.5), Copilot);
        assert_eq!(effective_mode(Autopilot, 0.5, 0.5), Autopilot);
        assert_eq!(effective_mode(Copilot, 0.0, 0.5), Copilot);
        assert_eq!(effective_mode(Assist, 0.0, 0.5), Assist);
    }
}
