//! Compares embedded engines on hookd's write pattern, on the disk of the directory given.
//! Per round: journal a batch of requests durably (one fsync), then split them (events,
//! dedup keys, queue entries, acknowledgement) and deliver them (dequeue, attempt record).
use std::time::Instant;

const BODY: usize = 1200;
const EVENT: usize = 300;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let batch: usize = std::env::var("BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    for round in 0..3 {
        for engine in ["redb", "fjall"] {
            let tmp = tempfile::tempdir_in(&dir).unwrap();
            let t = Instant::now();
            let lat = match engine {
                "redb" => redb_run(tmp.path(), batch, rounds),
                _ => fjall_run(tmp.path(), batch, rounds),
            };
            let secs = t.elapsed().as_secs_f64();
            let mut lat = lat;
            lat.sort();
            println!(
                "round {round} {engine:6} requests/s {:>8.0}  events/s {:>8.0}  durable commit p50 {:?} p99 {:?}",
                (batch * rounds) as f64 / secs,
                (batch * rounds * 10) as f64 / secs,
                lat[lat.len() / 2],
                lat[lat.len() * 99 / 100]
            );
        }
    }
}

fn key(seq: u64) -> [u8; 8] { seq.to_be_bytes() }

mod tables {
    use redb::TableDefinition;
    pub const JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");
    pub const PENDING: TableDefinition<u64, ()> = TableDefinition::new("pending");
    pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
    pub const DEDUP: TableDefinition<&[u8], u64> = TableDefinition::new("dedup");
    pub const QUEUE: TableDefinition<u64, u64> = TableDefinition::new("queue");
    pub const ATTEMPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("attempts");
}

fn redb_run(path: &std::path::Path, batch: usize, rounds: usize) -> Vec<std::time::Duration> {
    use tables::*;
    use redb::ReadableTable;
    let db = redb::Database::create(path.join("db")).unwrap();
    let body = vec![7u8; BODY];
    let event = vec![9u8; EVENT];
    let mut lat = Vec::new();
    let (mut j, mut e, mut a) = (0u64, 0u64, 0u64);
    for _ in 0..rounds {
        let t = Instant::now();
        let w = db.begin_write().unwrap();
        {
            let mut jt = w.open_table(JOURNAL).unwrap();
            let mut pt = w.open_table(PENDING).unwrap();
            for _ in 0..batch {
                j += 1;
                jt.insert(j, body.as_slice()).unwrap();
                pt.insert(j, ()).unwrap();
            }
        }
        w.commit().unwrap();
        lat.push(t.elapsed());
        // split: one non-durable commit
        let mut w = db.begin_write().unwrap();
        w.set_durability(redb::Durability::None).unwrap();
        {
            let mut pt = w.open_table(PENDING).unwrap();
            let mut et = w.open_table(EVENTS).unwrap();
            let mut dt = w.open_table(DEDUP).unwrap();
            let mut qt = w.open_table(QUEUE).unwrap();
            let ids: Vec<u64> = pt.iter().unwrap().map(|r| r.unwrap().0.value()).collect();
            for id in ids {
                pt.remove(id).unwrap();
                for k in 0..10u64 {
                    e += 1;
                    let dk = (id * 100 + k).to_be_bytes();
                    if dt.insert(dk.as_slice(), e).unwrap().is_none() {
                        et.insert(e, event.as_slice()).unwrap();
                        qt.insert(e, e).unwrap();
                    }
                }
            }
        }
        w.commit().unwrap();
        // deliver: one non-durable commit
        let mut w = db.begin_write().unwrap();
        w.set_durability(redb::Durability::None).unwrap();
        {
            let mut qt = w.open_table(QUEUE).unwrap();
            let mut at = w.open_table(ATTEMPTS).unwrap();
            let et = w.open_table(EVENTS).unwrap();
            let ids: Vec<u64> = qt.iter().unwrap().map(|r| r.unwrap().0.value()).collect();
            for id in ids {
                let _ = et.get(id).unwrap().unwrap().value().len();
                qt.remove(id).unwrap();
                a += 1;
                at.insert(a, b"{\"status\":200,\"duration_ms\":3}".as_slice()).unwrap();
            }
        }
        w.commit().unwrap();
    }
    lat
}

fn fjall_run(path: &std::path::Path, batch: usize, rounds: usize) -> Vec<std::time::Duration> {
    use fjall::{Database, KeyspaceCreateOptions, PersistMode};
    let db = Database::builder(path.join("db")).open().unwrap();
    let jt = db.keyspace("journal", KeyspaceCreateOptions::default).unwrap();
    let pt = db.keyspace("pending", KeyspaceCreateOptions::default).unwrap();
    let et = db.keyspace("events", KeyspaceCreateOptions::default).unwrap();
    let dt = db.keyspace("dedup", KeyspaceCreateOptions::default).unwrap();
    let qt = db.keyspace("queue", KeyspaceCreateOptions::default).unwrap();
    let at = db.keyspace("attempts", KeyspaceCreateOptions::default).unwrap();
    let body = vec![7u8; BODY];
    let event = vec![9u8; EVENT];
    let mut lat = Vec::new();
    let (mut j, mut e, mut a) = (0u64, 0u64, 0u64);
    // Reads start after what was consumed: an LSM tree keeps removed keys as tombstones until
    // compaction, and a scan from the start would walk them all.
    let (mut pending_from, mut queue_from) = (0u64, 0u64);
    for _ in 0..rounds {
        let t = Instant::now();
        let mut b = db.batch();
        for _ in 0..batch {
            j += 1;
            b.insert(&jt, key(j), body.as_slice());
            b.insert(&pt, key(j), []);
        }
        b.commit().unwrap();
        db.persist(PersistMode::SyncData).unwrap();
        lat.push(t.elapsed());
        let mut b = db.batch();
        let ids: Vec<_> = pt.range(key(pending_from)..).map(|g| g.key().unwrap()).collect();
        for id in ids {
            b.remove(&pt, id.clone());
            let n = u64::from_be_bytes(id.as_ref().try_into().unwrap());
            pending_from = n + 1;
            for k in 0..10u64 {
                e += 1;
                let dk = key(n * 100 + k);
                // a single writer: a read then a write is a check-and-set
                if dt.get(dk).unwrap().is_none() {
                    b.insert(&dt, dk, key(e));
                    b.insert(&et, key(e), event.as_slice());
                    b.insert(&qt, key(e), key(e));
                }
            }
        }
        b.commit().unwrap();
        let mut b = db.batch();
        let ids: Vec<_> = qt.range(key(queue_from)..).map(|g| g.key().unwrap()).collect();
        for id in ids {
            queue_from = u64::from_be_bytes(id.as_ref().try_into().unwrap()) + 1;
            let _ = et.get(id.clone()).unwrap().unwrap().len();
            b.remove(&qt, id);
            a += 1;
            b.insert(&at, key(a), b"{\"status\":200,\"duration_ms\":3}".as_slice());
        }
        b.commit().unwrap();
    }
    lat
}
