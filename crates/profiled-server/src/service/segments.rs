//! Segments: definitions, the membership every write keeps current, and the background
//! reconciliation that backfills a new or changed segment without blocking the API.
//!
//! Every write path asks for [`Placements`] and places each profile it writes; entering
//! and leaving are written in the same transaction, with their change log entries. A
//! segment created or redefined is reconciled in the background: the profiles whose
//! stored membership disagrees with the filter are found with the filter's SQL, then
//! re-decided one page per transaction. Nodes take a lease on a segment while they
//! reconcile it, so several nodes share the work without doing it twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use profiled_core::filter::{CompareOp, Field, Filter, Literal};
use profiled_core::segment::SegmentRule;
use profiled_core::{DomainError, Violation, WorkspaceId};
use profiled_store::{SearchQuery, SegmentMember, SegmentRecord};
use serde_json::Value;

use super::profiles::{WriteContext, now};
use super::rules::WriteRules;
use super::{Result, Retry, Service, ServiceError, with_retries};

/// How segments are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSettings {
    /// How long a node writes with the list of segments it last read. A segment created on
    /// another node is reconciled only after this has passed twice, so writes made with the
    /// old list are settled too.
    pub cache_ttl: Duration,
    /// How often a segment whose filter compares with `now` is re-reconciled, since time
    /// alone moves profiles in and out of it.
    pub refresh: Duration,
    /// How often the background worker looks for work.
    pub poll: Duration,
}

impl Default for SegmentSettings {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(1),
            refresh: Duration::from_secs(15 * 60),
            poll: Duration::from_millis(500),
        }
    }
}

/// Segments a workspace may define: each is evaluated on every write.
pub const MAX_SEGMENTS: usize = 256;
/// Profiles re-decided per transaction while reconciling.
const RECONCILE_PAGE: u32 = 500;
/// How long a node holds a segment it reconciles before another may take it over.
const LEASE: SignedDuration = SignedDuration::from_secs(60);
/// The actor of change log entries that reconciliation writes.
const RECONCILER: &str = "system:segments";

/// A segment as clients write it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    /// A label for people; the key names the segment everywhere else.
    #[schema(example = "Paying users")]
    pub name: String,
    /// The members' filter, in string or JSON form (the search language); it cannot name
    /// `segments`.
    #[schema(value_type = Object, example = "properties.plan = \"pro\"")]
    pub filter: Value,
}

/// A stored segment and where its membership stands.
#[derive(Debug, Clone)]
pub struct SegmentState {
    pub record: SegmentRecord,
    /// The member count, when asked for.
    pub members: Option<u64>,
}

impl SegmentState {
    /// `ready` when the members match the current filter; `backfilling` while they are
    /// being brought up to it.
    pub fn status(&self) -> &'static str {
        if self.record.reconciled_version >= self.record.version {
            "ready"
        } else {
            "backfilling"
        }
    }
}

/// The filter of a segment, as stored.
pub(super) fn rule_of(record: &SegmentRecord) -> Result<SegmentRule> {
    let filter = parse_filter(&record.filter).map_err(|_| {
        ServiceError::Store(profiled_store::StoreError::Corrupt(format!(
            "segment `{}` has a filter that no longer parses",
            record.key
        )))
    })?;
    Ok(SegmentRule::new(&record.key, filter)?)
}

/// A filter in string or JSON form, as segments and search take it.
pub(super) fn parse_filter(value: &Value) -> Result<Filter, DomainError> {
    let parsed = match value {
        Value::String(text) => Filter::parse(text),
        Value::Object(_) => Filter::from_json(value),
        _ => {
            return Err(DomainError::invalid(
                "/filter",
                "a filter is a string or a JSON object",
            ));
        }
    };
    parsed.map_err(|e| DomainError::Invalid(vec![Violation::new("/filter", e.to_string())]))
}

/// `segments = key`, the membership a segment's stored rows say.
fn member_of(key: &str) -> Filter {
    Filter::Compare {
        field: Field::Segments,
        op: CompareOp::Eq,
        value: Literal::String(key.to_owned()),
    }
}

impl Service {
    /// The workspace's segments, by key.
    pub async fn segments(&self, ws: WorkspaceId) -> Result<Vec<SegmentState>> {
        Ok(self
            .store
            .segments(ws)
            .await?
            .into_iter()
            .map(|record| SegmentState {
                record,
                members: None,
            })
            .collect())
    }

    /// One segment, with its member count.
    pub async fn segment(&self, ws: WorkspaceId, key: &str) -> Result<SegmentState> {
        let record = self.segment_record(ws, key).await?;
        let members = self.store.segment_size(ws, key).await?;
        Ok(SegmentState {
            record,
            members: Some(members),
        })
    }

    async fn segment_record(&self, ws: WorkspaceId, key: &str) -> Result<SegmentRecord> {
        self.store
            .segments(ws)
            .await?
            .into_iter()
            .find(|s| s.key == key)
            .ok_or_else(|| ServiceError::NotFound(format!("segment `{key}`")))
    }

    /// Creates a segment or changes its name or filter; a new filter is backfilled in the
    /// background (the segment says `backfilling` until it is done). Returns the segment
    /// and whether it was created.
    pub async fn define_segment(
        &self,
        ws: WorkspaceId,
        key: &str,
        body: &SegmentBody,
    ) -> Result<(SegmentState, bool)> {
        let filter = parse_filter(&body.filter)?;
        let rule = SegmentRule::new(key, filter)?;
        let name = body.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ServiceError::Invalid(vec![Violation::new(
                "/name",
                "a name is 1 to 200 characters",
            )]));
        }
        let existing = self.store.segments(ws).await?;
        let current = existing.iter().find(|s| s.key == key);
        if current.is_none() && existing.len() >= MAX_SEGMENTS {
            return Err(ServiceError::Invalid(vec![Violation::new(
                "/key",
                format!("a workspace has at most {MAX_SEGMENTS} segments"),
            )]));
        }
        let now = now();
        let record = SegmentRecord {
            key: key.to_owned(),
            name: name.to_owned(),
            filter: body.filter.clone(),
            created_at: current.map_or(now, |s| s.created_at),
            updated_at: now,
            version: match current {
                Some(s) if s.filter == body.filter => s.version,
                Some(s) => s.version + 1,
                None => 1,
            },
            reconciled_version: current.map_or(0, |s| s.reconciled_version),
            reconciled_at: current.and_then(|s| s.reconciled_at),
            moves_with_clock: rule.filter.depends_on_now(),
        };
        self.store.save_segment(ws, &record).await?;
        self.rules_cache.forget(ws);
        Ok((
            SegmentState {
                record,
                members: None,
            },
            current.is_none(),
        ))
    }

    /// Deletes a segment and its memberships.
    pub async fn delete_segment(&self, ws: WorkspaceId, key: &str) -> Result<()> {
        let deleted = self.store.delete_segment(ws, key, now()).await?;
        self.rules_cache.forget(ws);
        if deleted {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("segment `{key}`")))
        }
    }

    /// A segment's members in profile id order, after the id `after`.
    pub async fn segment_members(
        &self,
        ws: WorkspaceId,
        key: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SegmentMember>> {
        self.segment_record(ws, key).await?;
        Ok(self.store.segment_members(ws, key, after, limit).await?)
    }

    /// One round of background segment work: reconciles every due segment this node can
    /// lease. Returns how many it reconciled.
    pub async fn reconcile_segments(&self) -> Result<usize> {
        let now = Timestamp::now();
        let settle = SignedDuration::try_from(self.segments.cache_ttl * 2).unwrap_or(LEASE);
        let refresh =
            SignedDuration::try_from(self.segments.refresh).unwrap_or(SignedDuration::MAX);
        let due = self
            .store
            .segments_due(
                now,
                now.checked_sub(settle).unwrap_or(now),
                now.checked_sub(refresh).unwrap_or(Timestamp::MIN),
            )
            .await?;
        let mut done = 0;
        for (ws, record) in due {
            let leased = self
                .store
                .lease_segment(ws, &record.key, now, now.checked_add(LEASE).unwrap_or(now))
                .await?;
            if !leased {
                continue;
            }
            match self.reconcile(ws, &record).await {
                Ok(()) => done += 1,
                // The lease runs out and the segment is tried again.
                Err(err) => {
                    tracing::error!(error = %err, segment = %record.key, "reconciling a segment failed")
                }
            }
        }
        Ok(done)
    }

    /// Deletes memberships of deleted segments that nodes with an outdated list of segments
    /// wrote; forgets deletions older than a few minutes (no node is that far behind).
    pub async fn sweep_segment_members(&self) -> Result<u64> {
        let before = Timestamp::now() - SignedDuration::from_mins(5);
        Ok(self.store.sweep_segment_members(before).await?)
    }

    /// Brings a segment's stored members in line with its filter: profiles that match and
    /// are not members, then members that no longer match.
    async fn reconcile(&self, ws: WorkspaceId, record: &SegmentRecord) -> Result<()> {
        let started = now();
        let rule = rule_of(record)?;
        let member = member_of(&rule.key);
        let missing = Filter::And(vec![
            rule.filter.clone(),
            Filter::Not(Box::new(member.clone())),
        ]);
        let extra = Filter::And(vec![member, Filter::Not(Box::new(rule.filter.clone()))]);
        let mut entered = 0usize;
        let mut left = 0usize;
        for (candidates, count) in [(missing, &mut entered), (extra, &mut left)] {
            let mut query = SearchQuery {
                filter: candidates,
                now: started,
                sort: Vec::new(),
                after: None,
                limit: RECONCILE_PAGE,
            };
            loop {
                let page = self.store.search(ws, &query).await?;
                let ids: Vec<_> = page.profiles.into_iter().map(|p| p.id).collect();
                *count += with_retries!(Retry::OnContention, self.reconcile_page(ws, &rule, &ids))?;
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
                let now = Timestamp::now();
                self.store
                    .lease_segment(ws, &rule.key, now, now.checked_add(LEASE).unwrap_or(now))
                    .await?;
            }
        }
        self.store
            .segment_reconciled(ws, &rule.key, record.version, started)
            .await?;
        if entered + left > 0 {
            tracing::info!(segment = %rule.key, entered, left, "reconciled a segment");
        }
        Ok(())
    }

    /// Re-decides a page of profiles' membership of one segment in one transaction; returns
    /// how many moved. Each profile is read again inside the transaction, so a concurrent
    /// write is never overruled with an older view of the profile.
    async fn reconcile_page(
        &self,
        ws: WorkspaceId,
        rule: &SegmentRule,
        ids: &[profiled_core::ProfileId],
    ) -> Result<usize> {
        let mut tx = self.store.begin().await?;
        let mut write_rules = WriteRules::placing(vec![rule.clone()]);
        let ctx = WriteContext {
            actor: RECONCILER.into(),
            origin: None,
        };
        let at = now();
        for id in ids {
            if let Some(mut profile) = tx.profile(ws, id).await? {
                write_rules.place(&mut profile, &ctx, at);
            }
        }
        let moved = write_rules.moved();
        write_rules.write(&mut *tx, ws).await?;
        self.commit(tx).await?;
        Ok(moved)
    }
}

/// Keeps segments reconciled for as long as it runs: looks for due segments every
/// [`SegmentSettings::poll`], and sweeps memberships of deleted segments every minute.
/// Every node runs one; leases keep them from doing the same work.
pub async fn run_segment_worker(service: Arc<Service>) {
    let mut poll = tokio::time::interval(service.segments.poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sweep = Instant::now();
    loop {
        poll.tick().await;
        if let Err(err) = service.reconcile_segments().await {
            tracing::error!(error = %err, "looking for segments to reconcile failed");
        }
        if last_sweep.elapsed() >= Duration::from_secs(60) {
            last_sweep = Instant::now();
            match service.sweep_segment_members().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(memberships = n, "swept memberships of deleted segments"),
                Err(err) => tracing::error!(error = %err, "sweeping segment memberships failed"),
            }
        }
    }
}
