//! Durable commits without holding the writer through the fsync (early lock release).
//!
//! At `synchronous = FULL` every `COMMIT` of the profile writer would wait for its fsync
//! while holding the one writer connection, so no next group could start meanwhile (measured:
//! FULL 3,200–4,800 upserts/s, NORMAL 6,600–8,100). Instead the writer commits at `NORMAL` —
//! SQLite writes the frames to the write-ahead log, and keeps the file consistent through a
//! crash, but does not sync — and the group then lets the connection go and syncs the log file
//! itself. Only after that sync is any write of the group acknowledged, so an acknowledged
//! write is exactly as durable as at FULL: one fsync of the log covers every frame written to
//! it before, and SQLite syncs the log before it checkpoints it into the database.
//!
//! A committed group is visible to readers before its sync returns. So that no answer ever
//! shows a write that could still vanish with the power, every read waits, after it has run,
//! until all commits that had started by then are synced ([`WalSync::settled`]): usually
//! they already are; at most it waits for one fsync.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

pub(super) struct WalSync {
    wal: PathBuf,
    dir: PathBuf,
    /// Commits started: any of them may be visible to a reader.
    started: AtomicU64,
    /// Every commit up to this number has returned (commits run one at a time, in order).
    committed: AtomicU64,
    /// Every commit up to this number is on disk.
    durable: AtomicU64,
    /// One sync at a time: the groups that commit meanwhile share the next one. It keeps the
    /// log file last synced (device, inode): a new one needs its directory entry synced.
    syncing: Mutex<Option<(u64, u64)>>,
    /// A sync failed: what the disk holds is unknown, so nothing is acknowledged any more
    /// (until a restart recovers the log).
    broken: AtomicBool,
    synced: Notify,
}

impl WalSync {
    pub fn new(database: &Path) -> Self {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        Self {
            wal: PathBuf::from(wal),
            dir: database
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_owned(),
            started: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            syncing: Mutex::new(None),
            broken: AtomicBool::new(false),
            synced: Notify::new(),
        }
    }

    /// Numbers a commit about to run. Call before the `COMMIT`, so that a reader who could
    /// see it also finds it counted.
    pub fn starting(&self) -> u64 {
        self.started.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Makes commit `number` durable once its `COMMIT` has returned (failed or not: a failed
    /// one must still settle, so that readers stop waiting for it). One call syncs the log for
    /// every commit that returned before it; calls that find their commit already covered
    /// return at once.
    pub fn sync(&self, number: u64) -> io::Result<()> {
        self.committed.fetch_max(number, Ordering::SeqCst);
        let mut known_file = self.syncing.lock().unwrap_or_else(|e| e.into_inner());
        if self.broken.load(Ordering::SeqCst) {
            return Err(io::Error::other(
                "an earlier sync of the write-ahead log failed",
            ));
        }
        if self.durable.load(Ordering::SeqCst) >= number {
            return Ok(());
        }
        let covered = self.committed.load(Ordering::SeqCst);
        let synced = self.sync_log(&mut known_file);
        if synced.is_err() {
            self.broken.store(true, Ordering::SeqCst);
        }
        // Readers stop waiting either way; after a failure, writes are refused from now on.
        self.durable.fetch_max(covered, Ordering::SeqCst);
        self.synced.notify_waiters();
        synced
    }

    fn sync_log(&self, known_file: &mut Option<(u64, u64)>) -> io::Result<()> {
        let file = match File::open(&self.wal) {
            Ok(file) => file,
            // No log: SQLite checkpointed it into the database, synced, and removed it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        file.sync_data()?;
        let identity = {
            use std::os::unix::fs::MetadataExt;
            let meta = file.metadata()?;
            (meta.dev(), meta.ino())
        };
        if *known_file != Some(identity) {
            // A log file created since the last sync: its name must survive a crash too.
            File::open(&self.dir)?.sync_all()?;
            *known_file = Some(identity);
        }
        Ok(())
    }

    /// Waits until every commit that had started by now is on disk.
    pub async fn settled(&self) {
        let target = self.started.load(Ordering::SeqCst);
        loop {
            let notified = self.synced.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.durable.load(Ordering::SeqCst) >= target {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_waits_for_the_commits_it_may_have_seen() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("profiled.db");
        let sync = std::sync::Arc::new(WalSync::new(&database));
        assert_eq!(sync.wal, dir.path().join("profiled.db-wal"));
        // Nothing started: nothing to wait for.
        sync.settled().await;

        let first = sync.starting();
        assert_eq!(first, 1);
        let waiting = tokio::spawn({
            let sync = sync.clone();
            async move { sync.settled().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "commit 1 is not synced yet");
        // No log file yet (SQLite removed or never made it): syncing is still fine.
        sync.sync(first).unwrap();
        waiting.await.unwrap();

        std::fs::write(&sync.wal, b"frames").unwrap();
        let second = sync.starting();
        let third = sync.starting();
        sync.sync(third).unwrap();
        // The sync of a later commit covers the earlier ones.
        assert!(sync.durable.load(Ordering::SeqCst) >= second);
        sync.settled().await;
    }
}
