//! Profile use-cases: upsert by identities, read, change, identities, delete.

use jiff::Timestamp;
use profiled_core::activity::ActivityRules;
use profiled_core::change::{NewChange, Operation, diff};
use profiled_core::merge::merge;
use profiled_core::ops::merge_patch;
use profiled_core::profile::to_micros;
use profiled_core::{
    Identity, Profile, ProfileId, PropertyOps, RawProfile, Violation, WorkspaceId,
};
use profiled_store::{MergeRecord, ProfileTx};
use rand::Rng;
use serde_json::{Map, Value};

use super::rules::WriteRules;
use super::{Result, Retry, Service, ServiceError, with_retries};

/// Create-or-update by identities.
#[derive(Debug, Clone)]
pub struct Upsert {
    pub identities: Vec<Identity>,
    /// What to do to the properties (of an empty profile, when it is created).
    pub change: Change,
    /// The company the profile joins or leaves; `None` leaves it as it is.
    pub company: Option<super::companies::CompanyLink>,
    /// Where the end user is now: a device description and an IP address to locate.
    pub seen: Option<Seen>,
}

/// A device and an address an upsert reports for the end user, as an event's context would.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// Replaces the profile's device when not empty.
    pub device: Map<String, Value>,
    /// Locates the profile (with a GeoIP database configured).
    pub ip: Option<std::net::IpAddr>,
}

/// The outcome of a write.
#[derive(Debug, Clone)]
pub struct Written {
    pub profile: Profile,
    pub created: bool,
    /// False when the write changed nothing (the version stayed).
    pub changed: bool,
}

/// A change to an existing profile's properties.
#[derive(Debug, Clone)]
pub enum Change {
    Ops(PropertyOps),
    /// JSON Merge Patch (RFC 7396).
    MergePatch(Value),
    /// Replace all properties.
    Replace(Map<String, Value>),
}

/// A merge decided but not yet written.
pub struct PlannedMerge {
    pub id: String,
    pub merged: profiled_core::merge::Merged,
    /// The survivor as it was before the merge (kept for undo).
    pub survivor_before: Profile,
}

/// New properties and identities for a profile, and what to log the change as.
struct Edit {
    operation: Operation,
    properties: Map<String, Value>,
    new_identities: Vec<Identity>,
    /// Top-level keys this edit's `set_once` filled.
    set_once_filled: Vec<String>,
    /// The company the profile belongs to afterwards.
    company: Option<String>,
    /// Its location and device afterwards.
    location: Map<String, Value>,
    device: Map<String, Value>,
}

/// Who writes, and the origin tag they set: recorded with every change.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteContext {
    /// `key:<id>` for an API key.
    pub actor: String,
    pub origin: Option<String>,
}

impl WriteContext {
    pub(super) fn entry(
        &self,
        id: &ProfileId,
        at: Timestamp,
        operation: Operation,
        changes: Vec<profiled_core::change::KeyChange>,
    ) -> NewChange {
        NewChange {
            profile_id: id.clone(),
            at,
            actor: self.actor.clone(),
            operation,
            changes,
            origin: self.origin.clone(),
        }
    }
}

/// An `If-Match` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Precondition {
    /// `*`: any current version.
    Any,
    /// One of these versions.
    Versions(Vec<i64>),
}

impl Precondition {
    fn check(&self, profile: &Profile) -> Result<()> {
        match self {
            Precondition::Any => Ok(()),
            Precondition::Versions(v) if v.contains(&profile.version) => Ok(()),
            Precondition::Versions(_) => Err(ServiceError::PreconditionFailed {
                current: profile.version,
            }),
        }
    }
}

pub(super) fn now() -> Timestamp {
    to_micros(Timestamp::now())
}

/// New properties after a change, and the top-level keys its `set_once` filled.
pub(super) fn edited(
    change: &Change,
    current: &Map<String, Value>,
) -> Result<(Map<String, Value>, Vec<String>)> {
    Ok(match change {
        Change::Ops(ops) => {
            let properties = ops.apply(current, "")?;
            let filled = ops.set_once_filled(current, &properties);
            (properties, filled)
        }
        Change::MergePatch(patch) => (merge_patch(current, patch)?, Vec::new()),
        Change::Replace(properties) => (properties.clone(), Vec::new()),
    })
}

fn not_found(id: &ProfileId) -> ServiceError {
    ServiceError::NotFound(format!("profile `{id}`"))
}

impl Service {
    /// Creates the profile the identities name, or updates it. Identities the profile does
    /// not carry yet are attached to it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn upsert(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        request: Upsert,
    ) -> Result<Written> {
        if request.identities.is_empty() {
            return Err(ServiceError::Invalid(vec![Violation::new(
                "/identities",
                "name at least one identity, e.g. {\"user_id\": \"u1\"}",
            )]));
        }
        // Upserts that name a company write it too: they go alone.
        if request.company.is_none()
            && request.seen.is_none()
            && let Some(written) = self.combined(ws, ctx, &request).await
        {
            return written;
        }
        self.upsert_direct(ws, ctx, &request).await
    }

    /// An upsert as a transaction of its own.
    pub(super) async fn upsert_direct(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        request: &Upsert,
    ) -> Result<Written> {
        // An identity found free and then taken by a concurrent writer (another node on a
        // shared database) is no conflict: the next attempt finds its owner and updates it.
        with_retries!(
            Retry::AlsoWhenIdentityTaken,
            self.upsert_once(ws, ctx, request)
        )
    }

    async fn upsert_once(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        request: &Upsert,
    ) -> Result<Written> {
        let mut write_rules = self.write_rules(ws).await?;
        let mut tx = self.store.begin().await?;
        let mut owners = tx.profiles_by_identities(ws, &request.identities).await?;
        if owners.len() > 1 {
            owners = vec![
                self.merge_owners(&mut *tx, ws, ctx, owners, &mut write_rules)
                    .await?,
            ];
        }
        let written = match owners.pop() {
            None => {
                let mut profile = Profile::new(
                    new_profile_id(),
                    now(),
                    rand::rng().random_range(0.0..100.0),
                );
                profile.attach(request.identities.iter().cloned());
                let (properties, set_once_filled) = edited(&request.change, &Map::new())?;
                profile.properties = properties;
                profile.set_once = set_once_filled.into_iter().collect();
                profile.company = self
                    .linked_company(&mut *tx, ws, request.company.as_ref(), &profile)
                    .await?;
                if let Some(seen) = &request.seen {
                    self.apply_seen(&mut profile, seen);
                }
                self.check(&profile)?;
                write_rules.validate(&profile)?;
                let at = profile.created_at;
                write_rules.place(&mut profile, ctx, at);
                tx.insert_profile(ws, &profile).await?;
                tx.append_change(
                    ws,
                    &ctx.entry(
                        &profile.id,
                        profile.created_at,
                        Operation::Create,
                        diff(None, &profile),
                    ),
                )
                .await?;
                Written {
                    profile,
                    created: true,
                    changed: true,
                }
            }
            Some(mut profile) => {
                refuse_second_user_id(&profile, &request.identities)?;
                let version = profile.version;
                let (properties, set_once_filled) = edited(&request.change, &profile.properties)?;
                let new_identities = profile.missing_identities(&request.identities);
                let company = self
                    .linked_company(&mut *tx, ws, request.company.as_ref(), &profile)
                    .await?;
                let mut seen_profile = profile.clone();
                if let Some(seen) = &request.seen {
                    self.apply_seen(&mut seen_profile, seen);
                }
                self.save(
                    &mut *tx,
                    ws,
                    ctx,
                    &mut profile,
                    Edit {
                        operation: Operation::Update,
                        set_once_filled,
                        properties,
                        new_identities,
                        company,
                        location: seen_profile.location,
                        device: seen_profile.device,
                    },
                    &mut write_rules,
                )
                .await?;
                let changed = profile.version != version;
                Written {
                    profile,
                    created: false,
                    changed,
                }
            }
        };
        write_rules.write(&mut *tx, ws).await?;
        self.commit(tx).await?;
        Ok(written)
    }

    /// The profile with this id — or, if it was merged into another, the survivor.
    pub async fn profile(&self, ws: WorkspaceId, id: &ProfileId) -> Result<Profile> {
        self.following_merges(
            ws,
            id,
            |id| async move { self.store.profile(ws, &id).await },
        )
        .await
    }

    /// [`Service::profile`] for showing it: its documents stay as stored.
    pub async fn profile_raw(&self, ws: WorkspaceId, id: &ProfileId) -> Result<RawProfile> {
        self.following_merges(
            ws,
            id,
            |id| async move { self.store.profile_raw(ws, &id).await },
        )
        .await
    }

    /// `read(id)`, or `read(survivor)` when `id` was merged into another profile.
    async fn following_merges<P, Read>(
        &self,
        ws: WorkspaceId,
        id: &ProfileId,
        read: impl Fn(ProfileId) -> Read,
    ) -> Result<P>
    where
        Read: std::future::Future<Output = profiled_store::Result<Option<P>>>,
    {
        if let Some(profile) = read(id.clone()).await? {
            return Ok(profile);
        }
        match self.store.survivor_of(ws, id).await? {
            Some(survivor) => read(survivor).await?.ok_or_else(|| not_found(id)),
            None => Err(not_found(id)),
        }
    }

    /// Merges the profiles an upsert's identities lead to, by the rules of
    /// [`profiled_core::merge`]; returns the survivor as stored.
    async fn merge_owners(
        &self,
        tx: &mut dyn ProfileTx,
        ws: WorkspaceId,
        ctx: &WriteContext,
        owners: Vec<Profile>,
        write_rules: &mut WriteRules,
    ) -> Result<Profile> {
        let rules = self.activity_rules(ws).await?;
        let mut merged = self.plan_merge(owners, &rules, write_rules)?;
        self.record_merge(tx, ws, ctx, &mut merged, write_rules)
            .await?;
        Ok(merged.merged.survivor)
    }

    /// Applies the merge rules; nothing is written.
    pub(super) fn plan_merge(
        &self,
        profiles: Vec<Profile>,
        rules: &ActivityRules,
        write_rules: &WriteRules,
    ) -> Result<PlannedMerge> {
        let originals = profiles.clone();
        let merged =
            merge(profiles, now(), rules).map_err(|refused| ServiceError::Conflict(refused.0))?;
        self.check(&merged.survivor)?;
        let survivor_before = originals
            .into_iter()
            .find(|p| p.id == merged.survivor.id)
            .expect("the survivor is one of them");
        if merged.survivor.properties != survivor_before.properties {
            write_rules.validate(&merged.survivor)?;
        }
        Ok(PlannedMerge {
            id: uuid::Uuid::now_v7().to_string(),
            merged,
            survivor_before,
        })
    }

    /// Writes a planned merge: the record, the survivor, and its change log entry.
    pub(super) async fn record_merge(
        &self,
        tx: &mut dyn ProfileTx,
        ws: WorkspaceId,
        ctx: &WriteContext,
        plan: &mut PlannedMerge,
        write_rules: &mut WriteRules,
    ) -> Result<()> {
        let at = plan.merged.survivor.updated_at;
        write_rules.place(&mut plan.merged.survivor, ctx, at);
        let merged = &plan.merged;
        tx.record_merge(
            ws,
            &MergeRecord {
                id: &plan.id,
                survivor: &merged.survivor.id,
                survivor_before: &plan.survivor_before,
                absorbed: &merged.absorbed,
                sources: merged.sources.clone(),
                at: merged.survivor.updated_at,
                actor: &ctx.actor,
            },
        )
        .await?;
        tx.update_profile(ws, &merged.survivor).await?;
        let entry = ctx.entry(
            &merged.survivor.id,
            merged.survivor.updated_at,
            Operation::Merge,
            diff(Some(&plan.survivor_before), &merged.survivor),
        );
        tx.append_change(ws, &entry).await?;
        Ok(())
    }

    /// [`Service::profile_by_identity`] for showing the profile: its documents stay as stored.
    pub async fn profile_by_identity_raw(
        &self,
        ws: WorkspaceId,
        identity: &Identity,
    ) -> Result<RawProfile> {
        self.store
            .profile_by_identity_raw(ws, identity)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("profile with identity {identity}")))
    }

    pub async fn profile_by_identity(
        &self,
        ws: WorkspaceId,
        identity: &Identity,
    ) -> Result<Profile> {
        self.store
            .profile_by_identity(ws, identity)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("profile with identity {identity}")))
    }

    /// Changes an existing profile's properties.
    pub async fn change(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        id: &ProfileId,
        change: Change,
        precondition: Option<Precondition>,
    ) -> Result<Profile> {
        with_retries!(
            Retry::OnContention,
            self.change_once(ws, ctx, id, change.clone(), precondition.clone())
        )
    }

    async fn change_once(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        id: &ProfileId,
        change: Change,
        precondition: Option<Precondition>,
    ) -> Result<Profile> {
        let mut write_rules = self.write_rules(ws).await?;
        let mut tx = self.store.begin().await?;
        let mut profile = self.locked(&mut *tx, ws, id, precondition.as_ref()).await?;
        let (properties, set_once_filled) = edited(&change, &profile.properties)?;
        let (company, location, device) = (
            profile.company.clone(),
            profile.location.clone(),
            profile.device.clone(),
        );
        self.save(
            &mut *tx,
            ws,
            ctx,
            &mut profile,
            Edit {
                operation: Operation::Update,
                properties,
                new_identities: Vec::new(),
                set_once_filled,
                company,
                location,
                device,
            },
            &mut write_rules,
        )
        .await?;
        write_rules.write(&mut *tx, ws).await?;
        self.commit(tx).await?;
        Ok(profile)
    }

    /// Attaches identities to a profile. Identities it already carries are left as they are.
    pub async fn add_identities(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        id: &ProfileId,
        identities: Vec<Identity>,
        precondition: Option<Precondition>,
    ) -> Result<Profile> {
        with_retries!(
            Retry::OnContention,
            self.add_identities_once(ws, ctx, id, identities.clone(), precondition.clone())
        )
    }

    async fn add_identities_once(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        id: &ProfileId,
        identities: Vec<Identity>,
        precondition: Option<Precondition>,
    ) -> Result<Profile> {
        let mut write_rules = self.write_rules(ws).await?;
        let mut tx = self.store.begin().await?;
        let mut profile = self.locked(&mut *tx, ws, id, precondition.as_ref()).await?;
        let mut new_identities = Vec::new();
        for identity in identities {
            if !profile.identities.contains(&identity) && !new_identities.contains(&identity) {
                new_identities.push(identity);
            }
        }
        let properties = profile.properties.clone();
        let (company, location, device) = (
            profile.company.clone(),
            profile.location.clone(),
            profile.device.clone(),
        );
        self.save(
            &mut *tx,
            ws,
            ctx,
            &mut profile,
            Edit {
                operation: Operation::AddIdentities,
                properties,
                new_identities,
                set_once_filled: Vec::new(),
                company,
                location,
                device,
            },
            &mut write_rules,
        )
        .await?;
        write_rules.write(&mut *tx, ws).await?;
        self.commit(tx).await?;
        Ok(profile)
    }

    /// Detaches one identity from a profile.
    pub async fn remove_identity(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        id: &ProfileId,
        identity: &Identity,
        precondition: Option<Precondition>,
    ) -> Result<Profile> {
        with_retries!(
            Retry::OnContention,
            self.remove_identity_once(ws, ctx, id, identity, precondition.clone())
        )
    }

    async fn remove_identity_once(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        id: &ProfileId,
        identity: &Identity,
        precondition: Option<Precondition>,
    ) -> Result<Profile> {
        let mut write_rules = self.write_rules(ws).await?;
        let mut tx = self.store.begin().await?;
        let mut profile = self.locked(&mut *tx, ws, id, precondition.as_ref()).await?;
        let id = &profile.id.clone();
        if !tx.delete_identity(ws, id, identity).await? {
            return Err(ServiceError::NotFound(format!(
                "identity {identity} on profile `{id}`"
            )));
        }
        let before = profile.clone();
        profile.identities.retain(|i| i != identity);
        profile.touch(now());
        let at = profile.updated_at;
        write_rules.place(&mut profile, ctx, at);
        tx.update_profile(ws, &profile).await?;
        let entry = ctx.entry(
            id,
            profile.updated_at,
            Operation::RemoveIdentity,
            diff(Some(&before), &profile),
        );
        tx.append_change(ws, &entry).await?;
        write_rules.write(&mut *tx, ws).await?;
        self.commit(tx).await?;
        Ok(profile)
    }

    /// Resets a profile (see [`Profile::clear`]); the profile and its identities stay.
    pub async fn clear(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        id: &ProfileId,
        precondition: Option<Precondition>,
    ) -> Result<Profile> {
        with_retries!(
            Retry::OnContention,
            self.clear_once(ws, ctx, id, precondition.clone())
        )
    }

    async fn clear_once(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        id: &ProfileId,
        precondition: Option<Precondition>,
    ) -> Result<Profile> {
        let mut write_rules = self.write_rules(ws).await?;
        let mut tx = self.store.begin().await?;
        let mut profile = self.locked(&mut *tx, ws, id, precondition.as_ref()).await?;
        let before = profile.clone();
        let now = now();
        profile.clear(now, rand::rng().random_range(0.0..100.0));
        write_rules.place(&mut profile, ctx, now);
        tx.update_profile(ws, &profile).await?;
        tx.delete_events(ws, &profile.id).await?;
        tx.append_change(
            ws,
            &ctx.entry(
                &profile.id,
                now,
                Operation::Clear,
                diff(Some(&before), &profile),
            ),
        )
        .await?;
        write_rules.write(&mut *tx, ws).await?;
        self.commit(tx).await?;
        Ok(profile)
    }

    pub(super) async fn locked(
        &self,
        tx: &mut dyn ProfileTx,
        ws: WorkspaceId,
        id: &ProfileId,
        precondition: Option<&Precondition>,
    ) -> Result<Profile> {
        let profile = match tx.profile(ws, id).await? {
            Some(profile) => profile,
            // An absorbed id writes to its survivor.
            None => match tx.survivor_of(ws, id).await? {
                Some(survivor) => tx
                    .profile(ws, &survivor)
                    .await?
                    .ok_or_else(|| not_found(id))?,
                None => return Err(not_found(id)),
            },
        };
        if let Some(precondition) = precondition {
            precondition.check(&profile)?;
        }
        Ok(profile)
    }

    /// Writes new properties and identities if they change anything. A write that changes
    /// nothing keeps the version, so a repeated request is idempotent.
    async fn save(
        &self,
        tx: &mut dyn ProfileTx,
        ws: WorkspaceId,
        ctx: &WriteContext,
        profile: &mut Profile,
        edit: Edit,
        write_rules: &mut WriteRules,
    ) -> Result<()> {
        let Edit {
            operation,
            properties,
            new_identities,
            set_once_filled,
            company,
            location,
            device,
        } = edit;
        if properties == profile.properties
            && new_identities.is_empty()
            && company == profile.company
            && location == profile.location
            && device == profile.device
        {
            return Ok(());
        }
        let before = profile.clone();
        let now = now();
        profile.edit(properties, set_once_filled, &new_identities);
        profile.company = company;
        profile.location = location;
        profile.device = device;
        self.check(profile)?;
        if profile.properties != before.properties {
            write_rules.validate(profile)?;
        }
        for identity in &new_identities {
            tx.insert_identity(ws, &profile.id, identity, now).await?;
        }
        profile.touch(now);
        write_rules.place(profile, ctx, now);
        tx.update_profile(ws, profile).await?;
        tx.append_change(
            ws,
            &ctx.entry(&profile.id, now, operation, diff(Some(&before), profile)),
        )
        .await?;
        Ok(())
    }

    /// The limits every stored profile respects.
    pub(super) fn check(&self, profile: &Profile) -> Result<()> {
        self.limits
            .check_properties(&profile.properties, "/properties")?;
        if profile.identities.len() > self.limits.max_identities {
            return Err(ServiceError::Invalid(vec![Violation::new(
                "/identities",
                format!(
                    "a profile carries at most {} identities",
                    self.limits.max_identities
                ),
            )]));
        }
        Ok(())
    }
}

/// An upsert that would give a known user a second, different `user_id` joins two known users:
/// like merging them, it is refused.
pub(super) fn refuse_second_user_id(profile: &Profile, identities: &[Identity]) -> Result<()> {
    let user_id = |i: &&Identity| i.kind.as_str() == profiled_core::IdentityKind::USER_ID;
    if let Some(mine) = profile.identities.iter().find(user_id)
        && let Some(theirs) = identities.iter().filter(user_id).find(|i| *i != mine)
    {
        return Err(ServiceError::Conflict(format!(
            "profile `{}` belongs to {mine}; {theirs} is a different known user, and known users are never joined",
            profile.id
        )));
    }
    Ok(())
}

pub(super) fn new_profile_id() -> ProfileId {
    ProfileId(uuid::Uuid::now_v7().to_string())
}
