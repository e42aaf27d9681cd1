//! Concurrent upsert requests combined into batches: a worker takes every upsert waiting at
//! that moment (up to 256) and applies them with [`Service::upsert_batch`] — one
//! transaction, one identity lookup and a few multi-row statements — instead of a transaction
//! each. Every request still gets its own answer, only after the commit that holds its write,
//! and a bad upsert fails alone. Under light load a batch is one upsert, so nothing waits.

use std::sync::{Arc, Weak};

use profiled_core::WorkspaceId;
use tokio::sync::{mpsc, oneshot};

use super::bulk::{BatchOutcome, BatchUpsert};
use super::{Result, Service, Upsert, Written};

/// The most upserts one batch carries.
const MAX_BATCH: usize = 256;
/// Batches applied at the same time. While one waits for its commit to reach the disk the
/// next is built, and on SQLite they share that commit (see `sqlite/group_commit.rs`).
const WORKERS: usize = 4;

pub(super) struct Job {
    ws: WorkspaceId,
    upsert: BatchUpsert,
    reply: oneshot::Sender<Result<Written>>,
}

pub(super) type Combiner = mpsc::Sender<Job>;

impl Service {
    /// Starts combining concurrent upserts into batches. A server calls it once; without it
    /// each upsert is a transaction of its own.
    pub fn combine_upserts(self: &Arc<Self>) {
        let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
        if self.combiner.set(sender).is_ok() {
            let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
            for _ in 0..WORKERS {
                tokio::spawn(run(Arc::downgrade(self), receiver.clone()));
            }
        }
    }

    /// Hands an upsert to the combining task; `None` when there is none (then the caller
    /// applies it itself).
    pub(super) async fn combined(
        &self,
        ws: WorkspaceId,
        ctx: &super::WriteContext,
        request: &Upsert,
    ) -> Option<Result<Written>> {
        let combiner = self.combiner.get()?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            ws,
            upsert: BatchUpsert {
                identities: request.identities.clone(),
                change: request.change.clone(),
                ctx: Arc::new(ctx.clone()),
                create: true,
            },
            reply,
        };
        combiner.send(job).await.ok()?;
        answer.await.ok()
    }

    async fn apply_jobs(&self, ws: WorkspaceId, jobs: Vec<Job>) {
        let (upserts, mut replies): (Vec<BatchUpsert>, Vec<Option<oneshot::Sender<_>>>) = jobs
            .into_iter()
            .map(|job| (job.upsert, Some(job.reply)))
            .unzip();
        let mut answer = |i: usize, result: Result<Written>| {
            if let Some(reply) = replies[i].take() {
                // The client may have gone; the write stands all the same.
                let _ = reply.send(result);
            }
        };
        let mut start = 0;
        while start < upserts.len() {
            match self.upsert_batch(ws, &upserts[start..], true).await {
                Ok(outcomes) => {
                    let taken = outcomes.len();
                    for (i, outcome) in outcomes.into_iter().enumerate() {
                        answer(
                            start + i,
                            match outcome {
                                BatchOutcome::Applied {
                                    created,
                                    changed,
                                    profile,
                                } => Ok(Written {
                                    profile: *profile.expect("the batch keeps profiles"),
                                    created,
                                    changed,
                                }),
                                BatchOutcome::Failed(e) => Err(e),
                                BatchOutcome::Skipped => {
                                    unreachable!("combined upserts always create")
                                }
                            },
                        );
                    }
                    start += taken;
                    // A merge: on its own, then the batch goes on.
                    if start < upserts.len() {
                        answer(start, self.upsert_alone(ws, &upserts[start]).await);
                        start += 1;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "a batch was refused; its upserts go one by one");
                    for (i, upsert) in upserts.iter().enumerate().skip(start) {
                        answer(i, self.upsert_alone(ws, upsert).await);
                    }
                    start = upserts.len();
                }
            }
        }
    }

    async fn upsert_alone(&self, ws: WorkspaceId, upsert: &BatchUpsert) -> Result<Written> {
        self.upsert_direct(
            ws,
            &upsert.ctx,
            &Upsert {
                identities: upsert.identities.clone(),
                change: upsert.change.clone(),
                company: None,
                seen: None,
            },
        )
        .await
    }
}

async fn run(service: Weak<Service>, receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    loop {
        // The lock is held only while taking jobs, never while applying them.
        if receiver.lock().await.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        let Some(service) = service.upgrade() else {
            return;
        };
        // One batch per workspace, each in arrival order.
        while !jobs.is_empty() {
            let ws = jobs[0].ws;
            let (same, rest): (Vec<Job>, Vec<Job>) = jobs.drain(..).partition(|j| j.ws == ws);
            jobs = rest;
            service.apply_jobs(ws, same).await;
        }
    }
}
