//! Many upserts in one transaction, for imports: the identities of the whole batch are looked
//! up in one query, the upserts applied in order in memory (each checked on its own, so a
//! bad one fails alone), and the results written with a few multi-row statements.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use profiled_core::change::{Operation, diff};
use profiled_core::{Identity, Profile, ProfileId, WorkspaceId};
use rand::Rng;
use serde_json::Map;

use super::profiles::{edited, new_profile_id, refuse_second_user_id};
use super::rules::WriteRules;
use super::{Change, Result, Service, ServiceError, WriteContext};

/// One upsert of a batch, and who makes it.
#[derive(Debug, Clone)]
pub struct BatchUpsert {
    pub identities: Vec<Identity>,
    pub change: Change,
    pub ctx: Arc<WriteContext>,
    /// Whether identities that lead to no profile create one (else the upsert is skipped).
    pub create: bool,
}

/// What one upsert of a batch did.
#[derive(Debug)]
pub enum BatchOutcome {
    Applied {
        created: bool,
        changed: bool,
        /// The profile as this upsert left it, when the batch was asked to keep profiles.
        profile: Option<Box<Profile>>,
    },
    /// It named no stored profile and may not create one.
    Skipped,
    /// It broke a rule; nothing of it was written.
    Failed(ServiceError),
}

/// A profile the batch reads or writes.
struct Working {
    profile: Profile,
    /// It was in the database before the batch.
    stored: bool,
    changed: bool,
}

impl Service {
    /// Applies upserts in order, in one transaction. It stops before the first upsert whose
    /// identities lead to two profiles (a merge, which takes the one-by-one path) and returns
    /// the outcomes of those before it. With `keep_profiles`, each outcome carries the profile
    /// as that upsert left it (an import does not need them; a request answers with it).
    pub async fn upsert_batch(
        &self,
        ws: WorkspaceId,
        upserts: &[BatchUpsert],
        keep_profiles: bool,
    ) -> Result<Vec<BatchOutcome>> {
        let (outcomes, durable) = self.upsert_batch_early(ws, upserts, keep_profiles).await?;
        self.durable(durable).await?;
        Ok(outcomes)
    }

    /// [`Service::upsert_batch`], returning as soon as the store is free for the next
    /// transaction, with what resolves once the batch is durable: no outcome may be told
    /// before it has.
    pub(super) async fn upsert_batch_early(
        &self,
        ws: WorkspaceId,
        upserts: &[BatchUpsert],
        keep_profiles: bool,
    ) -> Result<(Vec<BatchOutcome>, profiled_store::Durable)> {
        let kept = |profile: &Profile, created: bool, changed: bool| BatchOutcome::Applied {
            created,
            changed,
            profile: keep_profiles.then(|| Box::new(profile.clone())),
        };
        let now = profiled_core::profile::to_micros(Timestamp::now());
        let mut write_rules = self.write_rules(ws).await?;
        let mut tx = self.store.begin().await?;
        let wanted: Vec<Identity> = upserts
            .iter()
            .flat_map(|u| u.identities.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut profiles: Vec<Working> = Vec::new();
        let mut owner: HashMap<Identity, usize> = HashMap::new();
        for profile in tx.profiles_by_identities(ws, &wanted).await? {
            for identity in &profile.identities {
                owner.insert(identity.clone(), profiles.len());
            }
            profiles.push(Working {
                profile,
                stored: true,
                changed: false,
            });
        }
        let mut attached: Vec<(ProfileId, Identity)> = Vec::new();
        let mut changes = Vec::new();
        let mut outcomes = Vec::with_capacity(upserts.len());
        for upsert in upserts {
            let owners: BTreeSet<usize> = upsert
                .identities
                .iter()
                .filter_map(|i| owner.get(i).copied())
                .collect();
            let outcome = match owners.len() {
                0 if !upsert.create => BatchOutcome::Skipped,
                0 => {
                    let mut profile =
                        Profile::new(new_profile_id(), now, rand::rng().random_range(0.0..100.0));
                    profile.attach(upsert.identities.iter().cloned());
                    match edited(&upsert.change, &Map::new()) {
                        Ok((properties, filled)) => {
                            profile.properties = properties;
                            profile.set_once = filled.into_iter().collect();
                            match self
                                .check(&profile)
                                .and_then(|()| write_rules.validate(&profile))
                            {
                                Ok(()) => {
                                    write_rules.place(&mut profile, &upsert.ctx, now);
                                    changes.push(upsert.ctx.entry(
                                        &profile.id,
                                        now,
                                        Operation::Create,
                                        diff(None, &profile),
                                    ));
                                    let outcome = kept(&profile, true, true);
                                    for identity in &profile.identities {
                                        owner.insert(identity.clone(), profiles.len());
                                    }
                                    profiles.push(Working {
                                        profile,
                                        stored: false,
                                        changed: true,
                                    });
                                    outcome
                                }
                                Err(e) => BatchOutcome::Failed(e),
                            }
                        }
                        Err(e) => BatchOutcome::Failed(e),
                    }
                }
                1 => {
                    let index = *owners.first().expect("one owner");
                    let working = &mut profiles[index];
                    match self.apply_one(&mut working.profile, upsert, &write_rules, now) {
                        Ok(None) => kept(&working.profile, false, false),
                        Ok(Some((before, new_identities))) => {
                            write_rules.place(&mut working.profile, &upsert.ctx, now);
                            changes.push(upsert.ctx.entry(
                                &working.profile.id,
                                now,
                                Operation::Update,
                                diff(Some(&before), &working.profile),
                            ));
                            working.changed = true;
                            for identity in new_identities {
                                owner.insert(identity.clone(), index);
                                if working.stored {
                                    attached.push((working.profile.id.clone(), identity));
                                }
                            }
                            kept(&working.profile, false, true)
                        }
                        Err(e) => BatchOutcome::Failed(e),
                    }
                }
                // A merge: the one-by-one path takes it from here.
                _ => break,
            };
            outcomes.push(outcome);
        }
        let (stored, created): (Vec<Working>, Vec<Working>) = profiles
            .into_iter()
            .filter(|w| w.changed)
            .partition(|w| w.stored);
        let created: Vec<Profile> = created.into_iter().map(|w| w.profile).collect();
        let updated: Vec<Profile> = stored.into_iter().map(|w| w.profile).collect();
        tx.insert_profiles(ws, &created).await?;
        tx.update_profiles(ws, &updated).await?;
        tx.insert_identities(ws, &attached, now).await?;
        tx.append_changes(ws, &changes).await?;
        write_rules.write(&mut *tx, ws).await?;
        let durable = tx.commit_early().await?;
        Ok((outcomes, durable))
    }

    /// Applies one upsert to a profile in memory. `None` when it changes nothing; otherwise
    /// the profile as it was and the identities it gained. On error the profile is untouched.
    fn apply_one(
        &self,
        profile: &mut Profile,
        upsert: &BatchUpsert,
        write_rules: &WriteRules,
        now: Timestamp,
    ) -> Result<Option<(Profile, Vec<Identity>)>> {
        refuse_second_user_id(profile, &upsert.identities)?;
        let (properties, filled) = edited(&upsert.change, &profile.properties)?;
        let new_identities = profile.missing_identities(&upsert.identities);
        if properties == profile.properties && new_identities.is_empty() {
            return Ok(None);
        }
        // The profile as it was, without copying its properties a second time: `edited`
        // already made the new ones from them.
        let old_properties = std::mem::take(&mut profile.properties);
        let mut before = profile.clone();
        before.properties = old_properties;
        profile.edit(properties, filled, &new_identities);
        let valid = self.check(profile).and_then(|()| {
            if profile.properties == before.properties {
                Ok(())
            } else {
                write_rules.validate(profile)
            }
        });
        if let Err(e) = valid {
            *profile = before;
            return Err(e);
        }
        profile.touch(now);
        Ok(Some((before, new_identities)))
    }
}
