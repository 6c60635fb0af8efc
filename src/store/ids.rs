//! Entry ids as both backends make them: the Unix millisecond an entry was stored and a
//! sequence number within it, written `{ms}-{seq}` (Redis's stream id form). They order as
//! the entries were stored, which is what cursors and time windows rely on.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    pub const MAX: EntryId = EntryId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// The first id of millisecond `ms`.
    pub fn at(ms: u64) -> EntryId {
        EntryId { ms, seq: 0 }
    }

    /// Reads `{ms}-{seq}`: digits only, each part within u64.
    pub fn parse(s: &str) -> Option<EntryId> {
        let (ms, seq) = s.split_once('-')?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(EntryId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// As a key that orders as the ids do.
    pub fn key(self) -> u128 {
        (u128::from(self.ms) << 64) | u128::from(self.seq)
    }

    pub fn from_key(key: u128) -> EntryId {
        EntryId {
            ms: (key >> 64) as u64,
            seq: key as u64,
        }
    }

    /// The id after this one.
    pub fn next(self) -> EntryId {
        match self.seq.checked_add(1) {
            Some(seq) => EntryId { ms: self.ms, seq },
            None => EntryId::at(self.ms.saturating_add(1)),
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Marks the ids a partition past 0 of the Redis backend makes: `{id}~{partition}`.
pub const PARTITION_MARK: char = '~';

/// Where an id, as listings show it, goes in their newest-first order: its entry id, its
/// position within a grouped entry (`{entry id}.{position}`, attempts), then the partition
/// that made it (0 unless marked).
pub fn listing_order(id: &str) -> Option<(EntryId, u64, usize)> {
    let (own, partition) = match id.rsplit_once(PARTITION_MARK) {
        Some((own, p)) => (own, p.parse().ok()?),
        None => (id, 0),
    };
    let (entry, position) = match own.split_once('.') {
        Some((entry, n)) => (entry, n.parse().ok()?),
        None => (own, 0),
    };
    Some((EntryId::parse(entry)?, position, partition))
}

/// Makes ids that only grow, even when the wall clock steps back.
#[derive(Debug, Default)]
pub struct IdClock {
    last: EntryId,
}

impl IdClock {
    /// A clock whose ids all come after `last`.
    pub fn after(last: EntryId) -> IdClock {
        IdClock { last }
    }

    pub fn snapshot(&self) -> EntryId {
        self.last
    }

    /// Takes back the ids made since `snapshot` (their transaction was dropped).
    pub fn restore(&mut self, snapshot: EntryId) {
        self.last = snapshot;
    }

    pub fn next(&mut self, now_ms: u64) -> EntryId {
        self.last = if now_ms > self.last.ms {
            EntryId::at(now_ms)
        } else {
            self.last.next()
        };
        self.last
    }
}

/// A queued delivery as the dispatcher names it: its entry id in its lane (the queue of one
/// owner of endpoints), then `@` and the lane's tenant for a tenant's lane (the admin's lane
/// adds nothing).
pub fn lane_entry_id(tenant: &str, entry: &str) -> String {
    if tenant.is_empty() {
        entry.to_string()
    } else {
        format!("{entry}@{tenant}")
    }
}

/// The (tenant, entry id) of a [`lane_entry_id`].
pub fn split_lane_entry_id(id: &str) -> (&str, &str) {
    match id.split_once('@') {
        Some((entry, tenant)) => (tenant, entry),
        None => ("", id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_entry_names_its_lane_and_the_admins_lane_adds_nothing() {
        assert_eq!(lane_entry_id("", "1-0"), "1-0");
        assert_eq!(split_lane_entry_id("1-0"), ("", "1-0"));
        let id = lane_entry_id("t_abc", "5-2");
        assert_eq!(split_lane_entry_id(&id), ("t_abc", "5-2"));
    }

    #[test]
    fn ids_read_back_as_written_and_order_by_time_then_sequence() {
        let a = EntryId::parse("1700000000000-5").expect("an id");
        assert_eq!(a.to_string(), "1700000000000-5");
        assert_eq!(EntryId::from_key(a.key()), a);
        assert!(EntryId::parse("1700000000001-0").expect("id").key() > a.key());
    }

    #[test]
    fn what_is_not_an_id_is_refused() {
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "+1-0",
            "1-x",
            "99999999999999999999-0",
            "1-0-0",
        ] {
            assert_eq!(EntryId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_clock_never_goes_back() {
        let mut clock = IdClock::after(EntryId { ms: 100, seq: 3 });
        assert_eq!(clock.next(50), EntryId { ms: 100, seq: 4 });
        assert_eq!(clock.next(100), EntryId { ms: 100, seq: 5 });
        assert_eq!(clock.next(101), EntryId { ms: 101, seq: 0 });
    }
}
