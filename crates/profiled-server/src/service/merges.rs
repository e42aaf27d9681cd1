//! Explicit merges and their dry runs.

use jiff::Timestamp;
use profiled_core::change::{Operation, diff};
use profiled_core::{Profile, ProfileId, Violation, WorkspaceId};
use serde_json::{Map, Value};

use super::{Result, Retry, Service, ServiceError, WriteContext, with_retries};

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
        with_retries!(
            Retry::OnContention,
            self.merge_profiles_once(ws, ctx, target, others, dry_run)
        )
    }

    async fn merge_profiles_once(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        target: &ProfileId,
        others: &[ProfileId],
        dry_run: bool,
    ) -> Result<MergeOutcome> {
        let rules = self.activity_rules(ws).await?;
        let mut write_rules = self.write_rules(ws).await?;
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
        let mut plan = self.plan_merge(profiles, &rules, &write_rules)?;
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
        self.record_merge(&mut *tx, ws, ctx, &mut plan, &mut write_rules)
            .await?;
        write_rules.write(&mut *tx, ws).await?;
        self.commit(tx).await?;
        outcome.survivor = plan.merged.survivor;
        outcome.id = Some(plan.id);
        Ok(outcome)
    }
}

/// A merge undone: the survivor as it is now, and the profiles it had absorbed, back again.
#[derive(Debug, Clone)]
pub struct Unmerged {
    pub survivor: Profile,
    pub restored: Vec<Profile>,
}

impl Service {
    /// Splits a merge back: each absorbed profile returns as it was, with the identities the
    /// survivor still carries of it; the survivor gives back the values it took that nobody has
    /// changed since, and subtracts the counters it added. Writes made since the merge stay on
    /// the survivor.
    pub async fn undo_merge(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        merge_id: &str,
    ) -> Result<Unmerged> {
        with_retries!(Retry::OnContention, self.undo_merge_once(ws, ctx, merge_id))
    }

    async fn undo_merge_once(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        merge_id: &str,
    ) -> Result<Unmerged> {
        let mut write_rules = self.write_rules(ws).await?;
        let mut tx = self.store.begin().await?;
        let record = tx
            .merge_record(ws, merge_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("merge `{merge_id}`")))?;
        if record.undone_at.is_some() {
            return Err(ServiceError::Conflict(format!(
                "merge `{merge_id}` is already undone"
            )));
        }
        let mut survivor = tx.profile(ws, &record.survivor).await?.ok_or_else(|| {
            ServiceError::Conflict(format!(
                "the survivor `{}` was deleted or merged again since; undo that first",
                record.survivor
            ))
        })?;
        let before = survivor.clone();
        let now = Timestamp::from_microsecond(Timestamp::now().as_microsecond())
            .expect("now is in range");
        let mut restored = Vec::new();
        for absorbed in &record.absorbed {
            let mut profile = absorbed.clone();
            let identities = std::mem::take(&mut profile.identities);
            profile.version += 1;
            profile.updated_at = now;
            tx.insert_profile(ws, &profile).await?;
            for identity in identities {
                if tx
                    .move_identity(ws, &identity, &survivor.id, &profile.id)
                    .await?
                {
                    profile.attach([identity]);
                }
            }
            survivor
                .identities
                .retain(|i| !profile.identities.contains(i));
            give_back(
                &mut survivor,
                &record.survivor_before,
                &profile,
                &record.sources,
            );
            write_rules.place(&mut profile, ctx, now);
            tx.append_change(
                ws,
                &ctx.entry(&profile.id, now, Operation::Unmerge, diff(None, &profile)),
            )
            .await?;
            restored.push(profile);
        }
        survivor.created_at = record.survivor_before.created_at;
        survivor.touch(now);
        write_rules.place(&mut survivor, ctx, now);
        tx.update_profile(ws, &survivor).await?;
        tx.append_change(
            ws,
            &ctx.entry(
                &survivor.id,
                now,
                Operation::Unmerge,
                diff(Some(&before), &survivor),
            ),
        )
        .await?;
        tx.mark_merge_undone(ws, merge_id, now).await?;
        write_rules.write(&mut *tx, ws).await?;
        self.commit(tx).await?;
        Ok(Unmerged { survivor, restored })
    }
}

/// The survivor's side of an undo for one absorbed profile: taken values still as taken go
/// back — to the survivor's own earlier value if it had one — while changed ones are writes
/// made since, and stay; added counters are subtracted.
fn give_back(
    survivor: &mut Profile,
    survivor_before: &Profile,
    absorbed: &Profile,
    sources: &Map<String, Value>,
) {
    let taken_from_it =
        |key: &str| sources.get(key).and_then(Value::as_str) == Some(absorbed.id.0.as_str());
    for (key, value) in &absorbed.properties {
        if taken_from_it(&format!("properties.{key}"))
            && survivor.properties.get(key) == Some(value)
        {
            // A value the survivor had of its own (a set_once key the older profile won) comes back.
            match survivor_before.properties.get(key) {
                Some(own) => survivor.properties.insert(key.clone(), own.clone()),
                None => survivor.properties.remove(key),
            };
        }
    }
    for (key, value) in &absorbed.computed {
        if key == "percent" {
            continue;
        }
        if taken_from_it(&format!("computed.{key}")) {
            if survivor.computed.get(key) == Some(value) {
                survivor.computed.remove(key);
            }
        } else if let (Some(Value::Number(mine)), Value::Number(theirs)) =
            (survivor.computed.get(key), value)
        {
            let difference = match (mine.as_i64(), theirs.as_i64()) {
                (Some(x), Some(y)) => x.checked_sub(y).map(Value::from),
                _ => serde_json::Number::from_f64(
                    mine.as_f64().unwrap_or(0.0) - theirs.as_f64().unwrap_or(0.0),
                )
                .map(Value::Number),
            };
            if let Some(difference) = difference {
                survivor.computed.insert(key.clone(), difference);
            }
        }
    }
}

impl Service {
    /// The merges into a profile (resolving an absorbed id to its survivor), newest first.
    pub async fn merges_into(
        &self,
        ws: WorkspaceId,
        id: &ProfileId,
    ) -> Result<Vec<profiled_store::StoredMerge>> {
        let profile = self.profile(ws, id).await?;
        Ok(self.store.merges_into(ws, &profile.id).await?)
    }
}
