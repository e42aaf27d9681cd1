//! What every write of a workspace obeys besides the limits: its profile schema and its
//! segments. Each write transaction takes the workspace's [`WriteRules`] once; before a
//! profile is written, the rules validate it (when its properties changed) and decide its
//! segments, and the segment moves are written just before the commit.
//!
//! The parsed rules are cached per workspace for [`SegmentSettings::cache_ttl`]: a change
//! made through this node applies at once, one made through another node within that time.
//!
//! [`SegmentSettings::cache_ttl`]: super::SegmentSettings::cache_ttl

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use jiff::Timestamp;
use profiled_core::change::{KeyChange, NewChange, Operation};
use profiled_core::segment::{SegmentRule, place};
use profiled_core::{Profile, WorkspaceId};
use profiled_store::{ProfileTx, SegmentMove};
use serde_json::Value;

use super::profiles::WriteContext;
use super::schema::ProfileSchema;
use super::segments::rule_of;
use super::{Result, Service, ServiceError};

/// A workspace's parsed rules.
#[derive(Default)]
pub(super) struct WorkspaceRules {
    segments: Vec<SegmentRule>,
    schema: Option<ProfileSchema>,
}

/// The rules of each workspace and when they were read.
#[derive(Default)]
pub(super) struct RulesCache {
    entries: RwLock<HashMap<WorkspaceId, (Arc<WorkspaceRules>, Instant)>>,
}

impl RulesCache {
    fn get(&self, ws: WorkspaceId, ttl: std::time::Duration) -> Option<Arc<WorkspaceRules>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&ws)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(rules, _)| rules.clone())
    }

    fn put(&self, ws: WorkspaceId, rules: Arc<WorkspaceRules>) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ws, (rules, Instant::now()));
    }

    /// Drops a workspace's rules, after a change to them.
    pub(super) fn forget(&self, ws: WorkspaceId) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ws);
    }
}

/// The rules of one write transaction, and the segment moves it has decided so far.
pub(super) struct WriteRules {
    rules: Arc<WorkspaceRules>,
    moves: Vec<SegmentMove>,
    changes: Vec<NewChange>,
}

impl WriteRules {
    /// Rules that only place profiles in these segments (reconciliation).
    pub(super) fn placing(segments: Vec<SegmentRule>) -> Self {
        Self {
            rules: Arc::new(WorkspaceRules {
                segments,
                schema: None,
            }),
            moves: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// Checks the profile's properties against the workspace's schema and required
    /// fields; every violation is listed, and nothing may be written.
    pub(super) fn validate(&self, profile: &Profile) -> Result<()> {
        match &self.rules.schema {
            Some(schema) => {
                let violations = schema.violations(&profile.properties);
                if violations.is_empty() {
                    Ok(())
                } else {
                    Err(ServiceError::Invalid(violations))
                }
            }
            None => Ok(()),
        }
    }

    /// Decides the profile's segments as it is about to be written, and remembers what moved.
    pub(super) fn place(&mut self, profile: &mut Profile, ctx: &WriteContext, at: Timestamp) {
        if self.rules.segments.is_empty() {
            return;
        }
        let moves = place(&self.rules.segments, profile, at);
        if moves.is_empty() {
            return;
        }
        let entered = moves.entered.iter().map(|key| KeyChange {
            key: format!("segments.{key}"),
            before: None,
            after: Some(Value::Bool(true)),
        });
        let left = moves.left.iter().map(|key| KeyChange {
            key: format!("segments.{key}"),
            before: Some(Value::Bool(true)),
            after: None,
        });
        self.changes.push(ctx.entry(
            &profile.id,
            at,
            Operation::Segments,
            entered.chain(left).collect(),
        ));
        self.moves.push(SegmentMove {
            profile_id: profile.id.clone(),
            moves,
            at,
        });
    }

    /// How many profiles moved.
    pub(super) fn moved(&self) -> usize {
        self.moves.len()
    }

    /// Writes the memberships and their change log entries.
    pub(super) async fn write(self, tx: &mut dyn ProfileTx, ws: WorkspaceId) -> Result<()> {
        if self.moves.is_empty() {
            return Ok(());
        }
        tx.move_segments(ws, &self.moves).await?;
        tx.append_changes(ws, &self.changes).await?;
        Ok(())
    }
}

impl Service {
    /// The rules a write of this workspace obeys.
    pub(super) async fn write_rules(&self, ws: WorkspaceId) -> Result<WriteRules> {
        let rules = match self.rules_cache.get(ws, self.segments.cache_ttl) {
            Some(rules) => rules,
            None => {
                let rules = Arc::new(self.load_rules(ws).await?);
                self.rules_cache.put(ws, rules.clone());
                rules
            }
        };
        Ok(WriteRules {
            rules,
            moves: Vec::new(),
            changes: Vec::new(),
        })
    }

    async fn load_rules(&self, ws: WorkspaceId) -> Result<WorkspaceRules> {
        let segments = self
            .store
            .segments(ws)
            .await?
            .iter()
            .filter_map(|record| match rule_of(record) {
                Ok(rule) => Some(rule),
                Err(err) => {
                    tracing::error!(error = %err, "a segment is skipped");
                    None
                }
            })
            .collect();
        let schema = self.stored_schema(ws).await?.map(|(schema, _)| schema);
        Ok(WorkspaceRules { segments, schema })
    }
}
