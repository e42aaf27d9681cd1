//! Per-workspace settings of the compat dialects: where a vendor's fields live among
//! profiled's properties.

use profiled_core::{Violation, WorkspaceId};
use profiled_store::StoreError;
use serde::{Deserialize, Serialize};

use super::profiles::now;
use super::{Result, Service, ServiceError};

const INKEEP: &str = "compat_inkeep";

/// Which properties Inkeep's `attributes` and `timezone` are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InkeepMapping {
    /// The top-level property holding Inkeep's `attributes`.
    #[schema(example = "attributes")]
    pub attributes: String,
    /// The top-level property holding Inkeep's `timezone`.
    #[schema(example = "timezone")]
    pub timezone: String,
}

impl Default for InkeepMapping {
    fn default() -> Self {
        Self {
            attributes: "attributes".into(),
            timezone: "timezone".into(),
        }
    }
}

impl Service {
    pub async fn inkeep_mapping(&self, ws: WorkspaceId) -> Result<InkeepMapping> {
        match self.store.setting(ws, INKEEP).await? {
            None => Ok(InkeepMapping::default()),
            Some((value, _)) => serde_json::from_value(value).map_err(|e| {
                ServiceError::Store(StoreError::Corrupt(format!("inkeep mapping: {e}")))
            }),
        }
    }

    pub async fn set_inkeep_mapping(&self, ws: WorkspaceId, mapping: &InkeepMapping) -> Result<()> {
        let mut violations = Vec::new();
        for (name, key) in [
            ("attributes", &mapping.attributes),
            ("timezone", &mapping.timezone),
        ] {
            if key.is_empty() || key.len() > self.limits.max_key_length {
                violations.push(Violation::new(
                    format!("/{name}"),
                    "a property name is 1 to limits.max_key_length bytes",
                ));
            }
        }
        if mapping.attributes == mapping.timezone {
            violations.push(Violation::new(
                "/timezone",
                "attributes and timezone need two different properties",
            ));
        }
        if !violations.is_empty() {
            return Err(ServiceError::Invalid(violations));
        }
        let value = serde_json::to_value(mapping).expect("a mapping serialises");
        self.store
            .save_setting(ws, INKEEP, Some(&value), now())
            .await?;
        Ok(())
    }
}
