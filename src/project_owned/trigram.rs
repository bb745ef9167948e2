//! Trigram postings for the `q` substring filters (pg_trgm's idea): a record keeps one ordering
//! entry per distinct three-character sequence of its searchable text, and a query's records
//! are those in the postings of every trigram of the query, checked on the record afterwards.
//! Text is lowercased by the caller, so trigrams compare as the filters do.

use std::collections::BTreeSet;

use crate::project_owned::{IndexEntry, Postings, lookup_prefix};

/// The most trigrams of one query that a list intersects: each costs a seek per candidate, and
/// a few already make a query selective. The rest of the query is checked on the records.
pub const MAX_QUERY_TRIGRAMS: usize = 6;

/// The distinct trigrams of `text`, in characters (not bytes).
pub fn trigrams(text: &str) -> BTreeSet<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(3).map(|w| w.iter().collect()).collect()
}

/// The ordering entries `tag ++ len ++ trigram ++ seq ++ id` of a record whose searchable texts
/// are `texts` (lowercase).
pub fn entries<'a>(
    tag: u8,
    texts: impl IntoIterator<Item = &'a str>,
    seq: u64,
    id: &str,
) -> Vec<IndexEntry> {
    let all: BTreeSet<String> = texts.into_iter().flat_map(trigrams).collect();
    all.iter()
        .map(|t| IndexEntry::order(tag, &lookup_prefix(t), seq, id))
        .collect()
}

/// The postings a list of `query` intersects: at most `MAX_QUERY_TRIGRAMS` of its distinct
/// trigrams, spread from its start to its end. Empty for a query shorter than a trigram: such a
/// query is checked on each record of the walk instead.
pub fn postings(tag: u8, query: &str) -> Vec<Postings> {
    let chars: Vec<char> = query.chars().collect();
    let mut distinct: Vec<String> = Vec::new();
    for window in chars.windows(3) {
        let trigram: String = window.iter().collect();
        if !distinct.contains(&trigram) {
            distinct.push(trigram);
        }
    }
    let picked: Vec<&String> = if distinct.len() <= MAX_QUERY_TRIGRAMS {
        distinct.iter().collect()
    } else {
        let last = distinct.len() - 1;
        (0..MAX_QUERY_TRIGRAMS)
            .map(|i| &distinct[i * last / (MAX_QUERY_TRIGRAMS - 1)])
            .collect()
    };
    picked
        .into_iter()
        .map(|t| Postings {
            tag,
            group: lookup_prefix(t),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigrams_are_characters_not_bytes() {
        let found: Vec<String> = trigrams("héllo").into_iter().collect();
        assert_eq!(found, ["hél", "llo", "éll"]);
        assert!(trigrams("ab").is_empty());
    }

    #[test]
    fn a_substring_has_only_trigrams_of_its_text() {
        let text = trigrams("ann@example.com");
        for t in trigrams("example") {
            assert!(text.contains(&t), "{t}");
        }
    }

    #[test]
    fn queries_intersect_a_bounded_spread_of_trigrams() {
        assert!(postings(1, "ab").is_empty());
        assert_eq!(postings(1, "abc").len(), 1);
        // "aaaa" has one distinct trigram.
        assert_eq!(postings(1, "aaaa").len(), 1);
        let long = postings(1, "the quick brown fox jumps");
        assert_eq!(long.len(), MAX_QUERY_TRIGRAMS);
        assert_eq!(long[0].group, lookup_prefix("the"));
        assert_eq!(long[MAX_QUERY_TRIGRAMS - 1].group, lookup_prefix("mps"));
    }
}
