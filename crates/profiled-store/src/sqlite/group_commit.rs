//! Group commit: concurrent profile writes share one SQLite transaction, and so one
//! `COMMIT` and one fsync, without weakening durability — no writer is told its write is done
//! before the `COMMIT` that contains it has returned.
//!
//! Each logical transaction runs inside `SAVEPOINT w` on the one writer connection, so a
//! failing write rolls back only its own changes. When it commits it releases the savepoint;
//! if other writers are already waiting for the connection it leaves the real `COMMIT` to the
//! last of them (at most [`MAX_GROUP`] writes in a group), then waits for it.
//!
//! The connection is driven on the thread of whoever holds it (`inline.rs`): a write's
//! statements cost no hand-off, and neither does the `COMMIT`, which at `synchronous =
//! NORMAL` with checkpoints in the background (`checkpoint.rs`) only writes the group's pages
//! to the log. What may wait on the disk or on another process — a `BEGIN` that finds the file
//! locked, the fsync that makes a group durable (`durable.rs`) — runs on a blocking thread,
//! after the connection is let go. A committing writer may also leave before its group is
//! durable ([`Slot::commit_early`]) and hear of it later, so the next batch is applied while
//! the last one syncs.
//!
//! Requests can be cancelled at any await (a client hangs up). So every step taken while
//! holding the connection on the group's behalf — opening, releasing, committing — either runs
//! before the next await or in a spawned task that cannot be cancelled; a cancelled request
//! only ever abandons its own savepoint, which the next holder of the connection rolls back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};
use tokio::task::JoinHandle;

use super::checkpoint::Checkpointer;
use super::durable::WalSync;
use crate::{Durable, Result, StoreError};

/// The most logical transactions one `COMMIT` carries.
const MAX_GROUP: usize = 64;

pub(super) struct GroupCommit {
    state: Arc<Mutex<Writer>>,
    /// Writers waiting for the connection; a committing writer defers to them.
    waiting: Arc<AtomicUsize>,
}

pub(super) struct Writer {
    conn: Connection,
    /// How long a `BEGIN` waits for another process's write lock.
    busy_timeout: Duration,
    /// Set when commits are synced after the connection is let go (`durable.rs`); without it
    /// the connection's own `synchronous` setting decides.
    wal_sync: Option<Arc<WalSync>>,
    /// Copies the log into the database after commits, beside the writer.
    checkpointer: Checkpointer,
    /// An outer transaction is open.
    open: bool,
    /// Writers whose savepoint is released and who wait for the outer `COMMIT`.
    pending: Vec<oneshot::Sender<std::result::Result<(), String>>>,
    /// A logical transaction was dropped without committing: the savepoint to roll back first.
    abandoned: Option<String>,
    /// Numbers savepoints, so that a name never means two savepoints.
    next_savepoint: u64,
}

/// One logical transaction: holds the writer connection until it commits or is dropped.
pub(super) struct Slot {
    guard: Option<OwnedMutexGuard<Writer>>,
    waiting: Arc<AtomicUsize>,
    savepoint: String,
}

/// Counts a writer as waiting for the connection for as long as it exists. A writer that
/// committed may have deferred its `COMMIT` to this one; if this one is cancelled before it
/// gets the connection, it hands that duty to a task of its own.
struct Waiting {
    counter: Arc<AtomicUsize>,
    state: Arc<Mutex<Writer>>,
    cancelled: bool,
}

impl Waiting {
    fn new(counter: &Arc<AtomicUsize>, state: &Arc<Mutex<Writer>>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self {
            counter: counter.clone(),
            state: state.clone(),
            cancelled: true,
        }
    }

    /// The writer got the connection: it will settle the group itself.
    fn arrived(mut self) {
        self.cancelled = false;
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
        if self.cancelled
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (state, counter) = (self.state.clone(), self.counter.clone());
            runtime.spawn(async move { Writer::settle(state.lock_owned().await, &counter) });
        }
    }
}

/// Runs a step that may block (a lock wait, an fsync) on a blocking thread, with the writer.
async fn blocking<T: Send + 'static>(
    mut guard: OwnedMutexGuard<Writer>,
    step: impl FnOnce(&mut Writer) -> T + Send + 'static,
) -> (OwnedMutexGuard<Writer>, T) {
    tokio::task::spawn_blocking(move || {
        let outcome = step(&mut guard);
        (guard, outcome)
    })
    .await
    .expect("a writer step does not panic")
}

impl GroupCommit {
    pub fn new(
        conn: Connection,
        busy_timeout: Duration,
        wal_sync: Option<Arc<WalSync>>,
        checkpointer: Checkpointer,
    ) -> Self {
        Self {
            state: Arc::new(Mutex::new(Writer {
                conn,
                busy_timeout,
                wal_sync,
                checkpointer,
                open: false,
                pending: Vec::new(),
                abandoned: None,
                next_savepoint: 0,
            })),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Starts a logical transaction: waits for the connection, opens the outer transaction
    /// if none is open, and sets the savepoint. The slot owns the connection from the moment
    /// it is locked, so a cancelled `begin` is cleaned up like any dropped slot.
    pub async fn begin(&self) -> Result<Slot> {
        let waiting = Waiting::new(&self.waiting, &self.state);
        let mut guard = self.state.clone().lock_owned().await;
        waiting.arrived();
        guard.next_savepoint += 1;
        let savepoint = format!("w{}", guard.next_savepoint);
        guard.recover()?;
        if guard.open {
            guard
                .conn
                .execute_batch(&format!("SAVEPOINT {savepoint}"))?;
        } else {
            // BEGIN IMMEDIATE takes the file's write lock. Tried without waiting first: only
            // when another connection holds the lock does the wait go to a blocking thread.
            let sql = format!("BEGIN IMMEDIATE; SAVEPOINT {savepoint}");
            guard.conn.busy_timeout(Duration::ZERO)?;
            let first = guard.conn.execute_batch(&sql);
            let timeout = guard.busy_timeout;
            guard.conn.busy_timeout(timeout)?;
            match first {
                Ok(()) => {}
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                    // Cancelled while waiting, the transaction may still open: then it is
                    // left for the next holder to roll its savepoint back.
                    let abandoned = savepoint.clone();
                    let (back, waited) = blocking(guard, move |w| {
                        let begun = w.conn.execute_batch(&sql);
                        if begun.is_ok() {
                            w.open = true;
                            w.abandoned = Some(abandoned);
                        }
                        begun
                    })
                    .await;
                    guard = back;
                    waited?;
                    guard.abandoned = None;
                }
                Err(e) => return Err(e.into()),
            }
            guard.open = true;
        }
        Ok(Slot {
            guard: Some(guard),
            waiting: self.waiting.clone(),
            savepoint,
        })
    }

    /// Commits whatever is pending (for a clean shutdown).
    pub async fn close(&self) {
        let mut guard = self.state.clone().lock_owned().await;
        let _ = guard.recover();
        if let Some(synced) = Writer::commit_group(guard) {
            let _ = synced.await;
        }
    }
}

impl Writer {
    /// Rolls back an abandoned savepoint. "No such savepoint" means it was never set or was
    /// already released (names are never reused), and is no error. Any other failure leaves the
    /// outer transaction in an unknown state: it is rolled back whole and its pending writers,
    /// none of them acknowledged yet, are told it failed.
    fn recover(&mut self) -> Result<()> {
        let Some(savepoint) = self.abandoned.take() else {
            return Ok(());
        };
        let rolled_back = self
            .conn
            .execute_batch(&format!("ROLLBACK TO {savepoint}; RELEASE {savepoint}"));
        match rolled_back {
            Ok(()) => Ok(()),
            Err(e) if e.to_string().contains("no such savepoint") => Ok(()),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.open = false;
                for writer in self.pending.drain(..) {
                    let _ = writer.send(Err(e.to_string()));
                }
                Err(e.into())
            }
        }
    }

    /// Commits the outer transaction and tells every pending writer how it went.
    fn commit_group(guard: OwnedMutexGuard<Writer>) -> Option<JoinHandle<()>> {
        Writer::finish_group(guard, "COMMIT")
    }

    /// Closes the outer transaction with `sql` (ending in `COMMIT`) right here: at
    /// `synchronous = NORMAL`, with checkpoints in the background (`checkpoint.rs`), that
    /// only writes the group's pages to the log, not worth a hand-off to another thread. On
    /// any failure the whole group is rolled back: none of it was acknowledged yet. The
    /// connection is let go at once; the pending writers hear how it went after the log is
    /// synced (with a [`WalSync`]: on a blocking thread, while the next group runs).
    fn finish_group(mut guard: OwnedMutexGuard<Writer>, sql: &str) -> Option<JoinHandle<()>> {
        if !guard.open {
            return None;
        }
        guard.open = false;
        let wal_sync = guard.wal_sync.clone();
        let number = wal_sync.as_ref().map(|sync| sync.starting());
        let outcome = guard.conn.execute_batch(sql).map_err(|e| e.to_string());
        if outcome.is_err() {
            // Whatever state the failed COMMIT left, start clean.
            let _ = guard.conn.execute_batch("ROLLBACK");
        }
        let pending = std::mem::take(&mut guard.pending);
        guard.checkpointer.nudge();
        drop(guard);
        let tell = move |outcome: std::result::Result<(), String>| {
            for writer in pending {
                let _ = writer.send(outcome.clone());
            }
        };
        match (wal_sync, number) {
            (Some(sync), Some(number)) => Some(tokio::task::spawn_blocking(move || {
                // Synced even after a failed COMMIT, so that readers stop waiting for it.
                let synced = sync.sync(number);
                tell(outcome.and(synced.map_err(|e| format!("syncing the write-ahead log: {e}"))));
            })),
            _ => {
                tell(outcome);
                None
            }
        }
    }

    /// Called when a holder leaves: rolls back an abandoned savepoint, and commits the group if
    /// no other writer is coming for the connection.
    fn settle(mut guard: OwnedMutexGuard<Writer>, waiting: &AtomicUsize) {
        let _ = guard.recover();
        if waiting.load(Ordering::SeqCst) == 0 || guard.pending.len() >= MAX_GROUP {
            Writer::commit_group(guard);
        }
    }
}

impl Slot {
    pub fn conn(&self) -> &Connection {
        &self
            .guard
            .as_ref()
            .expect("a live slot holds the writer")
            .conn
    }

    /// Releases the savepoint and waits until a `COMMIT` containing it is durable.
    pub async fn commit(self) -> Result<()> {
        self.commit_early()?.await
    }

    /// Releases the savepoint and gives the connection up at once; what it returns resolves
    /// once a `COMMIT` containing it is durable.
    pub fn commit_early(mut self) -> Result<Durable> {
        let savepoint = self.savepoint.clone();
        let writer = self.guard.as_mut().expect("a live slot holds the writer");
        let (done, wait) = oneshot::channel();
        if self.waiting.load(Ordering::SeqCst) == 0 || writer.pending.len() + 1 >= MAX_GROUP {
            // Nobody to wait for: release and commit in one step, before any await, so that a
            // cancelled request cannot strand the group's other writers.
            let mut guard = self.guard.take().expect("a live slot holds the writer");
            guard.pending.push(done);
            Writer::finish_group(guard, &format!("RELEASE {savepoint}; COMMIT"));
        } else {
            writer.conn.execute_batch(&format!("RELEASE {savepoint}"))?;
            writer.pending.push(done);
            // Released: the slot gives the connection up without anything to roll back.
            drop(self.guard.take());
        }
        Ok(Box::pin(async move {
            match wait.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(message)) => Err(StoreError::CommitFailed(message)),
                Err(_) => Err(StoreError::CommitFailed("the writer task stopped".into())),
            }
        }))
    }
}

impl Drop for Slot {
    /// Dropped without committing (an error, or a cancelled request): roll the savepoint back
    /// and, if nobody else is coming, commit the writers already pending.
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        guard.abandoned = Some(self.savepoint.clone());
        match tokio::runtime::Handle::try_current() {
            // The group's commit syncs on a blocking thread of the runtime.
            Ok(_) => Writer::settle(guard, &self.waiting),
            // No runtime (shutdown): the next holder of the connection rolls it back.
            Err(_) => drop(guard),
        }
    }
}
