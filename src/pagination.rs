//! Cursor pagination (docs/api/README.md). A cursor is (sort value, id): a position in the
//! listing's order, so a walk stays stable while new items are inserted. It is written as the sort
//! value in 16 lowercase hex digits followed by the id, so that `CURSOR_PATTERN` describes exactly
//! the cursors the server reads: any string it matches is a position, and any other is malformed.

use serde::Serialize;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub sort: u64,
    pub id: String,
}

/// Every cursor the server reads, and nothing else (ids are lowercase letters, digits and `_`).
pub const CURSOR_PATTERN: &str = "^[0-9a-f]{16}[a-z0-9_]{1,64}$";

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{:016x}{}", self.sort, self.id)
    }

    pub fn decode(text: &str) -> ApiResult<Cursor> {
        let invalid = || ApiError::bad_request("Invalid cursor");
        let (sort, id) = text.split_at_checked(16).ok_or_else(invalid)?;
        let id_ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let sort_ok = sort
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !(id_ok && sort_ok) {
            return Err(invalid());
        }
        let sort = u64::from_str_radix(sort, 16).map_err(|_| invalid())?;
        Ok(Cursor {
            sort,
            id: id.to_string(),
        })
    }
}

/// Reads `limit`: absent → `default`; above `max`, however large → clamped (docs/api/README.md);
/// below 1 or not a decimal integer → 400.
pub fn parse_limit(raw: Option<&str>, default: usize, max: usize) -> ApiResult<usize> {
    let Some(text) = raw else {
        return Ok(default);
    };
    // ASCII whitespace around the digits is allowed (`?limit=+5` decodes to " 5").
    let digits = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "limit must be an integer of at least 1",
        ));
    }
    let significant = digits.trim_start_matches('0');
    match significant.parse::<usize>() {
        _ if significant.is_empty() => Err(ApiError::bad_request(
            "limit must be an integer of at least 1",
        )),
        Ok(n) => Ok(n.min(max)),
        // Only digits, so the one failure left is overflow: a number above any maximum.
        Err(_) => Ok(max),
    }
}

/// One page of a listing, before rendering.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// `has_more` is known by the caller (it looked one item further); the cursor points at the
    /// last item returned.
    pub fn new(items: Vec<T>, has_more: bool, position: impl Fn(&T) -> Cursor) -> Self {
        let next = if has_more {
            items.last().map(position)
        } else {
            None
        };
        Page { items, next }
    }

    pub fn render<V: Serialize>(&self, view: impl Fn(&T) -> V) -> PageBody<V> {
        PageBody {
            data: self.items.iter().map(view).collect(),
            has_more: self.next.is_some(),
            cursor: self.next.as_ref().map(Cursor::encode),
        }
    }
}

/// `{data, cursor, has_more}`: never `has_more: true` with a null cursor.
#[derive(Debug, Serialize)]
pub struct PageBody<V> {
    pub data: Vec<V>,
    pub cursor: Option<String>,
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let c = Cursor {
            sort: 42,
            id: "con_abcdefghijkl".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert_eq!(c.encode(), "000000000000002acon_abcdefghijkl");
        let last = Cursor {
            sort: u64::MAX,
            id: "x".into(),
        };
        assert_eq!(Cursor::decode(&last.encode()).unwrap(), last);
    }

    #[test]
    fn malformed_cursors_are_bad_requests() {
        for bad in [
            "",
            "!!!",
            "YWJj",
            "000000000000002a",
            "000000000000002A con_x",
            "+00000000000002acon_x",
            "000000000000002aCON_x",
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None, 50, 100).unwrap(), 50);
        assert_eq!(parse_limit(Some("7"), 50, 100).unwrap(), 7);
        assert_eq!(parse_limit(Some("1000"), 50, 100).unwrap(), 100);
        assert_eq!(parse_limit(Some("007"), 50, 100).unwrap(), 7);
        let huge = "9".repeat(400);
        for large in ["9223372036854775808", "18446744073709551616", huge.as_str()] {
            assert_eq!(parse_limit(Some(large), 50, 100).unwrap(), 100, "{large}");
        }
        assert_eq!(parse_limit(Some(" 5\t"), 50, 100).unwrap(), 5);
        for bad in [
            "0", "000", "-1", "-0", "+5", "x", "1.5", "", "  ", "1e3", "\u{a0}5",
        ] {
            assert!(parse_limit(Some(bad), 50, 100).is_err(), "{bad}");
        }
    }
}
