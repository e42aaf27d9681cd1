//! Group commit: concurrent profile writes share one SQLite transaction, and so one
//! `COMMIT` and one fsync, without weakening durability — no writer is told its write is done
//! before the `COMMIT` that contains it has returned.
//!
//! Each logical transaction runs inside `SAVEPOINT w` on the one writer connection, so a
//! failing write rolls back only its own changes. When it commits it releases the savepoint;
//! if other writers are already waiting for the connection it leaves the real `COMMIT` to the
//! last of them (at most [`MAX_GROUP`] writes in a group), then waits for it.
//!
//! Requests can be cancelled at any await (a client hangs up). So every step taken while
//! holding the connection on the group's behalf — opening, releasing, committing — runs in a
//! spawned task that cannot be cancelled; a cancelled request only ever abandons its own
//! savepoint, which the next holder of the connection rolls back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{AssertSqlSafe, SqliteConnection};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use crate::{Result, StoreError};

/// The most logical transactions one `COMMIT` carries.
const MAX_GROUP: usize = 64;

pub(super) struct GroupCommit {
    state: Arc<Mutex<Writer>>,
    /// Writers waiting for the connection; a committing writer defers to them.
    waiting: Arc<AtomicUsize>,
}

pub(super) struct Writer {
    conn: SqliteConnection,
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
            runtime.spawn(async move { state.lock().await.settle(&counter).await });
        }
    }
}

fn failed(message: String) -> StoreError {
    StoreError::Backend(sqlx::Error::Protocol(format!(
        "group commit failed: {message}"
    )))
}

impl GroupCommit {
    pub fn new(conn: SqliteConnection) -> Self {
        Self {
            state: Arc::new(Mutex::new(Writer {
                conn,
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
        let mut slot = Slot {
            guard: Some(guard),
            waiting: self.waiting.clone(),
            savepoint,
        };
        let savepoint = slot.savepoint.clone();
        let writer = slot.guard.as_mut().expect("just locked");
        writer.recover().await?;
        // One round trip to SQLite's thread where two statements are needed.
        if writer.open {
            sqlx::raw_sql(AssertSqlSafe(format!("SAVEPOINT {savepoint}")))
                .execute(&mut writer.conn)
                .await?;
        } else {
            writer.open = true;
            sqlx::raw_sql(AssertSqlSafe(format!(
                "BEGIN IMMEDIATE; SAVEPOINT {savepoint}"
            )))
            .execute(&mut writer.conn)
            .await?;
        }
        Ok(slot)
    }

    /// Commits whatever is pending (for a clean shutdown).
    pub async fn close(&self) {
        let mut guard = self.state.lock().await;
        let _ = guard.recover().await;
        guard.commit_group().await;
    }
}

impl Writer {
    /// Rolls back an abandoned savepoint. "No such savepoint" means it was never set or was
    /// already released (names are never reused), and is no error. Any other failure leaves the
    /// outer transaction in an unknown state: it is rolled back whole and its pending writers,
    /// none of them acknowledged yet, are told it failed.
    async fn recover(&mut self) -> Result<()> {
        let Some(savepoint) = self.abandoned.take() else {
            return Ok(());
        };
        let rolled_back = sqlx::raw_sql(AssertSqlSafe(format!(
            "ROLLBACK TO {savepoint}; RELEASE {savepoint}"
        )))
        .execute(&mut self.conn)
        .await;
        match rolled_back {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("no such savepoint") => Ok(()),
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
                self.open = false;
                for writer in self.pending.drain(..) {
                    let _ = writer.send(Err(e.to_string()));
                }
                Err(e.into())
            }
        }
    }

    /// Commits the outer transaction and tells every pending writer how it went.
    async fn commit_group(&mut self) {
        self.finish_group("COMMIT".to_owned()).await;
    }

    /// Runs `sql` (ending in `COMMIT`) to close the outer transaction, then tells every pending
    /// writer how it went. On any failure the whole group is rolled back: none of it was
    /// acknowledged yet.
    async fn finish_group(&mut self, sql: String) {
        if !self.open {
            return;
        }
        self.open = false;
        let outcome = sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        if outcome.is_err() {
            // Whatever state the failed COMMIT left, start clean.
            let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
        }
        for writer in self.pending.drain(..) {
            let _ = writer.send(outcome.clone());
        }
    }

    /// Called when a holder leaves: rolls back an abandoned savepoint, and commits the group if
    /// no other writer is coming for the connection.
    async fn settle(&mut self, waiting: &AtomicUsize) {
        let _ = self.recover().await;
        if waiting.load(Ordering::SeqCst) == 0 || self.pending.len() >= MAX_GROUP {
            self.commit_group().await;
        }
    }
}

impl Slot {
    pub fn conn(&mut self) -> &mut SqliteConnection {
        &mut self
            .guard
            .as_mut()
            .expect("a live slot holds the writer")
            .conn
    }

    /// Releases the savepoint and waits until a `COMMIT` containing it is durable.
    pub async fn commit(mut self) -> Result<()> {
        let savepoint = self.savepoint.clone();
        let writer = self.guard.as_mut().expect("a live slot holds the writer");
        let (done, wait) = oneshot::channel();
        if self.waiting.load(Ordering::SeqCst) == 0 || writer.pending.len() + 1 >= MAX_GROUP {
            // Nobody to wait for: release and commit in one round trip, in a task of its own so
            // that a cancelled request cannot strand the group's other writers.
            let mut guard = self.guard.take().expect("a live slot holds the writer");
            guard.pending.push(done);
            tokio::spawn(async move {
                guard
                    .finish_group(format!("RELEASE {savepoint}; COMMIT"))
                    .await
            });
        } else {
            sqlx::raw_sql(AssertSqlSafe(format!("RELEASE {savepoint}")))
                .execute(&mut writer.conn)
                .await?;
            writer.pending.push(done);
            // Released: the slot gives the connection up without anything to roll back.
            drop(self.guard.take());
        }
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(failed(message)),
            Err(_) => Err(failed("the writer task stopped".into())),
        }
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
        let waiting = self.waiting.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { guard.settle(&waiting).await });
            }
            // No runtime (shutdown): the next holder of the connection rolls it back.
            Err(_) => drop(guard),
        }
    }
}
