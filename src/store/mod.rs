//! The SQLite store: the one record of orders, Payme transactions, print jobs and settings.
//!
//! One writer connection behind a mutex serialises every write, and each write runs in
//! `BEGIN IMMEDIATE`, so two concurrent Payme duplicates can never interleave their read-then-write
//! logic. Reads go to a few separate connections: in WAL mode they see the last committed state
//! without waiting for a writer's fsync. Callers on the async runtime go through `spawn_blocking`,
//! except point lookups (`try_read`: microseconds, on a reader that is free right now).
//!
//! Every write through [`Store::write`] moves the store's `generation` on, so an answer computed
//! from a read can be reused while the generation has not moved (the webhook's repeated Check:
//! `payme::recent`). Writes by another process (the CLI) do not move it.

/// Declares a struct that is one table row: each field is read from the column of the same name
/// (`SELECT *`), so a field list is written once and a mapper cannot fall out of step with it.
/// Gives the struct [`FromRow`] (`from_row`, `one`, `all`); enums read through `FromSql`.
macro_rules! row_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $crate::store::FromRow for $name {
            fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<$name> {
                // One pass over the statement's columns, each name matched once: rusqlite's
                // `row.get("name")` searches every column name per field (n² name reads), which
                // was a visible share of a webhook Check (BENCHMARKS.md, issue 17).
                $(let mut $field: Option<$ty> = None;)*
                let stmt = row.as_ref();
                for i in 0..stmt.column_count() {
                    let name = stmt.column_name(i)?;
                    // As with `row.get("name")`: ASCII case aside, and the first column of a name wins.
                    $(if $field.is_none() && name.eq_ignore_ascii_case(stringify!($field)) {
                        $field = Some(row.get(i)?);
                        continue;
                    })*
                }
                Ok($name {
                    $($field: $field
                        .ok_or_else(|| rusqlite::Error::InvalidColumnName(stringify!($field).into()))?,)*
                })
            }
        }
    };
}

/// A row type made by [`row_struct!`], with the two ways every table is read: `SELECT *` by a key
/// or a unique condition ([`one`](FromRow::one)), or a list ([`all`](FromRow::all)).
trait FromRow: Sized {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;

    /// The row `sql` selects, if any.
    fn one(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<Option<Self>> {
        conn.prepare_cached(sql)?.query_row(params, Self::from_row).optional()
    }

    /// Every row `sql` selects, in its order.
    fn all(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<Vec<Self>> {
        conn.prepare_cached(sql)?.query_map(params, Self::from_row)?.collect()
    }
}

/// Declares an enum stored as text in `column` ([`named_enum!`] with its codes as the stored
/// values), with a `FromSql` that refuses any other value, naming the column.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $column:literal {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)*
        }
    ) => {
        named_enum! {
            $(#[$meta])*
            pub enum $name {
                $($(#[$variant_meta])* $variant = $text,)*
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                match value.as_str()? {
                    $($text => Ok($name::$variant),)*
                    other => Err(rusqlite::types::FromSqlError::Other(Box::new(super::bad_value($column, other)))),
                }
            }
        }
    };
}

pub mod counters;
pub mod events;
pub mod jobs;
pub mod links;
pub mod media;
pub mod orders;
pub mod reports;
mod schema;
pub mod sessions;
pub mod settings;
pub mod summary;
pub mod transactions;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

pub use jobs::{JobStatus, PrintJob};
pub use orders::{Order, OrderKind, OrderStatus};
pub use transactions::{PaymeTx, TxState};

/// The database file inside the data directory.
pub const DB_FILE: &str = "photoboothd.sqlite3";

/// How long a connection waits for another process (the CLI, a second daemon) holding the lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const READERS: usize = 2;

#[derive(Debug)]
pub enum StoreError {
    Sqlite(rusqlite::Error),
    Io(std::io::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sqlite(e) => write!(f, "database error: {e}"),
            StoreError::Io(e) => write!(f, "database file error: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    write_fault: std::sync::RwLock<Option<String>>,
    /// Whether `write_fault` holds a fault: asked on every Check, so the usual answer costs no lock.
    failing: AtomicBool,
    /// Moves on after every write of this process, committed or not (see [`Store::generation`]).
    generation: AtomicU64,
}

fn is_storage_fault(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(DiskFull | SystemIoFailure | ReadOnly | CannotOpen | DatabaseCorrupt | PermissionDenied | NotADatabase)
    )
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
    pub fn open_in(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        Store::open(&data_dir.join(DB_FILE))
    }

    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut writer = Connection::open(path)?;
        // The file holds the rotated Payme key: owner-only, like the generated key file.
        restrict_permissions(path)?;
        configure(&writer)?;
        // WAL survives in the file; setting it once per open is cheap and idempotent.
        writer.pragma_update(None, "journal_mode", "WAL")?;
        schema::migrate(&mut writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let conn =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            configure(&conn)?;
            readers.push(Mutex::new(conn));
        }
        Ok(Store {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            write_fault: std::sync::RwLock::new(None),
            failing: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits when it returns `Ok`.
    /// An `Err` rolls back everything `f` did.
    pub fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let mut conn = lock(&self.writer);
        let result = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .and_then(|tx| {
                let value = f(&tx)?;
                tx.commit()?;
                Ok(value)
            });
        // After the commit, under the writer's lock: a reader that sees this generation sees the
        // write. A rolled-back write moves it too; that only costs a reuse.
        self.generation.fetch_add(1, Ordering::Release);
        self.note_write(&result);
        Ok(result?)
    }

    /// A number that changes after every write this process makes through [`Store::write`]. Read
    /// it *before* a read: if it is the same later, nothing this process wrote since can have
    /// changed what that read saw. Another process's writes (the CLI) do not change it, so a
    /// reuse must also be short-lived.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remembers whether the disk takes writes: a full or read-only disk must take the booth out
    /// of service (no new sessions, Check answers -32400) until a write succeeds again.
    fn note_write<T>(&self, result: &rusqlite::Result<T>) {
        let failing = match result {
            Ok(_) => None,
            Err(e) if is_storage_fault(e) => Some(e.to_string()),
            // A logical error (a constraint, a missing row) says nothing about the disk.
            Err(_) => return,
        };
        if let Ok(mut w) = self.write_fault.write() {
            if w.is_some() != failing.is_some() {
                match &failing {
                    Some(e) => {
                        tracing::error!(error = %e, "the database cannot be written; the booth is out of service")
                    }
                    None => tracing::warn!("the database takes writes again; back in service"),
                }
            }
            self.failing.store(failing.is_some(), Ordering::Release);
            *w = failing;
        }
    }

    /// `Some(why)` while the last write failed for a storage reason (disk full, read-only, I/O).
    pub fn write_fault(&self) -> Option<String> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        self.write_fault.read().ok().and_then(|w| w.clone())
    }

    /// A tiny write that clears `write_fault` once the disk is back; only worth calling while a
    /// fault is recorded (it costs an fsync).
    pub fn probe_write(&self) -> bool {
        self.write(|tx| settings::set(tx, "health.probe", &crate::clock::now_ms().to_string()))
            .is_ok()
    }

    /// Runs `f` on a read-only connection, in one read transaction: every query in it sees the
    /// same committed state.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let conn = lock(&self.readers[i]);
        Ok(in_snapshot(&conn, f)?)
    }

    /// Runs `f` on a reader connection only if one is free right now; `None` when all are busy.
    /// For callers on the async runtime doing a point lookup (microseconds): they must never wait on
    /// a connection another thread holds for a long query, so they fall back to a blocking thread.
    pub fn try_read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<Result<T, StoreError>> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let conn =
            (0..self.readers.len()).find_map(|k| match self.readers[(start + k) % self.readers.len()].try_lock() {
                Ok(conn) => Some(conn),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            })?;
        Some(in_snapshot(&conn, f).map_err(StoreError::from))
    }

    /// `PRAGMA integrity_check` (the full check, not `quick_check`) on the writer: for health
    /// checks and tests.
    pub fn integrity_ok(&self) -> Result<bool, StoreError> {
        let conn = lock(&self.writer);
        let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(verdict == "ok")
    }
}

/// A column holds a value the code does not know (a newer binary wrote it, or a hand edit).
pub(crate) fn bad_value(column: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unexpected value {value:?} in {column}").into(),
    )
}

/// A store in a new temporary directory, for unit tests: the directory lives as long as the guard.
#[cfg(test)]
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    (dir, store)
}

/// `f` inside one read transaction. Besides one snapshot for all of `f`'s queries, it takes the
/// WAL read lock once: each query on its own is an implicit transaction with its own lock and
/// unlock (fcntl calls, a visible share of a webhook Check in the profile, BENCHMARKS.md issue 17).
fn in_snapshot<T>(conn: &Connection, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    if !conn.is_autocommit() {
        // A closure that panicked left its transaction open; end it before starting this one.
        conn.prepare_cached("ROLLBACK")?.execute([])?;
    }
    conn.prepare_cached("BEGIN")?.execute([])?;
    let out = f(conn);
    // Read-only: ending it cannot fail for a reason worth reporting over `f`'s own result.
    let _ = conn.prepare_cached("COMMIT").and_then(|mut end| end.execute([]));
    out
}

/// A panic inside a closure poisons the mutex; the connection itself is still sound (the
/// unfinished transaction rolled back when it was dropped), so keep using it.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // FULL: a commit that Payme was told about (a performed payment) must survive a power cut.
    // Only writes pay the fsync; CheckPerformTransaction and the other reads do not.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        assert!(store.integrity_ok().unwrap());
        let version: i64 = store
            .read(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(version, schema::VERSION);
        drop(store);
        // A second open finds the schema current and changes nothing.
        let store = Store::open_in(dir.path()).unwrap();
        let mode: String = store
            .read(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let (_dir, store) = temp_store();
        let result = store.write(|tx| {
            settings::set(tx, "probe", "1")?;
            Err::<(), _>(rusqlite::Error::QueryReturnedNoRows)
        });
        assert!(result.is_err());
        assert_eq!(store.read(|c| settings::get(c, "probe")).unwrap(), None);
    }
}
