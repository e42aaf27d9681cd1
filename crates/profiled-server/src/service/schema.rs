//! The workspace's profile schema: a JSON Schema (draft 2020-12) that `properties` must
//! satisfy, and property paths every profile must have. Writes that change properties are
//! checked against it (see [`super::rules`]); changing it never rewrites stored profiles, and
//! [`Service::check_schema`] reports which stored profiles a proposed schema would refuse.

use jiff::Timestamp;
use profiled_core::filter::Filter;
use profiled_core::path::PropertyPath;
use profiled_core::{ProfileId, Violation, WorkspaceId};
use profiled_store::{SearchQuery, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::profiles::now;
use super::{Result, Service, ServiceError};

/// The workspace setting the schema is kept under.
const SETTING: &str = "schema";
/// Profiles read per page while checking a proposed schema.
const CHECK_PAGE: u32 = 1000;

/// A schema as clients write and read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaBody {
    /// A JSON Schema (draft 2020-12) for `properties`. `$ref`s to other documents are refused:
    /// nothing is ever fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, example = json!({"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}}))]
    pub schema: Option<Value>,
    /// Property paths every profile must have, not null (`email`, `address.city`).
    #[serde(default)]
    #[schema(example = json!(["email"]))]
    pub required: Vec<String>,
}

/// A compiled schema.
pub struct ProfileSchema {
    validator: Option<jsonschema::Validator>,
    required: Vec<(String, PropertyPath)>,
}

impl std::fmt::Debug for ProfileSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileSchema")
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl ProfileSchema {
    /// Compiles a schema; a schema that is not valid JSON Schema, or that refers to another
    /// document, is refused naming the problem.
    pub fn compile(body: &SchemaBody) -> Result<Self> {
        let validator = match &body.schema {
            None => None,
            Some(schema) => Some(
                jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .build(schema)
                    .map_err(|e| {
                        ServiceError::Invalid(vec![Violation::new(
                            "/schema",
                            format!("not a usable JSON Schema: {e}"),
                        )])
                    })?,
            ),
        };
        let required = body
            .required
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let parsed = PropertyPath::parse(path, &format!("/required/{i}"))?;
                Ok((path.clone(), parsed))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            validator,
            required,
        })
    }

    /// Every way the properties break the schema, as violations at `/properties/...`.
    pub fn violations(&self, properties: &Map<String, Value>) -> Vec<Violation> {
        let mut violations = Vec::new();
        for (path, parsed) in &self.required {
            let mut current = Some(properties);
            let mut value = None;
            for step in parsed.segments() {
                value = current.and_then(|map| map.get(step));
                current = value.and_then(Value::as_object);
            }
            if value.is_none_or(Value::is_null) {
                violations.push(Violation::new(
                    format!("/properties{}", parsed.to_pointer()),
                    format!("`{path}` is required"),
                ));
            }
        }
        if let Some(validator) = &self.validator {
            let instance = Value::Object(properties.clone());
            for error in validator.iter_errors(&instance) {
                violations.push(Violation::new(
                    format!("/properties{}", error.instance_path()),
                    error.to_string(),
                ));
            }
        }
        violations
    }
}

/// A proposed schema tried on the stored profiles.
#[derive(Debug, Clone)]
pub struct SchemaCheck {
    pub checked: u64,
    pub failing: u64,
    /// The first failing profiles, with their violations.
    pub examples: Vec<(ProfileId, Vec<Violation>)>,
}

impl Service {
    /// The workspace's schema, compiled, and when it was set.
    pub(super) async fn stored_schema(
        &self,
        ws: WorkspaceId,
    ) -> Result<Option<(ProfileSchema, Timestamp)>> {
        match self.schema(ws).await? {
            None => Ok(None),
            Some((body, at)) => {
                let compiled = ProfileSchema::compile(&body).map_err(|_| {
                    ServiceError::Store(StoreError::Corrupt(
                        "the stored profile schema no longer compiles".into(),
                    ))
                })?;
                Ok(Some((compiled, at)))
            }
        }
    }

    /// The workspace's schema as set, and when.
    pub async fn schema(&self, ws: WorkspaceId) -> Result<Option<(SchemaBody, Timestamp)>> {
        match self.store.setting(ws, SETTING).await? {
            None => Ok(None),
            Some((value, at)) => {
                let body = serde_json::from_value(value).map_err(|e| {
                    ServiceError::Store(StoreError::Corrupt(format!("profile schema: {e}")))
                })?;
                Ok(Some((body, at)))
            }
        }
    }

    /// Sets (or, with `None`, removes) the schema. Stored profiles are left as they are; the
    /// next write that changes a profile's properties must satisfy it.
    pub async fn set_schema(&self, ws: WorkspaceId, body: Option<&SchemaBody>) -> Result<bool> {
        if let Some(body) = body {
            ProfileSchema::compile(body)?;
        }
        let value = body.map(|b| serde_json::to_value(b).expect("a schema serialises"));
        let changed = self
            .store
            .save_setting(ws, SETTING, value.as_ref(), now())
            .await?;
        self.rules_cache.forget(ws);
        Ok(changed)
    }

    /// Which stored profiles a proposed schema would refuse: counts, and the first `limit`
    /// with their violations. Nothing is changed.
    pub async fn check_schema(
        &self,
        ws: WorkspaceId,
        body: &SchemaBody,
        limit: usize,
    ) -> Result<SchemaCheck> {
        let schema = ProfileSchema::compile(body)?;
        let mut check = SchemaCheck {
            checked: 0,
            failing: 0,
            examples: Vec::new(),
        };
        let mut query = SearchQuery {
            filter: Filter::all(),
            now: now(),
            sort: Vec::new(),
            after: None,
            limit: CHECK_PAGE,
        };
        loop {
            let page = self.store.search(ws, &query).await?;
            for profile in page.profiles {
                check.checked += 1;
                let violations = schema.violations(&profile.properties);
                if !violations.is_empty() {
                    check.failing += 1;
                    if check.examples.len() < limit {
                        check.examples.push((profile.id, violations));
                    }
                }
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        Ok(check)
    }
}
