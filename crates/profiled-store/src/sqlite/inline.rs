//! SQLite connections driven on the calling thread, for the hot paths: reading profiles,
//! searching, and every profile write.
//!
//! sqlx runs each SQLite connection on a thread of its own, and every statement is a round
//! trip to it. Measured during gets, 44 % of the server's CPU went to those hand-offs (futex
//! wake-ups and context switches), and a write's statements queued one hop each behind the one
//! writer. A point read or an indexed write takes microseconds, so it runs where it is asked
//! for; only what can wait on the disk or scan a whole table leaves the thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::types::{ToSqlOutput, Value as SqlValue};
use rusqlite::{Connection, OpenFlags, ToSql};

use super::SqliteSettings;
use super::filter::Bind;
use crate::{Result, StoreError};

/// Prepared statements kept per connection: the fixed statements of reads and writes, and
/// the searches a workspace repeats.
const STATEMENT_CACHE: usize = 128;

/// How every connection is opened: the pragmas sqlx applies to its own connections.
#[derive(Debug, Clone)]
pub(super) struct Opener {
    path: PathBuf,
    busy_timeout: Duration,
    mmap_bytes: u64,
    cache_kib: u64,
}

impl Opener {
    pub fn new(path: &Path, settings: &SqliteSettings) -> Self {
        Self {
            path: path.to_owned(),
            busy_timeout: settings.busy_timeout,
            mmap_bytes: u64::from(settings.mmap_mib) << 20,
            cache_kib: u64::from(settings.writer_cache_mib.max(2)) * 1024,
        }
    }

    pub fn busy_timeout(&self) -> Duration {
        self.busy_timeout
    }

    /// A read-only connection.
    pub fn reader(&self) -> Result<Connection> {
        self.open(OpenFlags::SQLITE_OPEN_READ_ONLY)
    }

    /// The connection profile writes go through (the database exists: sqlx migrated it). It
    /// commits at `synchronous = NORMAL`; at the FULL durability the group commit syncs the log
    /// itself before it acknowledges anything (`durable.rs`).
    pub fn writer(&self) -> Result<Connection> {
        let conn = self.open(OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{};
             PRAGMA wal_autocheckpoint = {};",
            self.cache_kib,
            super::checkpoint::AUTOCHECKPOINT_PAGES
        ))?;
        Ok(conn)
    }

    /// The connection background checkpoints go through. At `synchronous = NORMAL` SQLite
    /// syncs the log before a checkpoint and the database after it.
    pub fn checkpointer(&self) -> Result<Connection> {
        let conn = self.open(OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        Ok(conn)
    }

    /// A connection with the pragmas every one of them needs. Each is used by one thread at a
    /// time, so SQLite's own mutexes are left off.
    fn open(&self, mode: OpenFlags) -> Result<Connection> {
        let conn = Connection::open_with_flags(&self.path, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // One plan per statement, whatever its bound values: without this guarantee SQLite
        // re-parses and re-plans a cached search each time the value compared with an
        // indexed expression changes (ANALYZE's samples make the value matter), which was
        // 30 % of a search's time. Every declared index ends in `id`, so the value never
        // changes which index is right.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        // Deleted content is overwritten with zeros, so a forgotten profile is not left behind
        // in free space of the database file.
        conn.execute_batch(&format!(
            "PRAGMA temp_store = MEMORY; PRAGMA secure_delete = ON; PRAGMA mmap_size = {};",
            self.mmap_bytes
        ))?;
        Ok(conn)
    }
}

/// How much of a search may run on the thread that asks: SQLite counts the instructions of
/// its virtual machine, and calls back every `BUDGET_STEP` of them. A page of 20 profiles
/// through an index takes 1,000 to 3,500 (each row's identities and segments are subqueries,
/// measured by `sqlite3_stmt_status` on the storage suite's searches), so 25,000 is about the
/// work of 150 to 500 rows.
const BUDGET_STEP: std::ffi::c_int = 1_000;
const BUDGET_STEPS: u32 = 25;

/// Read-only connections, opened when first needed and kept for reuse (opening one parses the
/// whole schema). Scans run at most `scans` at once, each on a blocking thread; short reads run
/// on the thread that asks, one per such thread at a time. So no more connections are ever open
/// than scans plus threads, and all of them stay open.
pub(super) struct Readers {
    opener: Opener,
    idle: Mutex<Vec<Connection>>,
    scans: Arc<tokio::sync::Semaphore>,
}

impl Readers {
    pub fn new(opener: Opener, scans: usize) -> Arc<Self> {
        Arc::new(Self {
            opener,
            idle: Mutex::new(Vec::new()),
            scans: Arc::new(tokio::sync::Semaphore::new(scans.max(1))),
        })
    }

    /// Runs a short read (a lookup by key) right here.
    pub fn read<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.opener.reader()?,
        };
        let result = read(&conn);
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        result
    }

    /// Runs a read that usually touches a few rows but may scan many (a search): right here
    /// while it stays within a budget of SQLite's work, else again from the start on a blocking
    /// thread, as [`Readers::scan`] does. Handing every search to a blocking thread cost more
    /// than the search itself: thread wake-ups and the pool's lock were 35-40 % of the CPU of
    /// a search returning 20 profiles.
    pub async fn bounded_or_scan<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl Fn(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let over_budget = Arc::new(AtomicBool::new(false));
        let attempt = self.read(|conn| {
            let over = over_budget.clone();
            let mut steps = 0;
            conn.progress_handler(
                BUDGET_STEP,
                Some(move || {
                    steps += 1;
                    let stop = steps >= BUDGET_STEPS;
                    over.store(stop, Ordering::Relaxed);
                    stop
                }),
            )?;
            let result = read(conn);
            conn.progress_handler(0, None::<fn() -> bool>)?;
            result
        });
        if over_budget.load(Ordering::Relaxed) {
            // Interrupted: nothing of the attempt is kept.
            return self.scan(read).await;
        }
        attempt
    }

    /// Runs a read that may scan many rows (a search, a count) on a blocking thread, so that it
    /// never holds up the tasks of the thread that asked.
    pub async fn scan<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let turn = self
            .scans
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend(sqlx::Error::PoolClosed))?;
        let readers = self.clone();
        // The turn ends with the read, even when the caller stops waiting for it.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            readers.read(read)
        })
        .await
        // A panic in the read: its thread is gone, like a crashed sqlx worker.
        .map_err(|_| StoreError::Backend(sqlx::Error::WorkerCrashed))?
    }
}

impl ToSql for Bind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Bind::Int(i) => ToSqlOutput::Owned(SqlValue::Integer(*i)),
            Bind::Real(f) => ToSqlOutput::Owned(SqlValue::Real(*f)),
            Bind::Text(s) => ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(s.as_bytes())),
        })
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    /// `.cargo/config.toml` builds the bundled SQLite for many connections in one process.
    #[test]
    fn sqlite_is_built_without_shared_page_cache_or_allocation_statistics() {
        let conn = Connection::open_in_memory().unwrap();
        let options: Vec<String> = conn
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        assert!(
            options.iter().any(|o| o == "ENABLE_STAT4"),
            "still the bundled build"
        );
    }

    /// The map setting reaches readers and the writer alike, and is off by default: every
    /// connection maps the file on its own, and resident memory counts each mapping
    /// (docs/benchmarks.md, session 10).
    #[test]
    fn connections_map_the_file_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (i INTEGER);")
            .unwrap();
        let mapped = |settings: &SqliteSettings| -> [i64; 2] {
            let opener = Opener::new(&path, settings);
            [opener.reader().unwrap(), opener.writer().unwrap()]
                .map(|c| c.query_row("PRAGMA mmap_size", [], |r| r.get(0)).unwrap())
        };
        assert_eq!(mapped(&SqliteSettings::default()), [0, 0]);
        let asked = SqliteSettings {
            mmap_mib: 64,
            ..SqliteSettings::default()
        };
        assert_eq!(mapped(&asked), [64 << 20; 2]);
    }

    fn numbers(path: &Path) -> Arc<Readers> {
        Connection::open(path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE n (i INTEGER PRIMARY KEY);
                 WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 100000)
                 INSERT INTO n SELECT i FROM s;",
            )
            .unwrap();
        Readers::new(Opener::new(path, &SqliteSettings::default()), 2)
    }

    /// The sum of the first `rows` numbers, and the thread that computed it.
    fn sum(conn: &Connection, rows: i64) -> Result<(i64, std::thread::ThreadId)> {
        let sum = conn
            .prepare_cached("SELECT sum(i) FROM (SELECT i FROM n ORDER BY i LIMIT ?)")?
            .query_row([rows], |r| r.get(0))?;
        Ok((sum, std::thread::current().id()))
    }

    #[tokio::test]
    async fn a_short_read_runs_here_and_a_long_one_elsewhere_with_the_same_answer() {
        let dir = tempfile::tempdir().unwrap();
        let readers = numbers(&dir.path().join("n.db"));
        let here = std::thread::current().id();
        let (short, short_thread) = readers.bounded_or_scan(|c| sum(c, 20)).await.unwrap();
        assert_eq!((short, short_thread), (210, here));
        let (long, long_thread) = readers.bounded_or_scan(|c| sum(c, 100_000)).await.unwrap();
        assert_eq!(long, 5_000_050_000);
        assert_ne!(
            long_thread, here,
            "past the budget the read moves to a blocking thread"
        );
        // The budget is not left behind on the connection: the same connection, asked
        // directly, runs the long read to its end.
        let (direct, _) = readers.read(|c| sum(c, 100_000)).unwrap();
        assert_eq!(direct, 5_000_050_000);
        // And the next short read is back on this thread.
        let (_, again) = readers.bounded_or_scan(|c| sum(c, 20)).await.unwrap();
        assert_eq!(again, here);
    }

    /// A search-shaped statement on an analysed expression index runs with new values
    /// without being parsed and planned again.
    #[test]
    fn a_cached_statement_keeps_its_plan_when_its_values_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.db");
        let setup = Connection::open(&path).unwrap();
        setup
            .execute_batch(
                "CREATE TABLE p (ws INTEGER, id TEXT, doc TEXT, PRIMARY KEY (ws, id));
                 CREATE INDEX p_plan ON p (ws, json_extract(doc, '$.plan'), id);
                 WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
                 INSERT INTO p SELECT 1, printf('%04d', i),
                   json_object('plan', CASE i % 4 WHEN 0 THEN 'free' WHEN 1 THEN 'pro' ELSE 'team' END)
                 FROM n;
                 ANALYZE;",
            )
            .unwrap();
        let samples: i64 = setup
            .query_row("SELECT count(*) FROM sqlite_stat4", [], |r| r.get(0))
            .unwrap();
        assert!(samples > 0, "ANALYZE keeps value samples in this build");
        let opener = Opener::new(&path, &SqliteSettings::default());
        let conn = opener.reader().unwrap();
        let sql = "SELECT id FROM p WHERE ws = 1 AND json_extract(doc, '$.plan') = ?1 ORDER BY id LIMIT 20";
        let mut firsts = Vec::new();
        for plan in ["free", "pro", "team", "free"] {
            let mut statement = conn.prepare_cached(sql).unwrap();
            let first: String = statement.query_row([plan], |r| r.get(0)).unwrap();
            firsts.push(first);
            assert_eq!(statement.get_status(StatementStatus::RePrepare), 0);
        }
        assert_eq!(firsts, ["0000", "0001", "0002", "0000"]);
    }
}
