//! Concurrent upsert requests combined into batches: a worker takes every upsert waiting at
//! that moment (up to 256) and applies them with [`Service::upsert_batch`] — one
//! transaction, one identity lookup and a few multi-row statements — instead of a transaction
//! each. Every request still gets its own answer, only after the commit that holds its write
//! is durable, and a bad upsert fails alone. A worker does not wait for that: a task of the
//! batch's own answers it once the commit is synced, while the worker applies the next batch.
//! Under light load a batch is one upsert, so nothing waits.

use std::sync::{Arc, Weak};

use profiled_core::WorkspaceId;
use tokio::sync::{mpsc, oneshot};

use super::bulk::{BatchOutcome, BatchUpsert};
use super::{Result, Service, ServiceError, Upsert, Written};
use profiled_store::StoreError;

/// The most upserts one batch carries.
const MAX_BATCH: usize = 256;
/// Workers taking batches. They take turns at the one writer; a batch that merges profiles
/// goes one by one and waits for its own sync, and the other workers go on meanwhile.
const WORKERS: usize = 4;

pub(super) struct Job {
    ws: WorkspaceId,
    upsert: BatchUpsert,
    reply: Reply,
}

type Reply = oneshot::Sender<Result<Written>>;

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

    /// Applies one workspace's jobs in arrival order. A batch is answered once it is
    /// durable, by a task of its own, so the next batch is applied meanwhile.
    async fn apply_jobs(self: &Arc<Self>, ws: WorkspaceId, jobs: Vec<Job>) {
        let (upserts, replies): (Vec<BatchUpsert>, Vec<Reply>) =
            jobs.into_iter().map(|job| (job.upsert, job.reply)).unzip();
        let mut replies = replies.into_iter();
        let mut start = 0;
        while start < upserts.len() {
            match self.upsert_batch_early(ws, &upserts[start..], true).await {
                Ok((outcomes, durable)) => {
                    start += outcomes.len();
                    // Exactly as many replies as outcomes: the next one may be a merge's.
                    let answers: Vec<(Reply, Result<Written>)> = replies
                        .by_ref()
                        .take(outcomes.len())
                        .zip(outcomes.into_iter().map(written))
                        .collect();
                    let service = self.clone();
                    tokio::spawn(async move {
                        let durable = service.durable(durable).await;
                        answer_when_durable(answers, durable);
                    });
                    // A merge: on its own, then the batch goes on.
                    if start < upserts.len() {
                        let reply = replies.next().expect("one reply per job");
                        // The client may have gone; the write stands all the same.
                        let _ = reply.send(self.upsert_alone(ws, &upserts[start]).await);
                        start += 1;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "a batch was refused; its upserts go one by one");
                    for (upsert, reply) in upserts[start..].iter().zip(replies.by_ref()) {
                        let _ = reply.send(self.upsert_alone(ws, upsert).await);
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

fn written(outcome: BatchOutcome) -> Result<Written> {
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
        BatchOutcome::Skipped => unreachable!("combined upserts always create"),
    }
}

/// Tells each upsert of a batch how it went, now that the batch is durable (or failed to be:
/// then none of it is acknowledged).
fn answer_when_durable(answers: Vec<(Reply, Result<Written>)>, durable: Result<()>) {
    let failure = durable.err().map(|e| match e {
        ServiceError::Store(StoreError::CommitFailed(message)) => message,
        other => other.to_string(),
    });
    for (reply, result) in answers {
        let result = match &failure {
            Some(message) => Err(ServiceError::Store(StoreError::CommitFailed(
                message.clone(),
            ))),
            None => result,
        };
        // The client may have gone; the write stands all the same.
        let _ = reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use profiled_core::{Profile, ProfileId};

    type Answered = oneshot::Receiver<Result<Written>>;

    fn batch_of_two() -> (Vec<(Reply, Result<Written>)>, Vec<Answered>) {
        let (answers, receivers) = (0..2)
            .map(|i| {
                let (reply, receiver) = oneshot::channel();
                let profile =
                    Profile::new(ProfileId(format!("p{i}")), jiff::Timestamp::UNIX_EPOCH, 1.0);
                let result = Ok(Written {
                    profile,
                    created: true,
                    changed: true,
                });
                ((reply, result), receiver)
            })
            .unzip();
        (answers, receivers)
    }

    fn upsert(ws: WorkspaceId, identities: &[(&str, &str)], n: i64) -> (Job, Answered) {
        let (reply, answered) = oneshot::channel();
        let upsert = BatchUpsert {
            identities: identities
                .iter()
                .map(|(kind, value)| profiled_core::Identity::new_unchecked(kind, value))
                .collect(),
            change: super::super::Change::MergePatch(serde_json::json!({ "n": n })),
            ctx: Arc::new(super::super::WriteContext {
                actor: "test".into(),
                origin: None,
            }),
            create: true,
        };
        (Job { ws, upsert, reply }, answered)
    }

    #[tokio::test]
    async fn an_upsert_that_merges_inside_a_batch_is_answered_in_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = profiled_store::sqlite::SqliteStore::open_dir(dir.path(), &Default::default())
            .await
            .unwrap();
        let service = Arc::new(Service::new(Arc::new(store), Default::default()));
        let (workspace, _) = service.create_workspace("w").await.unwrap();
        let ws = workspace.id;
        // Two profiles, one known by user id, the other by email.
        let (first, _) = upsert(ws, &[("user_id", "a")], 0);
        let (second, _) = upsert(ws, &[("email", "b@example.com")], 0);
        service.apply_jobs(ws, vec![first, second]).await;

        // The middle upsert names both, so the batch stops before it and it merges alone.
        let (jobs, answers): (Vec<Job>, Vec<Answered>) = [
            upsert(ws, &[("user_id", "c")], 1),
            upsert(ws, &[("user_id", "a"), ("email", "b@example.com")], 2),
            upsert(ws, &[("user_id", "d")], 3),
        ]
        .into_iter()
        .unzip();
        service.apply_jobs(ws, jobs).await;
        let mut answered = Vec::new();
        for answer in answers {
            let written = answer.await.expect("answered").expect("applied");
            answered.push((
                written.profile.properties["n"].clone(),
                written.profile.identities.len(),
            ));
        }
        use serde_json::json;
        assert_eq!(answered, [(json!(1), 1), (json!(2), 2), (json!(3), 1)]);
    }

    #[test]
    fn a_durable_batch_is_answered_with_its_outcomes() {
        let (answers, mut receivers) = batch_of_two();
        answer_when_durable(answers, Ok(()));
        for (i, receiver) in receivers.iter_mut().enumerate() {
            let written = receiver.try_recv().unwrap().unwrap();
            assert_eq!(written.profile.id.0, format!("p{i}"));
        }
    }

    #[test]
    fn a_batch_that_did_not_reach_the_disk_acknowledges_nothing() {
        let (answers, mut receivers) = batch_of_two();
        let failure = ServiceError::Store(StoreError::CommitFailed("disk full".into()));
        answer_when_durable(answers, Err(failure));
        for receiver in &mut receivers {
            match receiver.try_recv().unwrap() {
                Err(ServiceError::Store(StoreError::CommitFailed(message))) => {
                    assert_eq!(message, "disk full")
                }
                other => panic!("expected a failed commit, got {other:?}"),
            }
        }
    }
}
