//! Per-workspace settings of the compat dialects: where Inkeep's fields live among
//! profiled's properties, mediarithmics' compartments and document imports, Akinon's required
//! fields, phone verification and loyalty service.

use profiled_core::{Violation, WorkspaceId};
use serde::{Deserialize, Serialize};

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
        Ok(self
            .json_setting(ws, INKEEP, "inkeep mapping")
            .await?
            .unwrap_or_default())
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
        self.save_json_setting(ws, INKEEP, mapping).await
    }
}

const MEDIARITHMICS: &str = "compat_mediarithmics";
const DOCUMENT_IMPORT: &str = "compat_mediarithmics_import:";

/// A mediarithmics user account compartment: a namespace of user account ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Compartment {
    /// A positive integer, unique in the workspace.
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "default")]
    pub token: String,
    #[schema(example = "Default")]
    pub name: String,
    /// Exactly one compartment is the default.
    #[serde(default)]
    pub default: bool,
}

/// The workspace's compartments (`/compat/mediarithmics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediarithmicsSettings {
    pub compartments: Vec<Compartment>,
}

impl Default for MediarithmicsSettings {
    fn default() -> Self {
        Self {
            compartments: vec![Compartment {
                id: 1,
                token: "default".into(),
                name: "Default".into(),
                default: true,
            }],
        }
    }
}

impl MediarithmicsSettings {
    /// The default compartment's id.
    pub fn default_compartment(&self) -> i64 {
        self.compartments
            .iter()
            .find(|c| c.default)
            .map_or(1, |c| c.id)
    }

    pub fn has_compartment(&self, id: i64) -> bool {
        self.compartments.iter().any(|c| c.id == id)
    }

    fn violations(&self) -> Vec<Violation> {
        let mut violations = Vec::new();
        if self.compartments.is_empty() || self.compartments.len() > 1000 {
            violations.push(Violation::new(
                "/compartments",
                "list 1 to 1000 compartments",
            ));
        }
        if self.compartments.iter().filter(|c| c.default).count() != 1 {
            violations.push(Violation::new(
                "/compartments",
                "exactly one compartment is the default",
            ));
        }
        for (i, c) in self.compartments.iter().enumerate() {
            if c.id < 1 || self.compartments[..i].iter().any(|o| o.id == c.id) {
                violations.push(Violation::new(
                    format!("/compartments/{i}/id"),
                    "an id is a positive integer, unique among the compartments",
                ));
            }
            for (key, text) in [("token", &c.token), ("name", &c.name)] {
                if text.trim().is_empty() || text.len() > 255 {
                    violations.push(Violation::new(
                        format!("/compartments/{i}/{key}"),
                        "1 to 255 bytes",
                    ));
                }
            }
        }
        violations
    }
}

/// A mediarithmics document import: what its executions' bodies hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentImport {
    pub id: String,
    pub name: String,
    pub document_type: String,
    pub mime_type: String,
    pub encoding: String,
    /// Epoch milliseconds.
    pub created_at: i64,
}

impl Service {
    pub async fn mediarithmics_settings(&self, ws: WorkspaceId) -> Result<MediarithmicsSettings> {
        Ok(self
            .json_setting(ws, MEDIARITHMICS, "mediarithmics settings")
            .await?
            .unwrap_or_default())
    }

    pub async fn set_mediarithmics_settings(
        &self,
        ws: WorkspaceId,
        settings: &MediarithmicsSettings,
    ) -> Result<()> {
        let violations = settings.violations();
        if !violations.is_empty() {
            return Err(ServiceError::Invalid(violations));
        }
        self.save_json_setting(ws, MEDIARITHMICS, settings).await
    }

    /// Keeps a document import (its id is new).
    pub async fn save_document_import(
        &self,
        ws: WorkspaceId,
        import: &DocumentImport,
    ) -> Result<()> {
        self.save_json_setting(ws, &format!("{DOCUMENT_IMPORT}{}", import.id), import)
            .await
    }

    pub async fn document_import(&self, ws: WorkspaceId, id: &str) -> Result<DocumentImport> {
        self.json_setting(ws, &format!("{DOCUMENT_IMPORT}{id}"), "document import")
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("document import `{id}`")))
    }
}

const AKINON: &str = "compat_akinon";

/// Akinon's profile fields, each kept in the property of the same name.
pub const AKINON_FIELDS: [&str; 12] = [
    "first_name",
    "last_name",
    "email_allowed",
    "sms_allowed",
    "whatsapp_allowed",
    "call_allowed",
    "email",
    "phone",
    "date_of_birth",
    "gender",
    "language_code",
    "attributes",
];

/// What a secret reads as once set.
const MASK: &str = "********";

/// Where a workspace's profile changes are sent after an update through
/// `/users/profile-with-loyalty/` (Akinon's `CUSTOMER_LOYALTY_CARD_SERVICE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoyaltyService {
    #[schema(example = "https://loyalty.example.com/profile-changes")]
    pub url: String,
    /// Signs each delivery (HMAC-SHA256 of the body in `X-Profiled-Signature`); reads back as
    /// `********`, and sending `********` keeps the one set.
    pub secret: String,
}

/// How `/compat/akinon` behaves in a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AkinonSettings {
    /// Akinon's `USER_REQUIRED_FIELDS`: fields a `PUT` must carry.
    #[serde(default)]
    #[schema(example = json!(["first_name", "last_name"]))]
    pub required_fields: Vec<String>,
    /// Whether `/users/profile-with-loyalty/` verifies a phone change with a code.
    #[serde(default = "yes")]
    pub verify_phone: bool,
    #[serde(default)]
    pub loyalty_service: Option<LoyaltyService>,
}

fn yes() -> bool {
    true
}

impl Default for AkinonSettings {
    fn default() -> Self {
        Self {
            required_fields: Vec::new(),
            verify_phone: true,
            loyalty_service: None,
        }
    }
}

impl AkinonSettings {
    /// The settings as shown: the loyalty secret masked.
    pub fn masked(mut self) -> Self {
        if let Some(service) = &mut self.loyalty_service {
            service.secret = MASK.into();
        }
        self
    }

    fn violations(&self) -> Vec<Violation> {
        let mut violations = Vec::new();
        for (i, field) in self.required_fields.iter().enumerate() {
            if !AKINON_FIELDS.contains(&field.as_str()) {
                violations.push(Violation::new(
                    format!("/required_fields/{i}"),
                    format!("`{field}` is not one of Akinon's writable profile fields"),
                ));
            }
        }
        if let Some(service) = &self.loyalty_service {
            let url_ok = (service.url.starts_with("https://")
                || service.url.starts_with("http://"))
                && service.url.len() <= 2048;
            if !url_ok {
                violations.push(Violation::new("/loyalty_service/url", "an http(s) URL"));
            }
            if service.secret.len() < 16 {
                violations.push(Violation::new(
                    "/loyalty_service/secret",
                    "a secret of at least 16 bytes",
                ));
            }
        }
        violations
    }
}

impl Service {
    pub async fn akinon_settings(&self, ws: WorkspaceId) -> Result<AkinonSettings> {
        Ok(self
            .json_setting(ws, AKINON, "akinon settings")
            .await?
            .unwrap_or_default())
    }

    /// Saves the settings; a masked secret keeps the one already set.
    pub async fn set_akinon_settings(
        &self,
        ws: WorkspaceId,
        mut settings: AkinonSettings,
    ) -> Result<AkinonSettings> {
        if let Some(service) = &mut settings.loyalty_service
            && service.secret == MASK
        {
            let current = self.akinon_settings(ws).await?;
            match current.loyalty_service {
                Some(old) => service.secret = old.secret,
                None => {
                    return Err(ServiceError::Invalid(vec![Violation::new(
                        "/loyalty_service/secret",
                        "no secret is set yet: send one",
                    )]));
                }
            }
        }
        let violations = settings.violations();
        if !violations.is_empty() {
            return Err(ServiceError::Invalid(violations));
        }
        self.save_json_setting(ws, AKINON, &settings).await?;
        Ok(settings.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compartments_need_one_default_and_unique_ids() {
        assert!(MediarithmicsSettings::default().violations().is_empty());
        let c = |id, default| Compartment {
            id,
            token: format!("t{id}"),
            name: format!("n{id}"),
            default,
        };
        let two_defaults = MediarithmicsSettings {
            compartments: vec![c(1, true), c(2, true)],
        };
        assert_eq!(two_defaults.violations().len(), 1);
        let same_id = MediarithmicsSettings {
            compartments: vec![c(1, true), c(1, false)],
        };
        assert_eq!(same_id.violations()[0].pointer, "/compartments/1/id");
        let fine = MediarithmicsSettings {
            compartments: vec![c(1, false), c(1606, true)],
        };
        assert!(fine.violations().is_empty());
        assert_eq!(fine.default_compartment(), 1606);
        assert!(fine.has_compartment(1) && !fine.has_compartment(2));
    }
}
