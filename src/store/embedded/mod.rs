//! The embedded backend: hookd's capabilities in one crash-safe file (redb) in a data
//! directory, for one hookd on one machine. One file per capability, as for Redis.
//!
//! Writes go through one thread that commits them in groups ([`writer`]): every request of a
//! group is answered after the one fsync that covers them all. Reads run on the blocking pool
//! against a consistent snapshot and never wait for writes.

mod audit;
mod catalogue;
mod conversations;
mod corrections;
mod deliveries;
mod delivery_log;
mod events;
mod journal;
mod lanes;
mod page_tokens;
mod records;
mod tables;
mod test_suites;
mod upkeep;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::Notify;

use crate::config::{Settings, StorageSync};
use crate::metrics as m;
use crate::secret_box::SecretBox;
use crate::store::ids::{EntryId, IdClock};
use crate::store::{Backend, ReadFrom, StoreError};
use writer::{Job, Tx};

/// The data file inside `storage.path`.
pub const DATA_FILE: &str = "hookd.redb";
/// The lock file inside `storage.path`: held while a hookd uses the directory.
pub const LOCK_FILE: &str = "lock";

/// Why the data directory could not be opened. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "another hookd is using {dir}: it holds the lock {lock}{holder}. Stop it, or give this \
         one another storage.path"
    )]
    Locked {
        dir: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error(
        "cannot use {path}: {cause}. Check that it exists or can be \
         created, and that the user running hookd may read and write it"
    )]
    Unreadable {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "the data file {path} is damaged or not a hookd data file ({detail}). Move it aside \
         (hookd then starts empty) or restore it from a backup"
    )]
    Corrupt { path: PathBuf, detail: String },
}

/// What the writer thread and the handles share.
pub(super) struct Shared {
    /// `None` while the file is being reopened after an I/O error.
    db: RwLock<Option<Arc<Database>>>,
    file: PathBuf,
    /// Set by an I/O error: the file is reopened before the next write.
    broken: AtomicBool,
    journal_ready: Notify,
    deliveries_ready: Notify,
    /// Fsync every commit that holds a request (the default), or only every `sync_interval`.
    sync_each_commit: bool,
    sync_interval: Duration,
    cache_bytes: usize,
}

impl Shared {
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        if self.broken.load(Ordering::Acquire) {
            self.reopen()?;
        }
        self.db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the data file is being reopened".into()))
    }

    /// Notes an error; an I/O error (a full disk, say) makes the next write reopen the file,
    /// since redb refuses every call after one.
    fn failed(&self, e: StoreError) -> StoreError {
        if let StoreError::Unavailable(_) = e {
            self.broken.store(true, Ordering::Release);
        }
        e
    }

    fn reopen(&self) -> Result<(), StoreError> {
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if !self.broken.load(Ordering::Acquire) {
            return Ok(());
        }
        // The file stays locked until every handle on the old database is gone (a read may
        // still hold one for a moment).
        slot.take();
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match Database::builder()
                .set_cache_size(self.cache_bytes)
                .create(&self.file)
            {
                Ok(db) => {
                    *slot = Some(Arc::new(db));
                    self.broken.store(false, Ordering::Release);
                    tracing::info!(file = %self.file.display(), "data file reopened");
                    return Ok(());
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    return Err(StoreError::Unavailable(format!(
                        "reopening {}: {e}",
                        self.file.display()
                    )));
                }
            }
        }
    }
}

/// How long what is kept is kept.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    stream_max_age: Duration,
    dedup_ttl: Duration,
    rejected_keep: u64,
    delivery_state_ttl: Duration,
    disable_after: Duration,
    audit_retention: Duration,
}

struct Inner {
    shared: Arc<Shared>,
    jobs: Sender<Job>,
    /// The last journal and deliveries entries handed to a reader: later ones are new,
    /// earlier unacknowledged ones are pending.
    journal_cursor: Mutex<u128>,
    delivery_cursor: Mutex<u128>,
    /// Where the current pass of pending reads goes on (see [`ReadFrom::Pending`]).
    journal_pending_pass: Mutex<u128>,
    /// Each deliveries lane's cursors; a lane not in it starts at `delivery_cursor`.
    delivery_lanes: Mutex<lanes::LaneCursors>,
    limits: Limits,
    dir: PathBuf,
    _lock: File,
}

/// Cheap to clone: every clone is the same store.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    /// Seals endpoint secrets before they are stored, opens them when read.
    secrets: Arc<SecretBox>,
}

impl EmbeddedStore {
    /// Opens (or creates) the data directory `storage.path` and takes its lock.
    pub fn open(settings: &Settings, secrets: Arc<SecretBox>) -> Result<EmbeddedStore, OpenError> {
        let dir = settings.storage.path.clone();
        let unreadable = |path: &Path, cause| OpenError::Unreadable {
            path: path.to_path_buf(),
            cause,
        };
        std::fs::create_dir_all(&dir).map_err(|e| unreadable(&dir, e))?;
        let lock = take_lock(&dir)?;
        let file = dir.join(DATA_FILE);
        let db = Database::builder()
            .set_cache_size(settings.storage.cache_bytes)
            .create(&file)
            .map_err(|e| open_error(&file, e))?;
        let (clock, journal_cursor, delivery_cursor) =
            prepare(&db).map_err(|detail| OpenError::Corrupt {
                path: file.clone(),
                detail,
            })?;
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(Arc::new(db))),
            file,
            broken: AtomicBool::new(false),
            journal_ready: Notify::new(),
            deliveries_ready: Notify::new(),
            sync_each_commit: settings.storage.sync == StorageSync::Always,
            sync_interval: settings.storage.sync_interval,
            cache_bytes: settings.storage.cache_bytes,
        });
        for durable in ["true", "false"] {
            let _ = metrics::histogram!(m::STORAGE_COMMIT_DURATION, "durable" => durable);
        }
        let (jobs, receiver) = std::sync::mpsc::channel();
        {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("hookd-storage".into())
                .spawn(move || writer::run(shared, receiver, clock))
                .map_err(|e| unreadable(&dir, e))?;
        }
        Ok(EmbeddedStore {
            secrets,
            inner: Arc::new(Inner {
                shared,
                jobs,
                journal_cursor: Mutex::new(journal_cursor),
                delivery_cursor: Mutex::new(delivery_cursor),
                journal_pending_pass: Mutex::new(0),
                delivery_lanes: Mutex::new(lanes::LaneCursors::new()),
                limits: Limits {
                    stream_max_age: settings.retention.stream_max_age,
                    dedup_ttl: settings.retention.dedup_ttl,
                    rejected_keep: settings.ingress.rejected_records_kept() as u64,
                    delivery_state_ttl: settings.delivery.log_retention,
                    disable_after: settings.delivery.disable_after,
                    audit_retention: settings.audit.retention,
                },
                dir,
                _lock: lock,
            }),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Runs `f` on a snapshot, on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = self.inner.shared.clone();
        let started = Instant::now();
        let result = self
            .read_blocking(move || {
                let db = shared.db()?;
                let txn = db.begin_read().map_err(|e| storage_error(e.into()))?;
                f(&txn)
            })
            .await;
        observe(op, started, &result);
        result
    }

    /// Applies `op` in the writer's next group commit; answers once that commit is done (and
    /// on disk, when `durable`).
    async fn write<T: Send + 'static>(
        &self,
        op_name: &'static str,
        durable: bool,
        mut op: impl FnMut(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Job {
            op: Box::new(move |t| op(t).map(|v| Box::new(v) as writer::Output)),
            durable,
            reply: Box::new(move |r| {
                let _ = tx.send(r);
            }),
        };
        let result = match self.inner.jobs.send(job) {
            Err(_) => Err(StoreError::Unavailable(
                "the storage writer has stopped".into(),
            )),
            Ok(()) => match rx.await {
                Ok(Ok(out)) => out.downcast::<T>().map(|b| *b).map_err(|_| {
                    StoreError::Protocol(format!("{op_name}: the writer returned another type"))
                }),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(StoreError::Unavailable(
                    "the storage writer has stopped".into(),
                )),
            },
        };
        observe(op_name, started, &result);
        result
    }

    /// Waits until `ready` is notified or `block` has passed, whichever is first.
    async fn wait(ready: &Notify, block: Duration, check: impl Fn() -> bool) {
        if block.is_zero() {
            return;
        }
        let notified = ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if check() {
            return;
        }
        let _ = tokio::time::timeout(block, notified).await;
    }
}

fn observe<T>(op: &'static str, started: Instant, result: &Result<T, StoreError>) {
    metrics::histogram!(m::STORAGE_DURATION, "op" => op).record(started.elapsed().as_secs_f64());
    // A caller's bad id is the caller's error, not storage's.
    if matches!(result, Err(e) if !matches!(e, StoreError::InvalidInput { .. })) {
        metrics::counter!(m::STORAGE_ERRORS, "op" => op).increment(1);
    }
}

impl Backend for EmbeddedStore {
    fn for_consumer(&self) -> Arc<dyn Backend> {
        Arc::new(self.clone())
    }
}

/// A redb error as hookd reports it: I/O (a full disk) means "not done, try later".
pub(super) fn storage_error(e: redb::Error) -> StoreError {
    match e {
        redb::Error::Io(io) if io.raw_os_error() == Some(libc::ENOSPC) => {
            StoreError::Unavailable(format!("disk full: {io}"))
        }
        redb::Error::Corrupted(detail) => {
            StoreError::Protocol(format!("the data file is damaged: {detail}"))
        }
        redb::Error::ValueTooLarge(n) => {
            StoreError::Protocol(format!("a value of {n} bytes is too large to store"))
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

pub(super) fn db_error(e: impl Into<redb::Error>) -> StoreError {
    storage_error(e.into())
}

fn take_lock(dir: &Path) -> Result<File, OpenError> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|cause| OpenError::Unreadable {
            path: path.clone(),
            cause,
        })?;
    match file.try_lock() {
        Ok(()) => {
            // Who holds it, for the message the next one gets.
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = write!(file, "{}", std::process::id());
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let holder = match pid.trim() {
                "" => String::new(),
                pid => format!(" (process {pid})"),
            };
            Err(OpenError::Locked {
                dir: dir.to_path_buf(),
                lock: path,
                holder,
            })
        }
        Err(std::fs::TryLockError::Error(cause)) => Err(OpenError::Unreadable { path, cause }),
    }
}

fn open_error(file: &Path, e: redb::DatabaseError) -> OpenError {
    match e {
        // redb reports a file that is not one of its own as invalid data.
        redb::DatabaseError::Storage(redb::StorageError::Io(cause))
            if cause.kind() != std::io::ErrorKind::InvalidData =>
        {
            OpenError::Unreadable {
                path: file.to_path_buf(),
                cause,
            }
        }
        other => OpenError::Corrupt {
            path: file.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

/// Creates every table, and reads where the id clock and the cursors start.
fn prepare(db: &Database) -> Result<(IdClock, u128, u128), String> {
    use tables::*;
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    let mut last = EntryId::default();
    let (journal_cursor, delivery_cursor);
    {
        fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
            txn: &redb::WriteTransaction,
            t: TableDefinition<K, V>,
        ) -> Result<(), String> {
            txn.open_table(t).map(drop).map_err(|e| e.to_string())
        }
        open(&txn, EVENT_INDEX)?;
        open(&txn, DEDUP)?;
        open(&txn, DEDUP_EXPIRY)?;
        open(&txn, COUNTERS)?;
        open(&txn, TENANTS)?;
        open(&txn, API_KEYS)?;
        open(&txn, ACCOUNTS)?;
        open(&txn, ENDPOINTS)?;
        open(&txn, ENDPOINT_HEALTH)?;
        open(&txn, PAGE_TOKENS)?;
        open(&txn, TEST_SUITES)?;
        open(&txn, META)?;
        open(&txn, IDEMPOTENCY)?;
        open(&txn, RETRIES)?;
        open(&txn, STATES)?;
        open(&txn, ATTEMPTS)?;
        open(&txn, STATS)?;
        open(&txn, AUDIT_BY_TENANT)?;
        open(&txn, CONVERSATIONS)?;
        open(&txn, CONVERSATION_HEADS)?;
        index_unlaned_deliveries(&txn)?;
        for t in [
            JOURNAL, EVENTS, QUARANTINE, REJECTED, DEAD, DELIVERIES, AUDIT,
        ] {
            let table = txn.open_table(t).map_err(|e| e.to_string())?;
            if let Some((k, _)) = table.last().map_err(|e| e.to_string())? {
                last = last.max(EntryId::from_key(k.value()));
            }
        }
        let unacked = txn.open_table(JOURNAL_UNACKED).map_err(|e| e.to_string())?;
        journal_cursor = unacked
            .last()
            .map_err(|e| e.to_string())?
            .map_or(0, |(k, _)| k.value());
        let queue = txn.open_table(DELIVERIES).map_err(|e| e.to_string())?;
        delivery_cursor = queue
            .last()
            .map_err(|e| e.to_string())?
            .map_or(0, |(k, _)| k.value());
    }
    txn.commit().map_err(|e| e.to_string())?;
    Ok((IdClock::after(last), journal_cursor, delivery_cursor))
}

/// Lists deliveries queued before lanes existed in the admin's lane, so they are read.
fn index_unlaned_deliveries(txn: &redb::WriteTransaction) -> Result<(), String> {
    use tables::*;
    let mut index = txn.open_table(DELIVERY_LANES).map_err(|e| e.to_string())?;
    if !redb::ReadableTableMetadata::is_empty(&index).map_err(|e| e.to_string())? {
        return Ok(());
    }
    let queue = txn.open_table(DELIVERIES).map_err(|e| e.to_string())?;
    for item in queue.iter().map_err(|e| e.to_string())? {
        let (k, _) = item.map_err(|e| e.to_string())?;
        let key = named_id("", EntryId::from_key(k.value()));
        index
            .insert(key.as_slice(), ())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A cursor's lock; a panic elsewhere while it was held left a value that is still valid.
pub(super) fn lock(m: &Mutex<u128>) -> std::sync::MutexGuard<'_, u128> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The range of keys a read of `from` covers, given the delivered cursor and the pending pass.
pub(super) fn read_range(
    from: ReadFrom,
    cursor: u128,
    pass: u128,
) -> std::ops::RangeInclusive<u128> {
    match from {
        ReadFrom::New => cursor.saturating_add(1)..=u128::MAX,
        ReadFrom::Pending => pass.saturating_add(1).min(cursor.saturating_add(1))..=cursor,
    }
}

/// Moves the cursors after a read of `from` that returned up to `last` (`count` asked, `got`
/// returned).
pub(super) fn advance(
    from: ReadFrom,
    cursor: &mut u128,
    pass: &mut u128,
    last: Option<u128>,
    got: usize,
    count: usize,
) {
    match from {
        ReadFrom::New => *cursor = (*cursor).max(last.unwrap_or(0)),
        ReadFrom::Pending if got < count => *pass = 0,
        ReadFrom::Pending => *pass = last.unwrap_or(0),
    }
}

/// Reads an id the API was given; `parameter` names it in the error.
pub(super) fn parse_id(parameter: &'static str, id: &str) -> Result<EntryId, StoreError> {
    EntryId::parse(id).ok_or_else(|| StoreError::InvalidInput {
        parameter,
        problem: format!("{id:?} is not an id such as 1700000000000-0"),
    })
}
