//! Listing: one page of a kind's records in an ordering index, after a cursor, walked through
//! the postings of its filters (one pass, or a leapfrog intersection) within a budget of index
//! entries.

use std::ops::{Bound, ControlFlow};

use crate::error::{ApiError, ApiResult};
use crate::pagination::{Cursor, Page};
use crate::project_owned::kind::{Kind, Postings};
use crate::project_owned::scope::{ProjectScope, decode_u64};
use crate::store::{Reader, layout, tables};

/// Which ordering index to walk, within which group (e.g. one conversation's messages).
pub struct Order<'a> {
    pub tag: u8,
    pub group: &'a [u8],
    pub descending: bool,
}

/// What a filtered list walks and how far one page may go.
pub struct Walk<'a> {
    pub order: Order<'a>,
    /// Postings in `order`'s positions whose intersection holds every record that can match;
    /// empty: the ordering itself is walked.
    pub postings: Vec<Postings>,
    /// Most index entries the page reads before it returns what it has.
    pub budget: u64,
}

/// A page of a walk, and whether the walk spent its whole budget: the page may then have ended
/// early, which a caller that tried a small budget first takes as "run it again with more".
pub struct Walked<K> {
    pub page: Page<K>,
    pub spent: bool,
}

/// One page in `order`, after `cursor`, of the records that pass `filter`. Filters apply
/// before paging, so `limit` counts matching records. Unbounded: for lists whose size is
/// bounded otherwise (plain lists, recent deliveries, a transcript).
pub fn list<K: Kind>(
    reader: &impl Reader,
    scope: &ProjectScope,
    order: Order<'_>,
    cursor: Option<&Cursor>,
    limit: usize,
    filter: impl Fn(&K) -> bool,
) -> ApiResult<Page<K>> {
    let walk = Walk {
        order,
        postings: Vec::new(),
        budget: u64::MAX,
    };
    Ok(list_within(reader, scope, &walk, cursor, limit, filter)?.page)
}

/// Entries read from each posting list to judge how sparse it is.
const SAMPLE: usize = 8;
/// The most posting lists one page intersects (the sparsest of those a filter names).
const MOST_INTERSECTED: usize = 3;

/// Why a page ended.
enum Stop {
    /// The walk reached the end: no cursor.
    End,
    /// Another match exists past the page: resume after the last decided position.
    Resume,
    /// The budget ran out: resume after the last decided position.
    Spent,
}

/// One page of the records at the positions present in every posting list of `walk` (the
/// ordering when there are none), checked with `filter`. The lists are intersected by seeking
/// each to the others' next position (leapfrog), so the cost follows the rarest list and the
/// page, not the project. The page reads at most `walk.budget` index entries; when they run
/// out it returns what it found, with a cursor at the last position it decided, which the next
/// page resumes from (docs/api/README.md: a page may hold fewer than `limit` items).
pub fn list_within<K: Kind>(
    reader: &impl Reader,
    scope: &ProjectScope,
    walk: &Walk<'_>,
    cursor: Option<&Cursor>,
    limit: usize,
    filter: impl Fn(&K) -> bool,
) -> ApiResult<Walked<K>> {
    let lists: Vec<Vec<u8>> = if walk.postings.is_empty() {
        vec![scope.key(walk.order.tag, walk.order.group)]
    } else {
        walk.postings
            .iter()
            .map(|p| scope.key(p.tag, &p.group))
            .collect()
    };
    let descending = walk.order.descending;
    let mut walker = Walker {
        reader,
        scope,
        budget: walk.budget,
        decided: cursor.map(position_of),
        items: Vec::new(),
        limit,
        filter,
    };
    let lists = walker.sparsest(lists, descending)?;
    let stop = if let [list] = lists.as_slice() {
        walker.stream(list, descending)?
    } else {
        walker.leapfrog(&lists, descending)?
    };
    let next = match stop {
        Stop::End => None,
        Stop::Resume | Stop::Spent => Some(
            walker
                .decided
                .as_deref()
                .map(cursor_of)
                .ok_or_else(|| ApiError::internal("a page ended before deciding a position"))?,
        ),
    };
    Ok(Walked {
        page: Page {
            items: walker.items,
            next,
        },
        spent: matches!(stop, Stop::Spent),
    })
}

/// The state of one page's walk. A position is `sort (8 bytes) ++ id`, the tail of every key of
/// the lists it walks.
struct Walker<'r, R, K, F> {
    reader: &'r R,
    scope: &'r ProjectScope,
    budget: u64,
    /// Every position up to this one (in the walk's direction) is decided: returned, or known
    /// not to match.
    decided: Option<Vec<u8>>,
    items: Vec<K>,
    limit: usize,
    filter: F,
}

/// What deciding one candidate found.
enum Decision {
    Next,
    PageFull,
}

impl<R: Reader, K: Kind, F: Fn(&K) -> bool> Walker<'_, R, K, F> {
    /// Takes one index entry from the budget; false once it is spent.
    fn spend(&mut self) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        true
    }

    /// Fetches the record at `position` and keeps it if it passes the filter.
    fn decide(&mut self, position: &[u8]) -> ApiResult<Decision> {
        let id = &position[8..];
        let record: K = self
            .reader
            .get(tables::OWNED, &self.scope.key(K::TAG, id))?
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "index entry without record: {}",
                    String::from_utf8_lossy(id)
                ))
            })?;
        if (self.filter)(&record) {
            if self.items.len() == self.limit {
                return Ok(Decision::PageFull);
            }
            self.items.push(record);
        }
        self.decided = Some(position.to_vec());
        Ok(Decision::Next)
    }

    /// At most `MOST_INTERSECTED` of `lists`: those whose `SAMPLE`th entry after the cursor
    /// lies furthest from where the walk starts (the nearest first entry of any list), so a
    /// list whose entries sit together far away counts as sparse, as the seek that skips to
    /// them does; a list that ends within its sample counts as the sparsest. A dense list
    /// rarely rules a candidate out but costs a seek for each, and dropping one only widens
    /// the candidates, which the filter checks on the records. Kept whole when there are few
    /// lists or the samples would take more than a quarter of the budget.
    fn sparsest(&mut self, lists: Vec<Vec<u8>>, descending: bool) -> ApiResult<Vec<Vec<u8>>> {
        let cost = u64::try_from(SAMPLE * lists.len()).unwrap_or(u64::MAX);
        if lists.len() <= MOST_INTERSECTED || self.budget / 4 < cost {
            return Ok(lists);
        }
        let mut samples = Vec::with_capacity(lists.len());
        for list in lists {
            let range = after(&list, self.decided.as_deref(), false, descending);
            let mut sorts: Vec<u64> = Vec::with_capacity(SAMPLE);
            let reader = self.reader;
            reader.scan(tables::OWNED, range, descending, &mut |key, _| {
                self.budget -= 1;
                sorts.push(decode_u64(&tail_of(key, &list)?[..8]));
                Ok(if sorts.len() == SAMPLE {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            })?;
            samples.push((sorts, list));
        }
        let firsts = samples
            .iter()
            .filter_map(|(sorts, _)| sorts.first().copied());
        let start = if descending {
            firsts.max()
        } else {
            firsts.min()
        }
        .unwrap_or(0);
        let mut spread: Vec<(u64, Vec<u8>)> = samples
            .into_iter()
            .map(|(sorts, list)| match sorts.last() {
                Some(last) if sorts.len() == SAMPLE => (start.abs_diff(*last), list),
                _ => (u64::MAX, list),
            })
            .collect();
        // Furthest first; equal spreads keep the kind's order.
        spread.sort_by_key(|(gap, _)| std::cmp::Reverse(*gap));
        spread.truncate(MOST_INTERSECTED);
        Ok(spread.into_iter().map(|(_, list)| list).collect())
    }

    /// One list: a single pass over its range after the cursor.
    fn stream(&mut self, list: &[u8], descending: bool) -> ApiResult<Stop> {
        let range = after(list, self.decided.as_deref(), false, descending);
        let mut stop = Stop::End;
        let mut failure = None;
        let reader = self.reader;
        reader.scan(tables::OWNED, range, descending, &mut |key, _| {
            if !self.spend() {
                stop = Stop::Spent;
                return Ok(ControlFlow::Break(()));
            }
            let position = match tail_of(key, list) {
                Ok(position) => position,
                Err(err) => {
                    failure = Some(err);
                    return Ok(ControlFlow::Break(()));
                }
            };
            match self.decide(position)? {
                Decision::Next => Ok(ControlFlow::Continue(())),
                Decision::PageFull => {
                    stop = Stop::Resume;
                    Ok(ControlFlow::Break(()))
                }
            }
        })?;
        failure.map_or(Ok(stop), Err)
    }

    /// Several lists: the next position of the first list after the decided one is a
    /// candidate; each other list is sought from it, and a list whose next position lies
    /// further makes that the candidate, until every list holds it.
    fn leapfrog(&mut self, lists: &[Vec<u8>], descending: bool) -> ApiResult<Stop> {
        loop {
            if !self.spend() {
                return Ok(Stop::Spent);
            }
            let Some(mut candidate) =
                self.seek(&lists[0], self.decided.clone(), false, descending)?
            else {
                return Ok(Stop::End);
            };
            let mut agreed = 1;
            let mut turn = 1;
            while agreed < lists.len() {
                if !self.spend() {
                    return Ok(Stop::Spent);
                }
                let Some(found) =
                    self.seek(&lists[turn], Some(candidate.clone()), true, descending)?
                else {
                    return Ok(Stop::End);
                };
                if found == candidate {
                    agreed += 1;
                } else {
                    // The candidate is missing from this list: it and everything before it
                    // is decided.
                    self.decided = Some(std::mem::replace(&mut candidate, found));
                    agreed = 1;
                }
                turn = (turn + 1) % lists.len();
            }
            if let Decision::PageFull = self.decide(&candidate)? {
                return Ok(Stop::Resume);
            }
        }
    }

    /// The first position of `list` after (or at, if `inclusive`) `from`.
    fn seek(
        &self,
        list: &[u8],
        from: Option<Vec<u8>>,
        inclusive: bool,
        descending: bool,
    ) -> ApiResult<Option<Vec<u8>>> {
        let range = after(list, from.as_deref(), inclusive, descending);
        let mut found = None;
        self.reader
            .scan(tables::OWNED, range, descending, &mut |key, _| {
                found = Some(tail_of(key, list).map(<[u8]>::to_vec));
                Ok(ControlFlow::Break(()))
            })?;
        found.transpose()
    }
}

/// The keys of `list` past `from` in the walk's direction (all of them without `from`).
fn after(list: &[u8], from: Option<&[u8]>, inclusive: bool, descending: bool) -> layout::KeyRange {
    let (mut start, mut end) = layout::prefix_range(list);
    if let Some(position) = from {
        let mut key = list.to_vec();
        key.extend_from_slice(position);
        let bound = if inclusive {
            Bound::Included(key)
        } else {
            Bound::Excluded(key)
        };
        if descending {
            end = bound
        } else {
            start = bound
        }
    }
    (start, end)
}

/// The position (`sort ++ id`) of a key of `list`.
fn tail_of<'k>(key: &'k [u8], list: &[u8]) -> ApiResult<&'k [u8]> {
    key.get(list.len()..)
        .filter(|tail| tail.len() > 8)
        .ok_or_else(|| ApiError::internal("malformed ordering key"))
}

fn position_of(cursor: &Cursor) -> Vec<u8> {
    let mut position = cursor.sort.to_be_bytes().to_vec();
    position.extend_from_slice(cursor.id.as_bytes());
    position
}

fn cursor_of(position: &[u8]) -> Cursor {
    let (sort, id) = position.split_at(8.min(position.len()));
    Cursor {
        sort: decode_u64(sort),
        id: String::from_utf8_lossy(id).into_owned(),
    }
}
