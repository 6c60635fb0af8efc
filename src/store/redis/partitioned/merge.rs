//! Listings over every partition, newest first: each partition is asked for a page after its
//! own cursor, the pages are merged by id, and the cursor handed out says where each stands.
//! Ids order by the time their partition stored them; entries of one millisecond in two
//! partitions are ordered by partition.

use crate::store::ids::{EntryId, listing_order};
use crate::store::{Page, StoreError};

use super::ids::{PartCursor, format_cursor, parse_cursor};

/// Where an item of partition `partition` (its id as the partition made it) goes in a
/// newest-first listing.
fn order_of(id: &str, partition: usize) -> (EntryId, u64, usize) {
    let (entry, position, _) = listing_order(id).unwrap_or_default();
    (entry, position, partition)
}

/// One partition's page.
pub(super) struct PartPage<T> {
    pub partition: usize,
    pub page: Page<T>,
}

/// Takes the `limit` newest items of `pages`, and moves each partition's cursor past what
/// was taken of it: the partition's own next cursor when all of its page was taken, else the
/// last item taken (the rest comes again on the next page).
pub(super) fn take_newest<T>(
    pages: Vec<PartPage<T>>,
    cursors: &mut [PartCursor],
    limit: usize,
    id_of: impl Fn(&T) -> &str,
) -> Vec<(usize, T)> {
    let mut all: Vec<(usize, T)> = Vec::new();
    let mut offered = vec![0usize; cursors.len()];
    let mut next = vec![None; cursors.len()];
    for PartPage { partition, page } in pages {
        offered[partition] = page.items.len();
        next[partition] = Some(page.next_cursor);
        all.extend(page.items.into_iter().map(|t| (partition, t)));
    }
    all.sort_by_key(|(p, t)| std::cmp::Reverse(order_of(id_of(t), *p)));
    all.truncate(limit);
    let mut taken = vec![0usize; cursors.len()];
    let mut last: Vec<Option<String>> = vec![None; cursors.len()];
    for (p, item) in &all {
        taken[*p] += 1;
        last[*p] = Some(id_of(item).to_string());
    }
    for (p, cursor) in cursors.iter_mut().enumerate() {
        let Some(own_next) = next[p].take() else {
            continue; // not asked: done already
        };
        if taken[p] == offered[p] {
            *cursor = own_next.map_or(PartCursor::Done, PartCursor::After);
        } else if let Some(id) = last[p].take() {
            *cursor = PartCursor::After(id);
        }
    }
    all
}

/// A listing over `count` partitions: `page_of(p, cursor)` reads partition p's page after its
/// cursor, `id_of` gives an item's id (as its partition made it), `mark` marks an item's ids
/// as its partition's. Partitions are read concurrently.
pub(super) async fn merged<T, F, Fut>(
    count: usize,
    cursor: Option<&str>,
    limit: usize,
    page_of: F,
    id_of: impl Fn(&T) -> &str,
    mark: impl Fn(&mut T, usize),
) -> Result<Page<T>, StoreError>
where
    F: Fn(usize, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, StoreError>>,
{
    let mut cursors = parse_cursor(cursor, count)?;
    let reads = cursors.iter().enumerate().filter_map(|(p, c)| match c {
        PartCursor::Done => None,
        PartCursor::Start => Some((p, None)),
        PartCursor::After(c) => Some((p, Some(c.clone()))),
    });
    let pages = futures_util::future::try_join_all(reads.map(|(p, c)| {
        let read = page_of(p, c);
        async move {
            Ok::<_, StoreError>(PartPage {
                partition: p,
                page: read.await?,
            })
        }
    }))
    .await?;
    let items = take_newest(pages, &mut cursors, limit, id_of)
        .into_iter()
        .map(|(p, mut item)| {
            mark(&mut item, p);
            item
        })
        .collect();
    Ok(Page {
        items,
        next_cursor: format_cursor(&cursors),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(partition: usize, ids: &[&str], next: Option<&str>) -> PartPage<String> {
        PartPage {
            partition,
            page: Page {
                items: ids.iter().map(|s| s.to_string()).collect(),
                next_cursor: next.map(str::to_string),
            },
        }
    }

    #[test]
    fn the_newest_items_of_every_partition_come_first_and_the_cursor_resumes_each() {
        let mut cursors = vec![PartCursor::Start, PartCursor::Start];
        let taken = take_newest(
            vec![
                page(0, &["9-0", "5-0", "1-0"], Some("1-0")),
                page(1, &["8-0", "7-0", "2-0"], Some("2-0")),
            ],
            &mut cursors,
            3,
            String::as_str,
        );
        let ids: Vec<(usize, &str)> = taken.iter().map(|(p, s)| (*p, s.as_str())).collect();
        assert_eq!(ids, [(0, "9-0"), (1, "8-0"), (1, "7-0")]);
        assert_eq!(
            cursors,
            [
                PartCursor::After("9-0".into()),
                PartCursor::After("7-0".into())
            ]
        );
    }

    #[test]
    fn a_partition_read_to_its_end_is_done_and_one_not_asked_stays_as_it_was() {
        let mut cursors = vec![PartCursor::Start, PartCursor::Done, PartCursor::Start];
        take_newest(
            vec![page(0, &["3-0"], None), page(2, &["4-0"], Some("4-0"))],
            &mut cursors,
            10,
            String::as_str,
        );
        assert_eq!(
            cursors,
            [
                PartCursor::Done,
                PartCursor::Done,
                PartCursor::After("4-0".into())
            ]
        );
    }

    #[test]
    fn attempts_of_one_entry_go_newest_position_first_and_a_tie_goes_by_partition() {
        let mut cursors = vec![PartCursor::Start, PartCursor::Start];
        let taken = take_newest(
            vec![
                page(0, &["5-0.1", "5-0.0"], None),
                page(1, &["5-0.1"], None),
            ],
            &mut cursors,
            10,
            String::as_str,
        );
        let order: Vec<(usize, &str)> = taken.iter().map(|(p, s)| (*p, s.as_str())).collect();
        assert_eq!(order, [(1, "5-0.1"), (0, "5-0.1"), (0, "5-0.0")]);
    }
}
