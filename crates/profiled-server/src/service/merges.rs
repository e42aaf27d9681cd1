//! Explicit merges and their dry runs.

use profiled_core::{Profile, ProfileId, Violation, WorkspaceId};
use serde_json::{Map, Value};

use super::{Result, Service, ServiceError, WriteContext};

/// What a merge did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub struct MergeOutcome {
    /// The merge's id; none for a dry run.
    pub id: Option<String>,
    pub survivor: Profile,
    pub absorbed: Vec<ProfileId>,
    /// `properties.<key>` → the absorbed profile the survivor took the value from.
    pub sources: Map<String, Value>,
}

impl Service {
    /// Merges `target` with `others` by the merge rules (which also pick the survivor).
    /// With `dry_run`, nothing is written.
    pub async fn merge_profiles(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        target: &ProfileId,
        others: &[ProfileId],
        dry_run: bool,
    ) -> Result<MergeOutcome> {
        let mut tx = self.store.begin().await?;
        let mut profiles: Vec<Profile> = Vec::new();
        for id in std::iter::once(target).chain(others) {
            let profile = self.locked(&mut *tx, ws, id, None).await?;
            if !profiles.iter().any(|p| p.id == profile.id) {
                profiles.push(profile);
            }
        }
        if profiles.len() < 2 {
            return Err(ServiceError::Invalid(vec![Violation::new(
                "/profile_ids",
                "name at least one other profile (ids already merged into this one do not count)",
            )]));
        }
        let plan = self.plan_merge(profiles)?;
        let mut outcome = MergeOutcome {
            id: None,
            survivor: plan.merged.survivor.clone(),
            absorbed: plan.merged.absorbed.iter().map(|p| p.id.clone()).collect(),
            sources: plan.merged.sources.clone(),
        };
        if dry_run {
            // Dropping the transaction rolls back its (empty) savepoint.
            return Ok(outcome);
        }
        self.record_merge(&mut *tx, ws, ctx, &plan).await?;
        tx.commit().await?;
        self.changed.notify_waiters();
        outcome.id = Some(plan.id);
        Ok(outcome)
    }
}
