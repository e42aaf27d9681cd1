//! Checkpoints in the background: the write-ahead log is copied into the database file by a
//! thread of its own, not by the writer inside its `COMMIT`.
//!
//! SQLite's default (`wal_autocheckpoint = 1000`) makes whichever connection commits past
//! 1,000 pages of log copy them all into the database and sync it, inside that `COMMIT`.
//! For the one profile writer that was a stall of ~15 ms about 27 times a second under
//! upserts, holding every other write. Here a thread with its own connection runs a passive
//! checkpoint (it neither waits for nor blocks writers or readers) shortly after commits, so
//! the copying and the database's fsync run beside the writer.
//!
//! A passive checkpoint never rewinds the log: SQLite starts it again from the beginning only
//! when a write begins with every frame copied, which a steady stream of writes may never leave.
//! So the writing connections keep an automatic checkpoint, at [`AUTOCHECKPOINT_PAGES`]: by
//! then the background has copied nearly all of the log, the writer copies the rest (a short
//! stall), and the next write rewinds the log. That also bounds the log if the background ever
//! falls behind. Durability is SQLite's own: a checkpoint syncs the log before it copies and
//! the database after.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use rusqlite::Connection;

/// Pages of log after which a committing connection checkpoints by itself (SQLite's default
/// is 1,000; at 4 KiB a page, this lets the log reach 128 MiB). Measured under upserts: at
/// 8,192 pages the writer still reached the mark often, and the p90 latency was twice that
/// at 32,768.
pub(super) const AUTOCHECKPOINT_PAGES: u32 = 32768;

/// The least time between two background checkpoints. Each costs two fsyncs, and a page
/// written many times meanwhile is copied once.
const PAUSE: Duration = Duration::from_millis(25);

/// Wakes the checkpointing thread; the thread ends when this is dropped.
pub(super) struct Checkpointer {
    nudge: SyncSender<()>,
}

impl Checkpointer {
    /// Starts the thread, with a read-write connection of its own.
    pub fn start(conn: Connection) -> std::io::Result<Self> {
        let (nudge, nudged) = sync_channel(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &nudged))?;
        Ok(Self { nudge })
    }

    /// Tells the thread that the log has grown. Never blocks.
    pub fn nudge(&self) {
        match self.nudge.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => {
                tracing::warn!("the checkpointing thread has stopped; commits checkpoint alone")
            }
        }
    }
}

fn run(conn: &Connection, nudged: &Receiver<()>) {
    while nudged.recv().is_ok() {
        let started = std::time::Instant::now();
        match checkpoint(conn) {
            Ok(Some((log, copied))) => {
                let ms = started.elapsed().as_secs_f64() * 1e3;
                tracing::trace!(log, copied, ms, "checkpoint");
            }
            Ok(None) => tracing::trace!("another checkpoint is running"),
            // The writer's own automatic checkpoint still bounds the log.
            Err(e) => tracing::warn!(error = %e, "a background checkpoint failed"),
        }
        std::thread::sleep(PAUSE);
    }
}

/// One passive checkpoint: the pages in the log and how many of them are now in the
/// database, or `None` when another checkpoint held the lock.
fn checkpoint(conn: &Connection) -> rusqlite::Result<Option<(i64, i64)>> {
    let (busy, log, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    Ok((busy == 0).then_some((log, copied)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_reaches_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (v BLOB)",
            )
            .unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let empty = size();
        for _ in 0..20 {
            writer
                .execute("INSERT INTO t VALUES (zeroblob(65536))", [])
                .unwrap();
        }
        assert_eq!(size(), empty, "the writer itself never checkpoints");

        let checkpointer = Checkpointer::start(Connection::open(&path).unwrap()).unwrap();
        checkpointer.nudge();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() < 20 * 65536 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint copied the log"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // The background checkpoint may still hold the checkpoint lock (busy) for a moment
        // after the file has grown: ask again until it answers.
        let (log, copied) = loop {
            if let Some(done) = checkpoint(&writer).unwrap() {
                break done;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the checkpoint stayed busy"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(
            log > 0 && copied == log,
            "every page is copied: {copied} of {log}"
        );
    }
}
