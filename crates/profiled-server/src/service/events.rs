//! Events: each one upserts its profile (creating it when no profile carries its identities),
//! updates what the profile's events add up to (`computed`), fills `location` and `device`
//! from the newest event's context, and is kept for the retention period.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use jiff::Timestamp;
use profiled_core::activity::{ActivityRules, Event};
use profiled_core::change::{NewChange, Operation, diff};
use profiled_core::{Identity, Profile, ProfileId, Violation, WorkspaceId};
use profiled_store::{ProfileTx, StoredEvent};
use rand::Rng;
use serde_json::{Map, Value};

use super::profiles::{new_profile_id, now, refuse_second_user_id};
use super::rules::WriteRules;
use super::{Result, Retry, Service, ServiceError, WriteContext, with_retries};

/// The most events in one batch.
pub const MAX_BATCH: usize = 1000;
/// The longest event name.
pub const MAX_NAME_LEN: usize = 200;
/// The longest client-given event id.
pub const MAX_ID_LEN: usize = 128;
/// How far ahead of the server's clock an event may be (clients' clocks drift).
const MAX_AHEAD: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// An event as a client sends it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The client's id for it: an event sent twice with one id counts once.
    pub id: Option<String>,
    pub identities: Vec<Identity>,
    pub name: String,
    /// When it happened; now when absent.
    pub at: Option<Timestamp>,
    pub properties: Map<String, Value>,
    /// `ip` and `user_agent` are read for enrichment; everything is kept with the event.
    pub context: Map<String, Value>,
    /// Device values the client read itself (a mobile SDK's model, OS, ...); they win over
    /// what the user agent says.
    pub device: Map<String, Value>,
}

/// A batch of events, and the address of the request that sent it, used for locations
/// when an event's context carries no `ip` and the caller asked for it.
#[derive(Debug, Clone, Default)]
pub struct EventBatch {
    pub events: Vec<NewEvent>,
    pub request_ip: Option<IpAddr>,
}

/// What a batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// Events kept (new ids).
    pub accepted: usize,
    /// Events whose id the workspace already had: skipped.
    pub duplicates: usize,
    /// The profile of each event, in the batch's order.
    pub profiles: Vec<ProfileId>,
}

/// A profile as the batch found it and as the batch leaves it.
struct Working {
    /// As last written: `None` for a profile this batch created.
    logged: Option<Profile>,
    current: Profile,
}

/// The profiles a batch has touched so far.
struct Touched {
    working: HashMap<ProfileId, Working>,
    /// In the order the batch first touched them (so writes are deterministic).
    order: Vec<ProfileId>,
    /// Profiles merged away during the batch, and where they went.
    absorbed: HashMap<ProfileId, ProfileId>,
    /// The segments they entered and left.
    write_rules: WriteRules,
}

impl Touched {
    fn new(write_rules: WriteRules) -> Self {
        Self {
            working: HashMap::new(),
            order: Vec::new(),
            absorbed: HashMap::new(),
            write_rules,
        }
    }

    /// Where a profile the batch touched lives now (itself, unless a later event merged it).
    fn survivor(&self, id: &ProfileId) -> ProfileId {
        let mut id = id;
        while let Some(next) = self.absorbed.get(id) {
            id = next;
        }
        id.clone()
    }

    fn add(&mut self, id: ProfileId, entry: Working) {
        if !self.order.contains(&id) {
            self.order.push(id.clone());
        }
        self.working.insert(id, entry);
    }
}

impl Service {
    /// Takes a batch of events in one transaction: all of it applies, or none.
    pub async fn ingest_events(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        batch: &EventBatch,
    ) -> Result<Ingested> {
        self.check_events(batch)?;
        let rules = self.activity_rules(ws).await?;
        with_retries!(
            Retry::AlsoWhenIdentityTaken,
            self.ingest_once(ws, ctx, batch, &rules)
        )
    }

    fn check_events(&self, batch: &EventBatch) -> Result<()> {
        let mut violations = Vec::new();
        if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
            violations.push(Violation::new(
                "/events",
                format!("a batch has 1 to {MAX_BATCH} events"),
            ));
        }
        let latest = Timestamp::now() + MAX_AHEAD;
        for (i, event) in batch.events.iter().enumerate() {
            let at = |field: &str| format!("/events/{i}/{field}");
            if event.identities.is_empty() {
                violations.push(Violation::new(
                    at("identities"),
                    "name at least one identity, e.g. {\"anonymous_id\": \"a1\"}",
                ));
            }
            if event.name.is_empty() || event.name.chars().count() > MAX_NAME_LEN {
                violations.push(Violation::new(
                    at("name"),
                    format!("an event name has 1 to {MAX_NAME_LEN} characters"),
                ));
            }
            if event
                .id
                .as_ref()
                .is_some_and(|id| id.is_empty() || id.len() > MAX_ID_LEN)
            {
                violations.push(Violation::new(
                    at("id"),
                    format!("an event id has 1 to {MAX_ID_LEN} bytes"),
                ));
            }
            if event.at.is_some_and(|t| t > latest) {
                violations.push(Violation::new(
                    at("timestamp"),
                    "the timestamp is more than a day ahead of the server's clock",
                ));
            }
            for (document, name) in [
                (&event.properties, "properties"),
                (&event.context, "context"),
                (&event.device, "device"),
            ] {
                if let Err(profiled_core::DomainError::Invalid(v)) =
                    self.limits.check_properties(document, &at(name))
                {
                    violations.extend(v);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(violations))
        }
    }

    async fn ingest_once(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        batch: &EventBatch,
        rules: &ActivityRules,
    ) -> Result<Ingested> {
        let write_rules = self.write_rules(ws).await?;
        let mut tx = self.store.begin().await?;
        let now = now();
        let given: Vec<String> = batch.events.iter().filter_map(|e| e.id.clone()).collect();
        let mut seen: HashSet<String> = tx.known_event_ids(ws, &given).await?.into_iter().collect();
        let mut touched = Touched::new(write_rules);
        let mut kept: Vec<StoredEvent> = Vec::new();
        let mut outcome = Ingested {
            accepted: 0,
            duplicates: 0,
            profiles: Vec::with_capacity(batch.events.len()),
        };
        for new in &batch.events {
            let id = new
                .id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            let profile_id = self
                .event_profile(&mut *tx, ws, ctx, rules, &new.identities, &mut touched)
                .await?;
            outcome.profiles.push(profile_id.clone());
            if !seen.insert(id.clone()) {
                outcome.duplicates += 1;
                continue;
            }
            let event = Event {
                name: new.name.clone(),
                at: new.at.map_or(now, profiled_core::profile::to_micros),
                properties: new.properties.clone(),
            };
            let profile = &mut touched
                .working
                .get_mut(&profile_id)
                .expect("resolved")
                .current;
            let newest = profile.activity.last_seen_at.is_none_or(|t| event.at >= t);
            profile.activity.record(&event, rules);
            if newest {
                self.enrich(profile, new, batch.request_ip);
            }
            kept.push(StoredEvent {
                id,
                profile_id,
                name: event.name,
                at: event.at,
                received_at: now,
                properties: event.properties,
                context: new.context.clone(),
            });
            outcome.accepted += 1;
        }
        // An event whose profile a later event merged away belongs to the survivor.
        for event in &mut kept {
            event.profile_id = touched.survivor(&event.profile_id);
        }
        for profile in &mut outcome.profiles {
            *profile = touched.survivor(profile);
        }
        let windowed: Vec<_> = rules
            .definitions
            .iter()
            .filter(|d| d.window.is_some())
            .collect();
        let longest = windowed.iter().filter_map(|d| d.window).max();
        let mut changed = Vec::new();
        let mut changes = Vec::new();
        for id in &touched.order {
            let Some(entry) = touched.working.get_mut(id) else {
                continue; // absorbed by a later merge in this batch
            };
            let profile = &mut entry.current;
            profile
                .activity
                .write_computed(&mut profile.computed, rules);
            let fresh = || kept.iter().filter(|e| &e.profile_id == id);
            if let Some(longest) = longest
                && windowed.iter().any(|d| fresh().any(|e| d.matches(&e.name)))
            {
                let mut events: Vec<Event> = tx
                    .events_since(ws, id, now - longest)
                    .await?
                    .iter()
                    .map(StoredEvent::to_event)
                    .collect();
                events.extend(fresh().map(StoredEvent::to_event));
                for definition in &windowed {
                    profile
                        .computed
                        .insert(definition.key.clone(), definition.over_window(&events, now));
                }
            }
            if let Some(change) = event_change(ctx, entry, now) {
                touched.write_rules.place(&mut entry.current, ctx, now);
                changed.push(entry.current.clone());
                changes.push(change);
            }
        }
        // One statement each for the rows and the log entries of the whole batch.
        tx.update_profiles(ws, &changed).await?;
        tx.append_changes(ws, &changes).await?;
        tx.insert_events(ws, &kept).await?;
        touched.write_rules.write(&mut *tx, ws).await?;
        self.commit(tx).await?;
        Ok(outcome)
    }

    /// The profile an event's identities lead to, as this batch has it so far: created
    /// (and inserted, so later lookups find it) when none carries them, merged when several do.
    async fn event_profile(
        &self,
        tx: &mut dyn ProfileTx,
        ws: WorkspaceId,
        ctx: &WriteContext,
        rules: &ActivityRules,
        identities: &[Identity],
        touched: &mut Touched,
    ) -> Result<ProfileId> {
        let mut owners = tx.profiles_by_identities(ws, identities).await?;
        for owner in &mut owners {
            if let Some(entry) = touched.working.get(&owner.id) {
                *owner = entry.current.clone();
            }
        }
        let mut profile = match owners.len() {
            0 => {
                let mut profile = Profile::new(
                    new_profile_id(),
                    now(),
                    rand::rng().random_range(0.0..100.0),
                );
                profile.attach(identities.iter().cloned());
                self.check(&profile)?;
                tx.insert_profile(ws, &profile).await?;
                touched.add(
                    profile.id.clone(),
                    Working {
                        logged: None,
                        current: profile.clone(),
                    },
                );
                return Ok(profile.id);
            }
            1 => owners.pop().expect("one owner"),
            _ => {
                let mut plan = self.plan_merge(owners, rules, &touched.write_rules)?;
                self.record_merge(tx, ws, ctx, &mut plan, &mut touched.write_rules)
                    .await?;
                let survivor = plan.merged.survivor;
                for absorbed in &plan.merged.absorbed {
                    touched.working.remove(&absorbed.id);
                    touched
                        .absorbed
                        .insert(absorbed.id.clone(), survivor.id.clone());
                }
                // The merge wrote and logged the survivor as it is now.
                let created_here = touched
                    .working
                    .get(&survivor.id)
                    .is_some_and(|entry| entry.logged.is_none());
                touched.add(
                    survivor.id.clone(),
                    Working {
                        logged: (!created_here).then(|| survivor.clone()),
                        current: survivor.clone(),
                    },
                );
                survivor
            }
        };
        let before_attach = profile.clone();
        refuse_second_user_id(&profile, identities)?;
        let missing = profile.missing_identities(identities);
        for identity in &missing {
            tx.insert_identity(ws, &profile.id, identity, now()).await?;
        }
        profile.attach(missing);
        self.check(&profile)?;
        let id = profile.id.clone();
        match touched.working.get_mut(&id) {
            Some(entry) => entry.current = profile,
            None => touched.add(
                id.clone(),
                Working {
                    logged: Some(before_attach),
                    current: profile,
                },
            ),
        }
        Ok(id)
    }

    /// Fills location and device from an event's context (the newest event's wins).
    fn enrich(&self, profile: &mut Profile, event: &NewEvent, request_ip: Option<IpAddr>) {
        let ip = event
            .context
            .get("ip")
            .and_then(Value::as_str)
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .or(request_ip);
        if let Some(location) = ip.and_then(|ip| self.enricher.location(ip)) {
            profile.location = location;
        }
        let user_agent = event.context.get("user_agent").and_then(Value::as_str);
        if user_agent.is_some() || !event.device.is_empty() {
            let mut device = user_agent
                .map(|ua| self.enricher.device(ua))
                .unwrap_or_default();
            device.extend(event.device.clone());
            profile.device = device;
        }
    }
}

/// What a batch did to one profile, as a change log entry (with the profile touched), or
/// `None` when it changed nothing.
fn event_change(ctx: &WriteContext, entry: &mut Working, now: Timestamp) -> Option<NewChange> {
    let profile = &mut entry.current;
    match &entry.logged {
        None => {
            profile.updated_at = now;
            Some(ctx.entry(&profile.id, now, Operation::Create, diff(None, profile)))
        }
        Some(before) if before != &*profile => {
            profile.touch(now);
            Some(ctx.entry(
                &profile.id,
                now,
                Operation::Events,
                diff(Some(before), profile),
            ))
        }
        Some(_) => None,
    }
}

impl Service {
    /// A profile's kept events, newest first (an absorbed id reads its survivor's).
    pub async fn profile_events(
        &self,
        ws: WorkspaceId,
        id: &ProfileId,
        before: Option<(Timestamp, &str)>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let profile = self.profile(ws, id).await?;
        Ok(self.store.events(ws, &profile.id, before, limit).await?)
    }

    /// Deletes events older than the retention, in every workspace.
    pub async fn prune_events(&self) -> Result<u64> {
        let before = Timestamp::now() - self.events.retention;
        Ok(self.store.prune_events(before).await?)
    }
}
