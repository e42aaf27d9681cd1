//! Forgetting people (GDPR art. 17, CCPA): a profile is erased with its identities, its
//! change-log entries and the merge snapshots that hold it, and a receipt records that it
//! happened without keeping anything personal.

use jiff::Timestamp;
use profiled_core::change::Operation;
use profiled_core::{Identity, ProfileId, WorkspaceId};
use profiled_store::DeletionReceipt;
use sha2::{Digest, Sha256};

use super::{
    Attempts, Precondition, Result, Retry, Service, ServiceError, WriteContext, with_retries,
};

/// The most receipts one page lists.
pub const MAX_RECEIPTS_PAGE: u32 = 1000;

fn now() -> Timestamp {
    profiled_core::profile::to_micros(Timestamp::now())
}

/// The receipt's stand-in for an identity value: its SHA-256, hex.
pub fn identifier(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Service {
    /// Erases a profile (an absorbed id erases its survivor) and returns the receipt.
    pub async fn forget(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        id: &ProfileId,
        precondition: Option<Precondition>,
    ) -> Result<DeletionReceipt> {
        let requested_at = now();
        let receipt = with_retries!(
            Retry::OnContention,
            self.forget_once(ws, ctx, id, precondition.clone(), requested_at)
        )?;
        self.scrub().await;
        Ok(receipt)
    }

    /// Erases the profile carrying an identity.
    pub async fn forget_by_identity(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        identity: &Identity,
        precondition: Option<Precondition>,
    ) -> Result<DeletionReceipt> {
        let profile = self.profile_by_identity(ws, identity).await?;
        self.forget(ws, ctx, &profile.id, precondition).await
    }

    /// Erases every profile one of `identities` leads to; identities that lead nowhere are
    /// counted, not refused. The store is scrubbed once, at the end.
    pub async fn forget_identities(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        identities: &[Identity],
    ) -> Result<(Vec<DeletionReceipt>, usize)> {
        let mut receipts: Vec<DeletionReceipt> = Vec::new();
        let mut not_found = 0;
        for identity in identities {
            match self
                .forget_unscrubbed(ws, ctx, std::slice::from_ref(identity))
                .await?
            {
                Some(receipt) => receipts.push(receipt),
                None => not_found += 1,
            }
        }
        if !receipts.is_empty() {
            self.scrub().await;
        }
        Ok((receipts, not_found))
    }

    /// Erases the profile the first of `identities` that leads anywhere leads to; `None`
    /// when none does (or it was erased meanwhile). The caller scrubs.
    pub(super) async fn forget_unscrubbed(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        identities: &[Identity],
    ) -> Result<Option<DeletionReceipt>> {
        let requested_at = now();
        let mut profile = None;
        for identity in identities {
            profile = self.store.profile_by_identity(ws, identity).await?;
            if profile.is_some() {
                break;
            }
        }
        let Some(profile) = profile else {
            return Ok(None);
        };
        let mut attempts = Attempts::new(Retry::OnContention);
        loop {
            match self
                .forget_once(ws, ctx, &profile.id, None, requested_at)
                .await
            {
                // Another request erased it first.
                Err(ServiceError::NotFound(_)) => return Ok(None),
                Err(e) if attempts.again(&e).await => continue,
                outcome => return outcome.map(Some),
            }
        }
    }

    async fn forget_once(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        id: &ProfileId,
        precondition: Option<Precondition>,
        requested_at: Timestamp,
    ) -> Result<DeletionReceipt> {
        let mut tx = self.store.begin().await?;
        let profile = self.locked(&mut *tx, ws, id, precondition.as_ref()).await?;
        tx.delete_profile(ws, &profile.id).await?;
        let completed_at = now();
        // Only the fact remains in the change log: the profile's earlier entries went with it,
        // and this one holds no values.
        tx.append_change(
            ws,
            &ctx.entry(&profile.id, completed_at, Operation::Delete, Vec::new()),
        )
        .await?;
        let mut identifiers: Vec<String> = profile
            .identities
            .iter()
            .map(|i| identifier(&i.value))
            .collect();
        identifiers.sort();
        identifiers.dedup();
        let receipt = DeletionReceipt {
            id: uuid::Uuid::now_v7().to_string(),
            profile_id: profile.id.clone(),
            requested_at,
            completed_at,
            requested_by: ctx.actor.clone(),
            identifiers,
        };
        tx.record_deletion(ws, &receipt).await?;
        self.commit(tx).await?;
        Ok(receipt)
    }

    /// Physically removes what forgetting deleted, where the backend can. A failure leaves the
    /// data unreachable through any API (the rows are gone) and is retried by the next forget.
    pub(super) async fn scrub(&self) {
        for attempt in 1..=3 {
            match self.store.scrub().await {
                Ok(()) => return,
                Err(e) if attempt < 3 => {
                    tracing::debug!(error = %e, "scrub after a deletion; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => tracing::warn!(error = %e, "scrub after a deletion did not finish"),
            }
        }
    }

    pub async fn deletion(&self, ws: WorkspaceId, id: &str) -> Result<DeletionReceipt> {
        self.store
            .deletion(ws, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("deletion `{id}`")))
    }

    /// Receipts, newest first; those before the receipt `before` when given.
    pub async fn deletions(
        &self,
        ws: WorkspaceId,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeletionReceipt>> {
        Ok(self
            .store
            .deletions(ws, before, limit.clamp(1, MAX_RECEIPTS_PAGE))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_the_sha256_of_the_value() {
        assert_eq!(
            identifier("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
