//! Profile history and the workspace's change feed.

use std::time::Duration;

use profiled_core::change::Change;
use profiled_core::{ProfileId, WorkspaceId};

use super::{Result, Service, ServiceError};

/// The longest a feed request may wait for a change.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// How often a waiting feed reader looks for changes committed by other processes.
const RECHECK: Duration = Duration::from_secs(1);

impl Service {
    /// Deletes change log entries older than the retention period, if one is set.
    pub async fn prune_changes(&self) -> Result<u64> {
        let Some(retention) = self.retention else {
            return Ok(0);
        };
        let horizon = jiff::Timestamp::now().checked_sub(
            jiff::SignedDuration::try_from(retention).unwrap_or(jiff::SignedDuration::MAX),
        );
        match horizon {
            Ok(before) => Ok(self.store.prune_changes(before).await?),
            Err(_) => Ok(0),
        }
    }

    /// A profile's changes, newest first; older than `before` when given.
    pub async fn history(
        &self,
        ws: WorkspaceId,
        id: &ProfileId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Change>> {
        // Through `profile`, so that an absorbed id leads to its survivor's history.
        let profile = self.profile(ws, id).await?;
        Ok(self.store.history(ws, &profile.id, before, limit).await?)
    }

    /// The workspace's changes after `after`, oldest first. With `wait`, an empty answer waits
    /// up to that long for the next change.
    pub async fn changes(
        &self,
        ws: WorkspaceId,
        after: i64,
        limit: u32,
        wait: Duration,
    ) -> Result<Vec<Change>> {
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        loop {
            // Armed before reading, so a change committed in between still wakes us.
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let changes = self.store.changes(ws, after, limit).await?;
            if !changes.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(changes);
            }
            // Writes of this process wake us at once; writes of other processes sharing the
            // database (more API nodes, a CLI import) are seen by reading again each second.
            let next_look = deadline.min(tokio::time::Instant::now() + RECHECK);
            let _ = tokio::time::timeout_at(next_look, notified).await;
        }
    }
}

impl Service {
    /// The profile as it was at `at`, rebuilt by undoing, newest first, every logged change
    /// made after it.
    pub async fn profile_as_of(
        &self,
        ws: WorkspaceId,
        id: &ProfileId,
        at: jiff::Timestamp,
    ) -> Result<profiled_core::Profile> {
        let mut profile = self.profile(ws, id).await?;
        let id = &profile.id.clone();
        if let Some(retention) = self.retention
            && jiff::Timestamp::now().duration_since(at)
                > jiff::SignedDuration::try_from(retention).unwrap_or(jiff::SignedDuration::MAX)
        {
            return Err(ServiceError::Invalid(vec![profiled_core::Violation::new(
                "/as_of",
                "changes older than the change log's retention are pruned, so the profile cannot be rebuilt that far back",
            )]));
        }
        if at < profile.created_at {
            return Err(ServiceError::NotFound(format!(
                "profile `{id}` at {at} (it was created at {})",
                profile.created_at
            )));
        }
        let mut before = None;
        loop {
            let page = self.store.history(ws, id, before, 500).await?;
            for change in &page {
                if change.entry.at <= at {
                    profile.updated_at = change.entry.at;
                    return Ok(profile);
                }
                profiled_core::change::undo(&mut profile, &change.entry.changes);
            }
            match page.last() {
                Some(last) if page.len() == 500 => before = Some(last.seq),
                _ => {
                    profile.updated_at = profile.created_at;
                    return Ok(profile);
                }
            }
        }
    }
}
