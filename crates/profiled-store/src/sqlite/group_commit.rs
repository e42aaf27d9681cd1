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

use sqlx::SqliteConnection;
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
    /// A logical transaction was dropped without committing: roll its savepoint back first.
    abandoned: bool,
}

/// One logical transaction: holds the writer connection until it commits or is dropped.
pub(super) struct Slot {
    guard: Option<OwnedMutexGuard<Writer>>,
    waiting: Arc<AtomicUsize>,
}

/// Counts a writer as waiting for as long as it exists, cancelled or not.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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
                abandoned: false,
            })),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Starts a logical transaction: waits for the connection, opens the outer transaction
    /// if none is open, and sets the savepoint.
    pub async fn begin(&self) -> Result<Slot> {
        let waiting = Waiting::new(&self.waiting);
        let mut guard = self.state.clone().lock_owned().await;
        drop(waiting);
        let (ready, wait) = oneshot::channel();
        let counter = self.waiting.clone();
        tokio::spawn(async move {
            let opened = guard.open_savepoint().await;
            match opened {
                Ok(()) => {
                    if let Err(Ok(mut guard)) = ready.send(Ok(guard)) {
                        // The caller is gone: give the savepoint back.
                        guard.abandoned = true;
                        guard.settle(&counter).await;
                    }
                }
                Err(e) => {
                    let _ = ready.send(Err(e.to_string()));
                    guard.settle(&counter).await;
                }
            }
        });
        match wait.await {
            Ok(Ok(guard)) => Ok(Slot {
                guard: Some(guard),
                waiting: self.waiting.clone(),
            }),
            Ok(Err(message)) => Err(failed(message)),
            Err(_) => Err(failed("the writer task stopped".into())),
        }
    }

    /// Commits whatever is pending (for a clean shutdown).
    pub async fn close(&self) {
        let mut guard = self.state.lock().await;
        let _ = guard.recover().await;
        guard.commit_group().await;
    }
}

impl Writer {
    async fn open_savepoint(&mut self) -> Result<()> {
        self.recover().await?;
        // One round trip to SQLite's thread where two statements are needed.
        if self.open {
            sqlx::query("SAVEPOINT w").execute(&mut self.conn).await?;
        } else {
            sqlx::raw_sql("BEGIN IMMEDIATE; SAVEPOINT w")
                .execute(&mut self.conn)
                .await?;
            self.open = true;
        }
        Ok(())
    }

    /// Rolls back an abandoned savepoint. If that fails, the state of the outer transaction is
    /// unknown: it is rolled back whole and its pending writers are told it failed.
    async fn recover(&mut self) -> Result<()> {
        if !self.abandoned {
            return Ok(());
        }
        self.abandoned = false;
        let rolled_back = async {
            sqlx::query("ROLLBACK TO w").execute(&mut self.conn).await?;
            sqlx::query("RELEASE w").execute(&mut self.conn).await?;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        if let Err(e) = rolled_back {
            let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
            self.open = false;
            for writer in self.pending.drain(..) {
                let _ = writer.send(Err(e.to_string()));
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Commits the outer transaction and tells every pending writer how it went.
    async fn commit_group(&mut self) {
        self.finish_group("COMMIT").await;
    }

    /// Runs `sql` (ending in `COMMIT`) to close the outer transaction, then tells every pending
    /// writer how it went. On any failure the whole group is rolled back: none of it was
    /// acknowledged yet.
    async fn finish_group(&mut self, sql: &'static str) {
        if !self.open {
            return;
        }
        self.open = false;
        let outcome = sqlx::raw_sql(sql)
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
        let mut guard = self.guard.take().expect("a live slot holds the writer");
        let waiting = self.waiting.clone();
        let (done, wait) = oneshot::channel();
        tokio::spawn(async move {
            if waiting.load(Ordering::SeqCst) == 0 || guard.pending.len() + 1 >= MAX_GROUP {
                // Nobody to wait for: release and commit in one round trip.
                guard.pending.push(done);
                guard.finish_group("RELEASE w; COMMIT").await;
                return;
            }
            match sqlx::query("RELEASE w").execute(&mut guard.conn).await {
                Ok(_) => guard.pending.push(done),
                Err(e) => {
                    guard.abandoned = true;
                    let _ = done.send(Err(e.to_string()));
                }
            }
            guard.settle(&waiting).await;
        });
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
        guard.abandoned = true;
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
