//! Query parameters: the query string as read, and the readers shared by the lists (the contract
//! (docs/api/) docs/api/README.md). Framework-free, so a kind declares its filters beside its
//! record.

use std::collections::HashMap;

use crate::error::{ApiError, ApiResult};
use crate::pagination::{Cursor, parse_limit};
use crate::validate::SHORT_TEXT_MAX;

/// The query string as name → value. Empty values count as absent: the SDK drops undefined
/// parameters, and scripts often send `?status=`.
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        QueryParams(pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    CreatedAt,
    UpdatedAt,
}

impl SortField {
    /// The ordering index of a kind that keeps one per sort field.
    pub fn tag(self, by_created: u8, by_updated: u8) -> u8 {
        match self {
            SortField::CreatedAt => by_created,
            SortField::UpdatedAt => by_updated,
        }
    }
}

pub struct ListParams {
    pub limit: usize,
    pub cursor: Option<Cursor>,
    pub sort: SortField,
    pub descending: bool,
}

impl ListParams {
    /// `limit` and `cursor` only; the order is the list's own.
    pub fn paged(query: &QueryParams, default: usize, max: usize) -> ApiResult<Self> {
        Ok(ListParams {
            limit: parse_limit(query.get("limit"), default, max)?,
            cursor: query.get("cursor").map(Cursor::decode).transpose()?,
            sort: SortField::CreatedAt,
            descending: true,
        })
    }

    /// Also `sort` (`created_at` | `updated_at`) and `order` (`asc` | `desc`, default `desc`).
    pub fn sorted(query: &QueryParams, default: usize, max: usize) -> ApiResult<Self> {
        let sort = enum_param(
            query,
            "sort",
            &[
                ("created_at", SortField::CreatedAt),
                ("updated_at", SortField::UpdatedAt),
            ],
        )?;
        let descending = enum_param(query, "order", &[("asc", false), ("desc", true)])?;
        Ok(ListParams {
            sort: sort.unwrap_or(SortField::CreatedAt),
            descending: descending.unwrap_or(true),
            ..ListParams::paged(query, default, max)?
        })
    }
}

/// An optional enum-valued parameter; an unknown value is 400 `BAD_REQUEST`.
pub fn enum_param<T: Copy>(
    query: &QueryParams,
    name: &str,
    allowed: &[(&str, T)],
) -> ApiResult<Option<T>> {
    let Some(raw) = query.get(name) else {
        return Ok(None);
    };
    allowed
        .iter()
        .find(|(value, _)| *value == raw)
        .map(|(_, v)| Some(*v))
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
            ApiError::bad_request(format!("{name} must be one of: {}", names.join(", ")))
        })
}

/// An optional free-text parameter of at most `max` characters.
pub fn text_param(query: &QueryParams, name: &str, max: usize) -> ApiResult<Option<String>> {
    match query.get(name) {
        Some(raw) if raw.chars().count() > max => Err(ApiError::bad_request(format!(
            "{name} must be at most {max} characters"
        ))),
        other => Ok(other.map(str::to_string)),
    }
}

/// A free-text filter of at most 255 characters, compared in lowercase.
pub fn lowercase_param(query: &QueryParams, name: &str) -> ApiResult<Option<String>> {
    Ok(text_param(query, name, SHORT_TEXT_MAX)?.map(|q| q.to_lowercase()))
}
