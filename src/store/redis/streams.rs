//! Reading streams: pages newest first, bounded filtered pages, consumer-group reads and
//! takeovers, and recreating a group Redis lost.

use std::future::Future;
use std::time::Duration;

use super::connection::Conn;
use redis::Value;

use super::RedisStore;
use super::reply::*;
use crate::metrics as m;
use crate::store::StoreError;
use crate::store::types::*;

/// The part of a stream a listing reads: received/dead time bounds (Unix ms), a cursor
/// (exclusive, newest first) and a page size.
pub(crate) struct Window<'a> {
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
    pub cursor: Option<&'a str>,
    pub limit: usize,
}

impl RedisStore {
    pub(super) async fn range(
        &self,
        op: &'static str,
        key: String,
        cursor: Option<&str>,
        start: String,
        count: usize,
    ) -> Result<Vec<(String, Option<Fields>)>, StoreError> {
        checked_cursor(cursor)?;
        let end = match cursor {
            Some(c) => format!("({c}"),
            None => "+".to_string(),
        };
        self.range_between(op, key, end, start, count).await
    }

    /// XREVRANGE from `end` down to `start`, both as Redis takes them.
    pub(super) async fn range_between(
        &self,
        op: &'static str,
        key: String,
        end: String,
        start: String,
        count: usize,
    ) -> Result<Vec<(String, Option<Fields>)>, StoreError> {
        self.timed(op, async {
            let mut conn = self.conn();
            let v: Value = redis::cmd("XREVRANGE")
                .arg(&key)
                .arg(&end)
                .arg(&start)
                .arg("COUNT")
                .arg(count)
                .query_async(&mut conn)
                .await?;
            parse_entries(v)
        })
        .await
    }

    /// One page of a stream, newest first, each entry read by `row`.
    pub(super) async fn newest_first<T>(
        &self,
        op: &'static str,
        key: String,
        cursor: Option<&str>,
        limit: usize,
        row: fn(String, &Fields) -> T,
    ) -> Result<Page<T>, StoreError> {
        let entries = self.range(op, key, cursor, "-".into(), limit).await?;
        let next_cursor = (entries.len() == limit)
            .then(|| entries.last().map(|(id, _)| id.clone()))
            .flatten();
        let items = entries
            .into_iter()
            .filter_map(|(id, f)| f.map(|f| row(id, &f)))
            .collect();
        Ok(Page { items, next_cursor })
    }

    /// One page of a stream, newest first, within a time window, of the entries `keep` turns
    /// into items (`id_of` gives an item's stream id, the cursor). A bounded number of rounds
    /// keeps a request's cost bounded however sparse the filter; a short page with a cursor
    /// means "more may follow". An entry may stand for several items (an index entry lists a
    /// batch's events), so items past a round's upper end are dropped and a page that would
    /// overflow ends at its last item.
    pub(super) async fn filtered_page<T, F, Fut>(
        &self,
        op: &'static str,
        key: String,
        w: Window<'_>,
        id_of: fn(&T) -> &str,
        mut keep: F,
    ) -> Result<Page<T>, StoreError>
    where
        F: FnMut(StreamEntries) -> Fut,
        Fut: Future<Output = Result<Vec<T>, StoreError>>,
    {
        checked_cursor(w.cursor)?;
        const MAX_ROUNDS: usize = 4;
        let start = w
            .from_ms
            .map(|ms| format!("{ms}-0"))
            .unwrap_or_else(|| "-".to_string());
        // The newest end of the range: the cursor, else `to`.
        let mut cursor = match (w.cursor, w.to_ms) {
            (Some(c), _) => Some(c.to_string()),
            (None, Some(to)) => Some(format!("{}-0", to.saturating_add(1))),
            (None, None) => None,
        };
        let mut items = Vec::with_capacity(w.limit);
        for _ in 0..MAX_ROUNDS {
            let want = w.limit - items.len();
            let entries = self
                .range(op, key.clone(), cursor.as_deref(), start.clone(), want)
                .await?;
            let exhausted = entries.len() < want;
            let upper = cursor.as_deref().and_then(parse_stream_id);
            cursor = entries.last().map(|(id, _)| id.clone()).or(cursor);
            let mut found = keep(entries).await?;
            if let Some(upper) = upper {
                found.retain(|t| parse_stream_id(id_of(t)).is_some_and(|id| id < upper));
            }
            items.extend(found);
            if items.len() > w.limit {
                items.truncate(w.limit);
                let next_cursor = items.last().map(|t| id_of(t).to_string());
                return Ok(Page { items, next_cursor });
            }
            if exhausted {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
            if items.len() >= w.limit {
                break;
            }
        }
        Ok(Page {
            items,
            next_cursor: cursor,
        })
    }

    /// Reads a consumer group's entries for `consumer`: new ones (blocking up to `block`), or
    /// those it holds unacknowledged.
    pub(super) async fn read_group(
        &self,
        op: &'static str,
        (key, group): (String, &str),
        consumer: &str,
        from: ReadFrom,
        count: usize,
        block: Duration,
    ) -> Result<StreamEntries, StoreError> {
        let read = self
            .read_groups(op, (&[key], group), consumer, from, count, block)
            .await?;
        Ok(read.into_iter().flat_map(|(_, entries)| entries).collect())
    }

    /// Reads up to `count` entries of each of `keys` for `group`'s `consumer`, in one call:
    /// each stream's entries, in the order of `keys` (streams without any are left out).
    pub(super) async fn read_groups(
        &self,
        op: &'static str,
        (keys, group): (&[String], &str),
        consumer: &str,
        from: ReadFrom,
        count: usize,
        block: Duration,
    ) -> Result<Vec<(String, StreamEntries)>, StoreError> {
        self.timed(op, async {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(group)
                .arg(consumer)
                .arg("COUNT")
                .arg(count);
            // BLOCK 0 would wait forever: a zero block means "do not wait".
            if from == ReadFrom::New && !block.is_zero() {
                cmd.arg("BLOCK").arg(block.as_millis() as u64);
            }
            cmd.arg("STREAMS").arg(keys);
            for key in keys {
                match from {
                    ReadFrom::New => cmd.arg(">"),
                    ReadFrom::Pending => cmd.arg(self.pending_from(key)),
                };
            }
            let read = |cmd: redis::Cmd| async move {
                let reply: Result<Value, redis::RedisError> = match from {
                    ReadFrom::New => cmd.query_async(&mut self.blocking_conn()).await,
                    ReadFrom::Pending => cmd.query_async(&mut self.conn()).await,
                };
                Ok::<_, StoreError>(reply.map_err(Lost::from))
            };
            let v: Value = match read(cmd.clone()).await? {
                Err(Lost::Group) => {
                    for key in keys {
                        self.recreate_group(key, group).await?;
                    }
                    read(cmd).await??
                }
                other => other?,
            };
            let read = parse_read_reply(v)?;
            if from == ReadFrom::Pending {
                for key in keys {
                    let entries = read.iter().find(|(k, _)| k == key).map(|(_, e)| e);
                    let last = entries.and_then(|e| e.last()).map(|(id, _)| id.as_str());
                    let short = entries.map_or(0, Vec::len) < count;
                    self.pending_read(key, last, short);
                }
            }
            Ok(read)
        })
        .await
    }

    /// Where the next pending read of `key` starts: after the last one of this pass.
    fn pending_from(&self, key: &str) -> String {
        self.pending_pass
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
            .unwrap_or_else(|| "0".to_string())
    }

    /// Notes a pending read: the pass goes on after `last`, or starts again from the
    /// beginning once a read came back short.
    fn pending_read(&self, key: &str, last: Option<&str>, short: bool) {
        let mut pass = self
            .pending_pass
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (short, last) {
            (false, Some(last)) => {
                pass.insert(key.to_string(), last.to_string());
            }
            _ => {
                pass.remove(key);
            }
        }
    }

    /// XAUTOCLAIM: takes over entries other consumers held longer than `min_idle`.
    pub(super) async fn claim_stale(
        &self,
        op: &'static str,
        key: String,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, StoreError> {
        self.timed(op, async {
            let mut conn = self.conn();
            let claimed: Result<Value, redis::RedisError> = redis::cmd("XAUTOCLAIM")
                .arg(&key)
                .arg(group)
                .arg(consumer)
                .arg(min_idle.as_millis() as u64)
                .arg("0-0")
                .arg("COUNT")
                .arg(count)
                .arg("JUSTID")
                .query_async(&mut conn)
                .await;
            let v = match claimed.map_err(Lost::from) {
                // A new group holds nothing to claim.
                Err(Lost::Group) => return self.recreate_group(&key, group).await.map(|()| 0),
                other => other?,
            };
            match v {
                Value::Array(parts) if parts.len() >= 2 => match &parts[1] {
                    Value::Array(ids) => Ok(ids.len()),
                    other => Err(StoreError::Protocol(format!("XAUTOCLAIM ids: {other:?}"))),
                },
                other => Err(StoreError::Protocol(format!("XAUTOCLAIM: {other:?}"))),
            }
        })
        .await
    }

    /// Creates a consumer group that should have existed: Redis lost it (restarted without
    /// its data, or flushed), and with it every entry it held. Reading must go on, and an
    /// operator must know.
    pub(super) async fn recreate_group(&self, key: &str, group: &str) -> Result<(), StoreError> {
        if !create_group(&mut self.conn(), key, group).await? {
            // It is there: another stream of the same read lost its group.
            return Ok(());
        }
        tracing::error!(
            stream = key,
            group,
            "storage lost data it had acknowledged: the consumer group is missing (Redis \
             restarted without its data or was flushed); recreating it. Check Redis persistence \
             (appendonly yes)."
        );
        metrics::counter!(m::STORAGE_DATA_LOST).increment(1);
        Ok(())
    }

    pub(super) fn ms_ago(&self, age: Duration) -> String {
        format!(
            "{}-0",
            crate::time::unix_ms().saturating_sub(age.as_millis() as u64)
        )
    }
}

/// Creates `group` on stream `key` (and the stream), unless it exists; whether it did. From
/// "0", so entries written before the group existed are read too.
pub(super) async fn create_group(
    conn: &mut Conn,
    key: &str,
    group: &str,
) -> Result<bool, StoreError> {
    let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A Redis error, telling a missing consumer group (`NOGROUP`) from the rest.
enum Lost {
    Group,
    Other(redis::RedisError),
}

impl From<redis::RedisError> for Lost {
    fn from(e: redis::RedisError) -> Lost {
        if e.code() == Some("NOGROUP") {
            Lost::Group
        } else {
            Lost::Other(e)
        }
    }
}

impl From<Lost> for StoreError {
    fn from(e: Lost) -> StoreError {
        match e {
            Lost::Group => StoreError::Unavailable("the consumer group is missing".into()),
            Lost::Other(e) => e.into(),
        }
    }
}

/// A cursor this backend handed out (a stream id), or a refusal naming the parameter.
pub(super) fn checked_cursor(cursor: Option<&str>) -> Result<(), StoreError> {
    match cursor {
        Some(c) if !is_stream_id(c) => Err(StoreError::InvalidInput {
            parameter: "cursor",
            problem: "must be a value returned as next_cursor".into(),
        }),
        _ => Ok(()),
    }
}
