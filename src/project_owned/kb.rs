//! Knowledge-base articles (docs/api/README.md and the OpenAPI document) and their search index.
//! Published articles contribute postings (term → article, with term counts) and two counters
//! (documents and total length) as ordinary index entries, so the index is rewritten with the
//! article, in the same transaction, and removed with it.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::scope::Resource;
use crate::codec::{self, Record};
use crate::error::{ApiResult, ErrorCode};
use crate::ids::ProjectId;
use crate::org_owned::audit::Actor;
use crate::org_owned::project::{Slug, unique_slug};
use crate::project_owned::routed::{Body, Endpoints, Standard};
use crate::project_owned::search::{self, TermStats};
use crate::project_owned::{
    self, Filter, IndexEntry, InputSettings, Kind, Listing, Postings, ProjectScope, Routed,
    lookup_prefix, trigram,
};
use crate::project_owned::{Id, Stamp};
use crate::query::{QueryParams, enum_param, lowercase_param, text_param};
use crate::store::{Reader, Tx, layout, tables};
use crate::timestamp::Timestamp;
use crate::validate::wire_enum;
use crate::validate::{
    Input, LONG_TEXT_MAX, Patch, SHORT_TEXT_MAX, boolean, non_blank, one_of, text, trimmed,
};
use crate::view::record_view;

pub const BY_CREATED: u8 = 0x47;
pub const BY_UPDATED: u8 = 0x48;
/// `len ++ slug ++ seq ++ id`: slugs are unique within a project.
pub const BY_SLUG: u8 = 0x49;
/// `len ++ term ++ id` → Posting, for published articles.
pub const POSTINGS: u8 = 0x4a;
/// `docs` and `length` counters over published articles.
pub const STATS: u8 = 0x4b;
/// `field ++ len ++ value ++ seq ++ id`: the postings of the filtered fields, by creation.
pub const FIELDS_BY_CREATED: u8 = 0x74;
/// `field ++ len ++ value ++ updated_seq ++ id`: the same, by last update.
pub const FIELDS_BY_UPDATED: u8 = 0x75;
/// `len ++ trigram ++ seq ++ id`: the trigrams of the lowercase title and content, for `q`.
pub const TRIGRAMS: u8 = 0x76;

/// The field bytes of `FIELDS_BY_*`.
const STATUS: u8 = 1;
const CATEGORY: u8 = 2;

const STAT_DOCS: &[u8] = b"docs";
const STAT_LENGTH: &[u8] = b"length";
/// The most hits a search returns (docs/api/README.md).
pub const MAX_HITS: usize = 10;

wire_enum! {
    pub enum ArticleStatus {
        Draft = "draft",
        Published = "published",
        Archived = "archived",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Article {
    pub id: String,
    pub project_id: ProjectId,
    pub title: String,
    pub slug: Slug,
    pub content: String,
    pub category: Option<String>,
    pub status: ArticleStatus,
    pub is_public: bool,
    pub view_count: u64,
    pub helpful_count: u64,
    pub not_helpful_count: u64,
    pub ai_generated: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub seq: u64,
    pub updated_seq: u64,
}

impl Record for Article {
    const NAME: &'static str = "kb article";
}

record_view! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct ArticleView from Article {
        id: String,
        #[schema(value_type = String)]
        project_id: ProjectId,
        title: String,
        slug: Slug,
        content: String,
        category: Option<String>,
        status: ArticleStatus,
        is_public: bool,
        view_count: u64,
        helpful_count: u64,
        not_helpful_count: u64,
        ai_generated: bool,
        created_at: Timestamp,
        updated_at: Timestamp,
    }
}

/// One term's counts in one published article.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Posting {
    title_tf: u32,
    content_tf: u32,
    doc_len: u32,
}

impl Record for Posting {
    const NAME: &'static str = "kb posting";
}

impl Kind for Article {
    const TAG: u8 = 0x04;
    const INDEX_TAGS: &'static [u8] = &[
        BY_CREATED,
        BY_UPDATED,
        BY_SLUG,
        POSTINGS,
        STATS,
        FIELDS_BY_CREATED,
        FIELDS_BY_UPDATED,
        TRIGRAMS,
    ];
    const PLURAL: &'static str = "kb_articles";
    const SINGULAR: &'static str = "kb_article";
    const ID_PREFIX: &'static str = "kba_";
    const NOT_FOUND: ErrorCode = ErrorCode::ResourceNotFound;
    type View = ArticleView;

    fn id(&self) -> &str {
        &self.id
    }

    fn index(&self) -> ApiResult<Vec<IndexEntry>> {
        let mut entries = vec![
            IndexEntry::order(BY_CREATED, b"", self.seq, &self.id),
            IndexEntry::order(BY_UPDATED, b"", self.updated_seq, &self.id),
            IndexEntry::lookup(BY_SLUG, self.slug.as_str(), self.seq, &self.id),
        ];
        let mut fields = vec![(STATUS, self.status.as_str())];
        if let Some(category) = &self.category {
            fields.push((CATEGORY, category));
        }
        entries.extend(IndexEntry::fields_in_both_orders(
            (FIELDS_BY_CREATED, FIELDS_BY_UPDATED),
            &fields,
            (self.seq, self.updated_seq),
            &self.id,
        ));
        let (title, content) = (self.title.to_lowercase(), self.content.to_lowercase());
        entries.extend(trigram::entries(
            TRIGRAMS,
            [title.as_str(), content.as_str()],
            self.seq,
            &self.id,
        ));
        if self.status == ArticleStatus::Published {
            let doc_len = search::doc_len(&self.title, &self.content);
            let mut counts: BTreeMap<String, (u32, u32)> = BTreeMap::new();
            for term in search::tokens(&self.title) {
                counts.entry(term).or_default().0 += 1;
            }
            for term in search::tokens(&self.content) {
                counts.entry(term).or_default().1 += 1;
            }
            for (term, (title_tf, content_tf)) in counts {
                let posting = Posting {
                    title_tf,
                    content_tf,
                    doc_len,
                };
                let mut key = lookup_prefix(&term);
                key.extend_from_slice(self.id.as_bytes());
                entries.push(IndexEntry::Key {
                    tag: POSTINGS,
                    key,
                    value: codec::encode(&posting)?,
                });
            }
            entries.push(IndexEntry::Counter {
                tag: STATS,
                key: STAT_DOCS.to_vec(),
                amount: 1,
            });
            entries.push(IndexEntry::Counter {
                tag: STATS,
                key: STAT_LENGTH.to_vec(),
                amount: u64::from(doc_len),
            });
        }
        Ok(entries)
    }
}

/// A create body: title and content required, the rest defaulted by `create`.
#[derive(Clone)]
pub struct ArticleCreate {
    title: String,
    content: String,
    category: Option<String>,
    status: Option<ArticleStatus>,
    is_public: Option<bool>,
}

impl ArticleCreate {
    pub fn from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let title = input.required("title", trimmed(1, SHORT_TEXT_MAX));
        let content = input.required("content", non_blank(LONG_TEXT_MAX));
        let category = input.optional("category", text(SHORT_TEXT_MAX));
        // These two cannot be null, as in an update: `null` is a type error.
        let status = input.updatable("status", one_of(ArticleStatus::VALUES));
        let is_public = input.updatable("is_public", boolean);
        input.finish_with(|| {
            Some(ArticleCreate {
                title: title?,
                content: content?,
                category,
                status,
                is_public,
            })
        })
    }
}

/// An update body: each field left out or changed; `category` may be cleared.
#[derive(Clone)]
pub struct ArticleFields {
    title: Option<String>,
    content: Option<String>,
    category: Patch<String>,
    status: Option<ArticleStatus>,
    is_public: Option<bool>,
}

impl ArticleFields {
    pub fn update_from_json(body: Value) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let fields = ArticleFields {
            title: input.updatable("title", trimmed(1, SHORT_TEXT_MAX)),
            content: input.updatable("content", non_blank(LONG_TEXT_MAX)),
            category: input.settable("category", text(SHORT_TEXT_MAX)),
            status: input.updatable("status", one_of(ArticleStatus::VALUES)),
            is_public: input.updatable("is_public", boolean),
        };
        input.finish_update_with(|| Some(fields))
    }

    fn apply(self, article: &mut Article) {
        if let Some(title) = self.title {
            article.title = title;
        }
        if let Some(content) = self.content {
            article.content = content;
        }
        if let Some(category) = self.category.into_change() {
            article.category = category;
        }
        if let Some(status) = self.status {
            article.status = status;
        }
        if let Some(is_public) = self.is_public {
            article.is_public = is_public;
        }
    }
}

impl Routed for Article {
    type Create = ArticleCreate;
    type Update = ArticleFields;
    type Filter = ArticleFilter;

    const BY_CREATED: u8 = BY_CREATED;
    const LISTING: Listing = Listing::Paged {
        default_limit: 50,
        by_updated: Some(BY_UPDATED),
    };
    const ENDPOINTS: Endpoints = Endpoints {
        collection: "/api/v1/projects/{project_id}/kb/articles",
        resource: Resource::Kb,
        routes: &[
            Standard::List,
            Standard::Create,
            Standard::Get,
            Standard::Update,
            Standard::Delete,
        ],
        create: Body {
            name: "ArticleCreate",
            schema: openapi::create,
            codes: &[],
        },
        update: Body {
            name: "ArticleUpdate",
            schema: openapi::update,
            codes: &[],
        },
        filters: openapi::filters,
        created: None,
    };

    fn parse_filter(query: &QueryParams) -> ApiResult<ArticleFilter> {
        Ok(ArticleFilter {
            status: enum_param(query, "status", ArticleStatus::VALUES)?,
            category: text_param(query, "category", SHORT_TEXT_MAX)?,
            q: lowercase_param(query, "q")?,
        })
    }

    fn parse_create(body: Value, _: InputSettings<'_>) -> ApiResult<ArticleCreate> {
        ArticleCreate::from_json(body)
    }

    fn parse_update(body: Value, _: InputSettings<'_>) -> ApiResult<ArticleFields> {
        ArticleFields::update_from_json(body)
    }

    fn create(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: ArticleCreate,
    ) -> ApiResult<Article> {
        let stamp = Stamp::new::<Article>(tx);
        let article = Article {
            id: stamp.id,
            project_id: scope.project_id.clone(),
            slug: unique_slug(&input.title, "article", |slug| {
                Ok(scope.first(tx, BY_SLUG, slug.as_str())?.is_some())
            })?,
            title: input.title,
            content: input.content,
            category: input.category,
            status: input.status.unwrap_or(ArticleStatus::Draft),
            is_public: input.is_public.unwrap_or(true),
            view_count: 0,
            helpful_count: 0,
            not_helpful_count: 0,
            ai_generated: false,
            created_at: stamp.now,
            updated_at: stamp.now,
            seq: stamp.seq,
            updated_seq: stamp.seq,
        };
        project_owned::insert(tx, scope, actor, &article)?;
        Ok(article)
    }

    /// Applies an update; the slug stays.
    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        id: &Id<Self>,
        fields: ArticleFields,
    ) -> ApiResult<Article> {
        let before: Article = project_owned::get(tx, scope, id)?;
        let mut after = before.clone();
        fields.apply(&mut after);
        save_change(tx, scope, actor, "updated", &before, after)
    }
}

/// Publishes; publishing a published article changes nothing.
pub fn publish(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    id: &Id<Article>,
) -> ApiResult<Article> {
    let before: Article = project_owned::get(tx, scope, id)?;
    if before.status == ArticleStatus::Published {
        return Ok(before);
    }
    let mut after = before.clone();
    after.status = ArticleStatus::Published;
    save_change(tx, scope, actor, "published", &before, after)
}

/// Stores a changed article as updated now, audited as `kb_article.<verb>`.
fn save_change(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    verb: &str,
    before: &Article,
    mut after: Article,
) -> ApiResult<Article> {
    after.updated_at = tx.now;
    after.updated_seq = tx.next_seq();
    project_owned::replace(tx, scope, actor, verb, before, &after)?;
    Ok(after)
}

/// The filters of `GET …/kb/articles`; text held in lowercase.
#[derive(Default)]
pub struct ArticleFilter {
    pub status: Option<ArticleStatus>,
    pub category: Option<String>,
    /// Substring of title or content.
    pub q: Option<String>,
}

impl Filter<Article> for ArticleFilter {
    fn matches(&self, a: &Article) -> bool {
        self.status.is_none_or(|s| a.status == s)
            && self
                .category
                .as_ref()
                .is_none_or(|c| a.category.as_ref() == Some(c))
            && self.q.as_ref().is_none_or(|q| {
                a.title.to_lowercase().contains(q.as_str())
                    || a.content.to_lowercase().contains(q.as_str())
            })
    }

    /// Each given field's postings in the list's order; `q`'s trigrams are kept by creation
    /// only, so with `sort=updated_at` `q` is checked on the records the walk reaches.
    fn postings(&self, order: u8) -> Vec<Postings> {
        let tag = if order == BY_UPDATED {
            FIELDS_BY_UPDATED
        } else {
            FIELDS_BY_CREATED
        };
        let mut postings = Vec::new();
        if let Some(status) = self.status {
            postings.push(Postings::field(tag, STATUS, status.as_str()));
        }
        if let Some(category) = &self.category {
            postings.push(Postings::field(tag, CATEGORY, category));
        }
        if order == BY_CREATED
            && let Some(q) = &self.q
        {
            postings.extend(trigram::postings(TRIGRAMS, q));
        }
        postings
    }
}

/// The best published articles for `query`, with scores in 0-1, best first. Reads only the
/// postings of the query's terms and the two counters, never every article.
pub fn search(
    reader: &impl Reader,
    scope: &ProjectScope,
    query: &str,
) -> ApiResult<Vec<(Article, f64)>> {
    let terms = search::query_terms(query);
    let docs = scope.counter(reader, STATS, STAT_DOCS)?;
    if terms.is_empty() || docs == 0 {
        return Ok(Vec::new());
    }
    let avg_doc_len = scope.counter(reader, STATS, STAT_LENGTH)? as f64 / docs as f64;

    let mut scores: HashMap<String, f64> = HashMap::new();
    let mut ceiling = 0.0;
    for term in &terms {
        let prefix = scope.key(POSTINGS, &lookup_prefix(term));
        let mut postings: Vec<(String, TermStats)> = Vec::new();
        reader.scan(
            tables::OWNED,
            layout::prefix_range(&prefix),
            false,
            &mut |key, value| {
                let posting: Posting = codec::decode(value)?;
                let id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                let stats = TermStats {
                    title_tf: posting.title_tf,
                    content_tf: posting.content_tf,
                    doc_len: posting.doc_len,
                };
                postings.push((id, stats));
                Ok(ControlFlow::Continue(()))
            },
        )?;
        let idf = search::idf(docs, postings.len() as u64);
        ceiling += search::term_ceiling(idf);
        for (id, stats) in postings {
            *scores.entry(id).or_default() += search::term_score(idf, stats, avg_doc_len);
        }
    }

    let mut ranked: Vec<(String, f64)> = scores.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(MAX_HITS);
    let mut hits = Vec::with_capacity(ranked.len());
    for (id, score) in ranked {
        if let Some(article) = project_owned::find_text::<Article>(reader, scope, &id)? {
            hits.push((article, (score / ceiling).clamp(0.0, 1.0)));
        }
    }
    Ok(hits)
}

/// The OpenAPI rows of articles: request bodies and list filters.
mod openapi {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::path::Parameter;
    use utoipa::openapi::schema::Schema;

    use super::ArticleStatus;
    use crate::schema::*;
    use crate::validate::{LONG_TEXT_MAX, SHORT_TEXT_MAX};

    fn fields() -> Vec<(&'static str, RefOr<Schema>)> {
        vec![
            prop("title", trimmed(SHORT_TEXT_MAX)),
            prop("content", content(LONG_TEXT_MAX)),
            prop("category", text(SHORT_TEXT_MAX)),
            prop("status", wire(ArticleStatus::VALUES)),
            prop("is_public", boolean()),
        ]
    }

    pub fn create() -> Schema {
        create_body(fields(), &["title", "content"]).into()
    }

    pub fn update() -> Schema {
        patch_body(fields())
    }

    pub fn filters() -> Vec<Parameter> {
        vec![
            query("status", wire_or_empty(ArticleStatus::VALUES)),
            text_filter("category"),
            text_filter("q"),
        ]
    }
}
