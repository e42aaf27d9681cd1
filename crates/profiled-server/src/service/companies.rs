//! Companies: accounts a profile can belong to, with their own identity (`uid`) and
//! properties. A profile names its company by uid when it is upserted.

use profiled_core::ops::merge_patch;
use profiled_core::{Profile, Violation, WorkspaceId};
use profiled_store::{CompanyPage, CompanyRecord, ProfileTx};
use serde_json::{Map, Value};

use super::profiles::now;
use super::{Result, Retry, Service, ServiceError, with_retries};

/// A company's uid is the client's identifier for it; at most this long.
const MAX_UID_LEN: usize = 255;

/// A company named in a write, with the properties to merge into it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyUpsert {
    pub uid: String,
    /// Merged into the company's properties (JSON Merge Patch: `null` removes a key).
    pub properties: Map<String, Value>,
}

impl CompanyUpsert {
    /// Checks the uid; `at` is the JSON pointer it came from.
    pub fn new(uid: &str, properties: Map<String, Value>, at: &str) -> Result<Self> {
        let uid = uid.trim();
        if uid.is_empty() || uid.len() > MAX_UID_LEN {
            return Err(ServiceError::Invalid(vec![Violation::new(
                at,
                format!("a company uid is 1 to {MAX_UID_LEN} bytes"),
            )]));
        }
        Ok(Self {
            uid: uid.to_owned(),
            properties,
        })
    }
}

/// What a profile upsert says about the profile's company.
#[derive(Debug, Clone, PartialEq)]
pub enum CompanyLink {
    /// The profile belongs to this company (created when new).
    Join(CompanyUpsert),
    /// The profile belongs to no company.
    Leave,
}

impl Service {
    /// Creates a company or merges properties into it; returns it and whether it was new.
    pub async fn upsert_company(
        &self,
        ws: WorkspaceId,
        company: &CompanyUpsert,
    ) -> Result<(CompanyRecord, bool)> {
        with_retries!(
            Retry::AlsoWhenIdentityTaken,
            self.upsert_company_once(ws, company)
        )
    }

    async fn upsert_company_once(
        &self,
        ws: WorkspaceId,
        company: &CompanyUpsert,
    ) -> Result<(CompanyRecord, bool)> {
        let mut tx = self.store.begin().await?;
        let outcome = self.write_company(&mut *tx, ws, company).await?;
        self.commit(tx).await?;
        Ok(outcome)
    }

    /// The company with its properties merged, written in the caller's transaction.
    pub(super) async fn write_company(
        &self,
        tx: &mut dyn ProfileTx,
        ws: WorkspaceId,
        company: &CompanyUpsert,
    ) -> Result<(CompanyRecord, bool)> {
        let now = now();
        let patch = Value::Object(company.properties.clone());
        match tx.company_by_uid(ws, &company.uid).await? {
            Some(mut existing) => {
                let properties = merge_patch(&existing.properties, &patch)?;
                if properties != existing.properties {
                    self.limits
                        .check_properties(&properties, "/company/properties")?;
                    existing.properties = properties;
                    existing.updated_at = now;
                    existing.version += 1;
                    tx.save_company(ws, &existing).await?;
                }
                Ok((existing, false))
            }
            None => {
                let properties = merge_patch(&Map::new(), &patch)?;
                self.limits
                    .check_properties(&properties, "/company/properties")?;
                let record = CompanyRecord {
                    id: uuid::Uuid::now_v7().to_string(),
                    uid: company.uid.clone(),
                    properties,
                    created_at: now,
                    updated_at: now,
                    version: 1,
                };
                tx.save_company(ws, &record).await.map_err(|e| match e {
                    // Created concurrently: the next attempt finds and updates it.
                    profiled_store::StoreError::Conflict(_) => ServiceError::IdentityTaken(
                        profiled_core::Identity::new_unchecked("company", &company.uid),
                    ),
                    other => other.into(),
                })?;
                Ok((record, true))
            }
        }
    }

    /// The company id a profile should carry after a write that says `link`.
    pub(super) async fn linked_company(
        &self,
        tx: &mut dyn ProfileTx,
        ws: WorkspaceId,
        link: Option<&CompanyLink>,
        profile: &Profile,
    ) -> Result<Option<String>> {
        Ok(match link {
            None => profile.company.clone(),
            Some(CompanyLink::Leave) => None,
            Some(CompanyLink::Join(company)) => {
                Some(self.write_company(tx, ws, company).await?.0.id)
            }
        })
    }

    pub async fn company(&self, ws: WorkspaceId, id: &str) -> Result<CompanyRecord> {
        self.store
            .company(ws, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("company `{id}`")))
    }

    pub async fn company_by_uid(&self, ws: WorkspaceId, uid: &str) -> Result<CompanyRecord> {
        self.store
            .company_by_uid(ws, uid)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("company with uid `{uid}`")))
    }

    /// A page of companies in id (creation) order.
    pub async fn companies(
        &self,
        ws: WorkspaceId,
        page: &CompanyPage<'_>,
    ) -> Result<Vec<CompanyRecord>> {
        Ok(self.store.companies(ws, page).await?)
    }

    /// Deletes a company; its profiles then belong to none.
    pub async fn delete_company(&self, ws: WorkspaceId, id: &str) -> Result<()> {
        if self.store.delete_company(ws, id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("company `{id}`")))
        }
    }
}
