//! A deterministic keyword classifier for `agent/classify` (result shape: docs/api/agent.md OPEN).
//! It reads the subject and the customer's messages; the same conversation always classifies the
//! same way, with or without a model provider.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::project_owned::agent::Context;
use crate::project_owned::conversation::Priority;
use crate::project_owned::message::SenderType;
use crate::project_owned::search;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sentiment {
    Positive,
    Neutral,
    Negative,
}

#[derive(Debug, Serialize, Clone, utoipa::ToSchema)]
pub struct Classification {
    pub category: &'static str,
    pub intent: &'static str,
    pub priority: Priority,
    pub sentiment: Sentiment,
    pub tags: Vec<String>,
    pub confidence: f64,
}

/// Categories with their default intent and the words that point to them, in order of
/// precedence on a tie.
const CATEGORIES: &[(&str, &str, &[&str])] = &[
    (
        "billing",
        "billing_question",
        &[
            "refund",
            "refunds",
            "invoice",
            "invoices",
            "charge",
            "charged",
            "payment",
            "billing",
            "bill",
            "price",
            "pricing",
            "subscription",
            "receipt",
            "card",
            "paid",
            "pay",
        ],
    ),
    (
        "account",
        "account_access",
        &[
            "password",
            "login",
            "log",
            "sign",
            "signin",
            "account",
            "locked",
            "username",
            "2fa",
            "verification",
            "reset",
        ],
    ),
    (
        "shipping",
        "order_status",
        &[
            "shipping",
            "shipment",
            "delivery",
            "deliver",
            "delivered",
            "order",
            "package",
            "tracking",
            "shipped",
            "arrive",
            "arrived",
            "parcel",
        ],
    ),
    (
        "technical",
        "bug_report",
        &[
            "error", "bug", "crash", "crashes", "crashed", "broken", "fails", "failed", "failing",
            "issue", "working", "slow", "outage", "down",
        ],
    ),
    (
        "feedback",
        "feedback",
        &[
            "feature",
            "suggestion",
            "idea",
            "feedback",
            "improve",
            "improvement",
            "request",
        ],
    ),
];

/// Words that name a more specific intent than the category's default.
const INTENTS: &[(&str, &str)] = &[
    ("refund", "refund_request"),
    ("refunds", "refund_request"),
    ("cancel", "cancellation"),
    ("cancellation", "cancellation"),
    ("unsubscribe", "cancellation"),
    ("password", "password_reset"),
    ("tracking", "order_status"),
    ("feature", "feature_request"),
];

const URGENT: &[&str] = &[
    "urgent",
    "urgently",
    "asap",
    "immediately",
    "emergency",
    "critical",
];
const POSITIVE: &[&str] = &[
    "thanks",
    "thank",
    "great",
    "love",
    "awesome",
    "excellent",
    "happy",
    "perfect",
    "appreciate",
    "wonderful",
];
const NEGATIVE: &[&str] = &[
    "angry",
    "terrible",
    "awful",
    "frustrated",
    "frustrating",
    "bad",
    "worst",
    "hate",
    "disappointed",
    "unacceptable",
    "annoyed",
    "useless",
    "horrible",
    "upset",
    "ridiculous",
];

/// The text classified: the subject and what the customer wrote (internal notes and the
/// team's replies describe the customer's problem less reliably).
fn customer_text(context: &Context) -> String {
    let mut text = context.conversation.subject.clone().unwrap_or_default();
    for message in context
        .public_messages()
        .filter(|m| m.sender_type == SenderType::Customer)
    {
        text.push('\n');
        text.push_str(&message.content);
    }
    text
}

pub fn classify(context: &Context) -> Classification {
    classify_text(&customer_text(context))
}

fn classify_text(text: &str) -> Classification {
    let words: Vec<String> = search::tokens(text).collect();
    let count = |list: &[&str]| words.iter().filter(|w| list.contains(&w.as_str())).count();

    let mut best: Option<(&'static str, &'static str, usize)> = None;
    let mut tags = BTreeSet::new();
    for (category, intent, keywords) in CATEGORIES {
        let hits = count(keywords);
        if hits > 0 {
            tags.insert(category.to_string());
            if best.is_none_or(|(_, _, most)| hits > most) {
                best = Some((category, intent, hits));
            }
        }
    }
    let (category, default_intent, hits) = best.unwrap_or(("general", "question", 0));
    let intent = words
        .iter()
        .find_map(|w| INTENTS.iter().find(|(word, _)| word == w))
        .map_or(default_intent, |(_, intent)| intent);

    let sentiment = match count(POSITIVE).cmp(&count(NEGATIVE)) {
        std::cmp::Ordering::Greater => Sentiment::Positive,
        std::cmp::Ordering::Equal => Sentiment::Neutral,
        std::cmp::Ordering::Less => Sentiment::Negative,
    };
    let urgent = count(URGENT) > 0;
    if urgent {
        tags.insert("urgent".into());
    }
    let priority = if urgent {
        Priority::Urgent
    } else if sentiment == Sentiment::Negative {
        Priority::High
    } else {
        Priority::Normal
    };
    // More evidence, more confidence, never certainty: 1 hit 0.33, 2 hits 0.5, 4 hits 0.67.
    let confidence = hits as f64 / (hits as f64 + 2.0);
    Classification {
        category,
        intent,
        priority,
        sentiment,
        tags: tags.into_iter().collect(),
        confidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_refund_with_anger() {
        let c = classify_text("I was charged twice and want a refund. This is unacceptable!");
        assert_eq!((c.category, c.intent), ("billing", "refund_request"));
        assert_eq!(c.sentiment, Sentiment::Negative);
        assert_eq!(c.priority, Priority::High);
        assert_eq!(c.tags, ["billing"]);
        assert!((c.confidence - 0.5).abs() < 1e-9, "{}", c.confidence);
    }

    #[test]
    fn urgent_login_problem() {
        let c = classify_text("URGENT: cannot login, password reset email never arrives");
        assert_eq!(c.category, "account");
        assert_eq!(c.intent, "password_reset");
        assert_eq!(c.priority, Priority::Urgent);
        assert_eq!(c.tags, ["account", "urgent"]);
    }

    #[test]
    fn nothing_recognised_is_a_general_question() {
        let c = classify_text("Hello there, thanks!");
        assert_eq!((c.category, c.intent), ("general", "question"));
        assert_eq!(c.sentiment, Sentiment::Positive);
        assert_eq!(c.priority, Priority::Normal);
        assert!(c.tags.is_empty());
        assert_eq!(c.confidence, 0.0);
    }

    #[test]
    fn the_same_text_classifies_the_same_way() {
        let text = "my order shows an error";
        let (a, b) = (classify_text(text), classify_text(text));
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::to_value(&b).unwrap()
        );
        // A tie goes to the earlier category.
        assert_eq!(a.category, "shipping");
    }
}
