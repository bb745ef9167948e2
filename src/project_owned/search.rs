//! Keyword relevance for the knowledge base: a BM25F-style score over title and content
//! (docs/design.md explains it). Pure functions; `kb` keeps the postings in the store.

use std::collections::BTreeSet;

/// A title occurrence counts as much as this many content occurrences.
pub const TITLE_WEIGHT: u32 = 3;
const K1: f64 = 1.2;
const B: f64 = 0.75;
const MIN_TERM_CHARS: usize = 2;
const MAX_TERM_BYTES: usize = 64;
/// A search query may be a whole question, so it gets more room than other short strings.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Query terms beyond this many are ignored.
pub const MAX_QUERY_TERMS: usize = 32;

const STOP_WORDS: &[&str] = &[
    "an", "and", "are", "as", "at", "be", "but", "by", "do", "does", "for", "from", "how", "if",
    "in", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "so", "than", "that",
    "the", "then", "there", "these", "this", "to", "was", "we", "what", "when", "where", "which",
    "who", "why", "will", "with", "you", "your",
];

/// Lowercased words of letters and digits, without stop words and one-letter words.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.chars().count() >= MIN_TERM_CHARS && word.len() <= MAX_TERM_BYTES)
        .map(str::to_lowercase)
        .filter(|word| !STOP_WORDS.contains(&word.as_str()))
}

/// The distinct terms of a query, in a stable order.
pub fn query_terms(query: &str) -> Vec<String> {
    tokens(query)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .take(MAX_QUERY_TERMS)
        .collect()
}

/// How often one term occurs in one article, and the article's weighted length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermStats {
    pub title_tf: u32,
    pub content_tf: u32,
    pub doc_len: u32,
}

impl TermStats {
    fn weighted_tf(self) -> f64 {
        f64::from(TITLE_WEIGHT * self.title_tf + self.content_tf)
    }
}

/// Inverse document frequency, never negative.
pub fn idf(docs: u64, df: u64) -> f64 {
    let (n, df) = (docs as f64, df as f64);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// One term's contribution to one article's score.
pub fn term_score(idf: f64, stats: TermStats, avg_doc_len: f64) -> f64 {
    let tf = stats.weighted_tf();
    let norm = 1.0 - B + B * f64::from(stats.doc_len) / avg_doc_len.max(1.0);
    idf * tf * (K1 + 1.0) / (tf + K1 * norm)
}

/// The most a term can contribute (its saturation limit), so that the sum over the query's
/// terms maps raw scores into 0-1.
pub fn term_ceiling(idf: f64) -> f64 {
    idf * (K1 + 1.0)
}

/// Weighted length of an article: title words count `TITLE_WEIGHT` times.
pub fn doc_len(title: &str, content: &str) -> u32 {
    let count = |text: &str| u32::try_from(tokens(text).count()).unwrap_or(u32::MAX);
    TITLE_WEIGHT
        .saturating_mul(count(title))
        .saturating_add(count(content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_words() {
        let t: Vec<String> = tokens("How do I reset my Password? Reset-link, v2!").collect();
        assert_eq!(t, ["reset", "password", "reset", "link", "v2"]);
        assert_eq!(
            query_terms("reset the RESET password"),
            ["password", "reset"]
        );
    }

    #[test]
    fn title_hits_outscore_content_hits() {
        let idf = idf(10, 2);
        let in_title = TermStats {
            title_tf: 1,
            content_tf: 0,
            doc_len: 20,
        };
        let in_content = TermStats {
            title_tf: 0,
            content_tf: 1,
            doc_len: 20,
        };
        assert!(term_score(idf, in_title, 20.0) > term_score(idf, in_content, 20.0));
    }

    #[test]
    fn scores_stay_below_the_ceiling() {
        let idf = idf(3, 1);
        let heavy = TermStats {
            title_tf: 50,
            content_tf: 500,
            doc_len: 600,
        };
        let score = term_score(idf, heavy, 100.0);
        assert!(score > 0.0 && score < term_ceiling(idf));
    }

    #[test]
    fn rare_terms_weigh_more() {
        assert!(idf(100, 1) > idf(100, 50));
        assert!(idf(1, 1) > 0.0);
    }
}
