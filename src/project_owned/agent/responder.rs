//! Who writes the agent's replies: an OpenAI-compatible chat-completions provider when one is
//! configured (`[agent] provider_url`), otherwise a deterministic offline responder that quotes
//! the best knowledge-base hit and says that it is offline. Either way the confidence is the
//! best hit's score: how well the knowledge base covers the question.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::project_owned::agent::Context;
use crate::project_owned::message::SenderType;
use crate::validate::LONG_TEXT_MAX;

/// Marks every offline reply, so that nobody mistakes it for a model's answer.
pub const OFFLINE_MARK: &str = "[offline responder]";
/// The `usage.model` of offline replies.
pub const OFFLINE_MODEL: &str = "offline";
/// How much of the best article an offline reply quotes, in characters.
const QUOTE_CHARS: usize = 1000;
/// How much of each article the provider's prompt carries, in characters.
const PROMPT_ARTICLE_CHARS: usize = 2000;
/// Knowledge-base hits in the provider's prompt.
const PROMPT_ARTICLES: usize = 5;
/// The largest provider response read, in bytes.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

pub enum Responder<'a> {
    Offline,
    Provider(Provider<'a>),
}

/// An OpenAI-compatible API: `POST {url}/chat/completions` with a Bearer key.
pub struct Provider<'a> {
    pub client: &'a reqwest::Client,
    pub url: &'a str,
    pub key: &'a str,
    pub timeout: Duration,
}

/// What one call cost.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

impl Usage {
    pub fn offline() -> Usage {
        Usage {
            model: OFFLINE_MODEL.into(),
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
        }
    }
}

pub struct Reply {
    pub content: String,
    pub confidence: f64,
    pub usage: Usage,
}

impl Responder<'_> {
    pub async fn reply(&self, context: &Context) -> ApiResult<Reply> {
        match self {
            Responder::Offline => Ok(offline_reply(context)),
            Responder::Provider(provider) => provider.reply(context).await,
        }
    }
}

fn best_score(context: &Context) -> f64 {
    context.hits.first().map_or(0.0, |(_, score)| *score)
}

/// The first `max` characters of `text`, with an ellipsis if anything was cut.
fn excerpt(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{}…", head.trim_end())
    } else {
        head
    }
}

fn offline_reply(context: &Context) -> Reply {
    let content = match context.hits.first() {
        Some((article, _)) => format!(
            "{OFFLINE_MARK} From \"{}\": {}",
            article.title,
            excerpt(&article.content, QUOTE_CHARS)
        ),
        None => format!(
            "{OFFLINE_MARK} I could not find an answer in the knowledge base. A teammate will \
             follow up."
        ),
    };
    Reply {
        content,
        confidence: best_score(context),
        usage: Usage::offline(),
    }
}

/// The chat messages sent to the provider: instructions with the knowledge-base hits, then the
/// conversation's public messages.
pub fn prompt(context: &Context) -> Vec<Value> {
    let mut system = format!(
        "You are the customer-support assistant of {}. Write the next reply to the customer in \
         this conversation: helpful, concise, in the customer's language. Base it on the \
         knowledge-base articles below when they apply; if they do not answer the question, say \
         that a teammate will follow up. Never invent policies, prices or promises.",
        context.project_name
    );
    if let Some(subject) = &context.conversation.subject {
        system.push_str(&format!("\n\nConversation subject: {subject}"));
    }
    if let Some(name) = context.contact.as_ref().and_then(|c| c.name.as_ref()) {
        system.push_str(&format!("\nCustomer name: {name}"));
    }
    if context.hits.is_empty() {
        system.push_str("\n\nNo knowledge-base article matches this conversation.");
    } else {
        system.push_str("\n\nKnowledge base:");
        for (article, _) in context.hits.iter().take(PROMPT_ARTICLES) {
            system.push_str(&format!(
                "\n\n## {}\n{}",
                article.title,
                excerpt(&article.content, PROMPT_ARTICLE_CHARS)
            ));
        }
    }
    let mut messages = vec![json!({"role": "system", "content": system})];
    for message in context.public_messages() {
        let role = match message.sender_type {
            SenderType::Customer => "user",
            SenderType::Agent | SenderType::Ai => "assistant",
            SenderType::System => "system",
        };
        messages.push(json!({"role": role, "content": message.content}));
    }
    if messages.len() == 1 {
        let opening = context
            .conversation
            .subject
            .clone()
            .unwrap_or_else(|| "(The customer has not written yet.)".into());
        messages.push(json!({"role": "user", "content": opening}));
    }
    messages
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<CompletionUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

/// Token counts as OpenAI reports them; `cost` as OpenRouter adds it.
#[derive(Deserialize)]
struct CompletionUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    cost: Option<f64>,
}

fn provider_error(cause: impl Into<crate::error::Cause>) -> ApiError {
    ApiError::internal_from("agent provider", cause)
}

impl Provider<'_> {
    /// One chat completion. Any failure (unreachable, timeout, non-2xx, a body that is not a
    /// completion) is a 500 whose cause goes to the log only; the provider's error body is not
    /// read, as it may quote the key.
    async fn reply(&self, context: &Context) -> ApiResult<Reply> {
        let url = format!("{}/chat/completions", self.url.trim_end_matches('/'));
        let body = json!({"model": context.model, "messages": prompt(context)});
        let mut response = self
            .client
            .post(url)
            .bearer_auth(self.key)
            .timeout(self.timeout)
            .json(&body)
            .send()
            .await
            .map_err(provider_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(provider_error(format!(
                "the provider answered HTTP {status}"
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(provider_error)? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(provider_error(format!(
                    "the provider's answer exceeds {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let completion: Completion = serde_json::from_slice(&bytes).map_err(provider_error)?;
        let content = completion
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .filter(|content| !content.trim().is_empty())
            .ok_or_else(|| provider_error("the provider's answer holds no reply"))?;
        let usage = completion.usage;
        Ok(Reply {
            // A reply becomes a message, whose content has the long-text cap.
            content: content.chars().take(LONG_TEXT_MAX).collect(),
            confidence: best_score(context),
            usage: Usage {
                model: context.model.clone(),
                input_tokens: usage.as_ref().and_then(|u| u.prompt_tokens).unwrap_or(0),
                output_tokens: usage
                    .as_ref()
                    .and_then(|u| u.completion_tokens)
                    .unwrap_or(0),
                cost_usd: usage.and_then(|u| u.cost).unwrap_or(0.0),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_at_characters_and_say_so() {
        assert_eq!(excerpt("héllo", 10), "héllo");
        assert_eq!(excerpt("héllo world", 5), "héllo…");
        assert_eq!(excerpt("ab cd", 3), "ab…");
    }
}
