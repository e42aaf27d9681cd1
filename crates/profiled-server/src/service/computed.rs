//! Computed properties a workspace defines over its events, and the rules that turn events
//! into computed values.

use jiff::SignedDuration;
use profiled_core::activity::ActivityRules;
use profiled_core::aggregate::{Aggregate, ComputedDefinition, format_window, parse_window};
use profiled_core::path::PropertyPath;
use profiled_core::{DomainError, WorkspaceId};
use profiled_store::ComputedRecord;
use serde::{Deserialize, Serialize};

use super::{Result, Service, ServiceError};

/// How events are handled: sessions, retention, batch size.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSettings {
    /// The inactivity after which the next event starts a new session.
    pub session_gap: SignedDuration,
    /// How long raw events are kept; windows of computed properties are at most this long.
    pub retention: SignedDuration,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            session_gap: SignedDuration::from_mins(90),
            retention: SignedDuration::from_hours(24 * 30),
        }
    }
}

/// A computed property definition as clients write and read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefinitionBody {
    /// The event name it aggregates; every event when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "purchase")]
    pub event: Option<String>,
    pub aggregate: Aggregate,
    /// The event property it reads (`amount`, `cart.total`); required except for `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "amount")]
    pub property: Option<String>,
    /// Only events this recent: `30m`, `24h`, `7d`; at most the event retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "7d")]
    pub window: Option<String>,
}

impl DefinitionBody {
    /// The definition of `computed.<key>`, validated.
    pub fn definition(&self, key: &str, max_window: SignedDuration) -> Result<ComputedDefinition> {
        let property = self
            .property
            .as_deref()
            .map(|p| PropertyPath::parse(p, "/property").map(|p| p.segments().to_vec()))
            .transpose()?;
        let window = match &self.window {
            None => None,
            Some(text) => Some(parse_window(text).ok_or_else(|| {
                DomainError::invalid(
                    "/window",
                    "a window is a whole number of s, m, h or d, e.g. 7d",
                )
            })?),
        };
        if self.event.as_deref().is_some_and(str::is_empty) {
            return Err(DomainError::invalid("/event", "an event name is not empty").into());
        }
        let definition = ComputedDefinition {
            key: key.to_owned(),
            event: self.event.clone(),
            aggregate: self.aggregate,
            property,
            window,
        };
        definition.validate(max_window)?;
        Ok(definition)
    }

    fn of(definition: &ComputedDefinition) -> Self {
        Self {
            event: definition.event.clone(),
            aggregate: definition.aggregate,
            property: definition.property.as_ref().map(|p| p.join(".")),
            window: definition.window.map(format_window),
        }
    }
}

/// A stored definition with its key and times.
#[derive(Debug, Clone)]
pub struct StoredDefinition {
    pub definition: ComputedDefinition,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
}

impl StoredDefinition {
    pub fn body(&self) -> DefinitionBody {
        DefinitionBody::of(&self.definition)
    }
}

impl Service {
    /// The workspace's computed property definitions, by key.
    pub async fn computed_definitions(&self, ws: WorkspaceId) -> Result<Vec<StoredDefinition>> {
        self.store
            .computed_definitions(ws)
            .await?
            .into_iter()
            .map(|record| {
                let body: DefinitionBody =
                    serde_json::from_value(record.definition).map_err(|e| {
                        ServiceError::Store(profiled_store::StoreError::Corrupt(format!(
                            "computed definition `{}`: {e}",
                            record.key
                        )))
                    })?;
                // Stored definitions were valid when written; a shorter retention since then
                // must not make them unreadable.
                Ok(StoredDefinition {
                    definition: body.definition(&record.key, SignedDuration::MAX)?,
                    created_at: record.created_at,
                    updated_at: record.updated_at,
                })
            })
            .collect()
    }

    /// Creates or replaces `computed.<key>`. Profiles show the new value from their next event.
    pub async fn define_computed(
        &self,
        ws: WorkspaceId,
        key: &str,
        body: &DefinitionBody,
    ) -> Result<(StoredDefinition, bool)> {
        let definition = body.definition(key, self.events.retention)?;
        let now = super::profiles::now();
        let existing = self
            .computed_definitions(ws)
            .await?
            .into_iter()
            .find(|d| d.definition.key == key);
        let created_at = existing.as_ref().map_or(now, |d| d.created_at);
        self.store
            .save_computed_definition(
                ws,
                &ComputedRecord {
                    key: key.to_owned(),
                    definition: serde_json::to_value(DefinitionBody::of(&definition))
                        .expect("a definition serialises"),
                    created_at,
                    updated_at: now,
                },
            )
            .await?;
        Ok((
            StoredDefinition {
                definition,
                created_at,
                updated_at: now,
            },
            existing.is_none(),
        ))
    }

    /// Removes `computed.<key>`'s definition; profiles keep their last value until cleared.
    pub async fn undefine_computed(&self, ws: WorkspaceId, key: &str) -> Result<()> {
        if self.store.delete_computed_definition(ws, key).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("computed property `{key}`")))
        }
    }

    /// The rules events of this workspace follow.
    pub(super) async fn activity_rules(&self, ws: WorkspaceId) -> Result<ActivityRules> {
        Ok(ActivityRules {
            session_gap: self.events.session_gap,
            definitions: self
                .computed_definitions(ws)
                .await?
                .into_iter()
                .map(|d| d.definition)
                .collect(),
        })
    }
}
