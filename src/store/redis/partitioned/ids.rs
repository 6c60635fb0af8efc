//! Ids and cursors of a partitioned store. Each partition makes its ids as one Redis does
//! (`1700000000000-0`); partition p > 0 marks its own with `~p`, so that an id says where to
//! look and ids of two partitions never collide. Partition 0's ids carry no mark: they read
//! the same as before there were partitions.
//!
//! A cursor of a listing over every partition holds each partition's own cursor.

use crate::store::StoreError;
use crate::store::ids::PARTITION_MARK as MARK;

/// Id `id` of partition `p`, as callers see it.
pub(super) fn qualify(id: &str, p: usize) -> String {
    if p == 0 {
        id.to_string()
    } else {
        format!("{id}{MARK}{p}")
    }
}

/// Marks `id` in place.
pub(super) fn mark(id: &mut String, p: usize) {
    if p != 0 {
        *id = qualify(id, p);
    }
}

/// The partition of id `id` (of `count`), and the id as that partition knows it.
pub(super) fn split<'a>(
    parameter: &'static str,
    id: &'a str,
    count: usize,
) -> Result<(usize, &'a str), StoreError> {
    let Some((own, p)) = id.rsplit_once(MARK) else {
        return Ok((0, id));
    };
    match p.parse::<usize>() {
        Ok(p) if p > 0 && p < count => Ok((p, own)),
        _ => Err(StoreError::InvalidInput {
            parameter,
            problem: format!("{id:?} is not an id this deployment made"),
        }),
    }
}

/// The id as its partition knows it, when it is `p`'s; `None` for another partition's.
pub(super) fn own_in(id: &str, p: usize, count: usize) -> Option<&str> {
    match split("id", id, count) {
        Ok((q, own)) if q == p => Some(own),
        _ => None,
    }
}

/// Where a listing stands in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PartCursor {
    /// Nothing read yet.
    Start,
    /// After this entry (the partition's own cursor).
    After(String),
    /// Read to the end.
    Done,
}

/// Reads a listing cursor over `count` partitions; `None` starts every partition.
pub(super) fn parse_cursor(
    cursor: Option<&str>,
    count: usize,
) -> Result<Vec<PartCursor>, StoreError> {
    let Some(cursor) = cursor else {
        return Ok(vec![PartCursor::Start; count]);
    };
    let parts: Vec<PartCursor> = cursor
        .split(',')
        .map(|c| match c {
            "" => PartCursor::Start,
            "." => PartCursor::Done,
            c => PartCursor::After(c.to_string()),
        })
        .collect();
    if parts.len() != count || parts.iter().all(|c| *c == PartCursor::Done) {
        return Err(StoreError::InvalidInput {
            parameter: "cursor",
            problem: "must be a value returned as next_cursor".into(),
        });
    }
    Ok(parts)
}

/// The cursor to hand out, `None` when every partition was read to the end.
pub(super) fn format_cursor(parts: &[PartCursor]) -> Option<String> {
    if parts.iter().all(|c| *c == PartCursor::Done) {
        return None;
    }
    Some(
        parts
            .iter()
            .map(|c| match c {
                PartCursor::Start => "",
                PartCursor::After(c) => c.as_str(),
                PartCursor::Done => ".",
            })
            .collect::<Vec<_>>()
            .join(","),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_zeros_ids_are_as_one_redis_makes_them_and_the_others_are_marked() {
        assert_eq!(qualify("17-0", 0), "17-0");
        assert_eq!(qualify("17-0", 3), "17-0~3");
        assert_eq!(split("id", "17-0~3", 4).ok(), Some((3, "17-0")));
        assert_eq!(split("id", "17-0", 4).ok(), Some((0, "17-0")));
        assert_eq!(qualify("17-0@t_1", 2), "17-0@t_1~2", "lane entry ids too");
    }

    #[test]
    fn an_id_of_a_partition_that_does_not_exist_is_invalid_input() {
        for id in ["17-0~4", "17-0~0", "17-0~x", "17-0~"] {
            assert!(
                matches!(split("id", id, 4), Err(StoreError::InvalidInput { .. })),
                "{id}"
            );
        }
    }

    #[test]
    fn a_cursor_holds_each_partitions_place_and_refuses_any_other_shape() {
        let parts = vec![
            PartCursor::Start,
            PartCursor::After("5-1".into()),
            PartCursor::Done,
        ];
        let c = format_cursor(&parts).expect("not done");
        assert_eq!(parse_cursor(Some(&c), 3).ok(), Some(parts));
        assert!(parse_cursor(Some(&c), 2).is_err());
        assert!(parse_cursor(Some(".,.,."), 3).is_err());
        assert_eq!(format_cursor(&[PartCursor::Done, PartCursor::Done]), None);
    }
}
