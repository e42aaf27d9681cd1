//! Workspaces and API keys: creating them, and telling who is calling.
//!
//! A key's text is `prf_<id>_<secret>`: the id finds the stored row, and the SHA-256 of the
//! secret is compared in constant time. The secret has 256 bits of entropy, so a fast hash
//! is enough; it is never stored or logged.

use jiff::Timestamp;
use profiled_core::{Scope, WorkspaceId};
use profiled_store::{ApiKeyRecord, Workspace};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Result, Service, ServiceError};

/// The name of the workspace every instance has.
pub const DEFAULT_WORKSPACE: &str = "default";

const KEY_PREFIX: &str = "prf_";
const KEY_ID_LEN: usize = 16;
const KEY_SECRET_LEN: usize = 43;

/// A key's full text, shown once at creation.
#[derive(Clone)]
pub struct ApiKeyToken(pub String);

impl std::fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyToken(<redacted>)")
    }
}

/// A freshly created key: the stored record and the text to hand to its owner once.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub record: ApiKeyRecord,
    pub token: ApiKeyToken,
}

fn random_alphanumeric(len: usize, lowercase: bool) -> String {
    let s: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    if lowercase { s.to_ascii_lowercase() } else { s }
}

fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Splits `prf_<id>_<secret>` into id and secret, if it has that shape.
fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == KEY_ID_LEN && secret.len() == KEY_SECRET_LEN).then_some((id, secret))
}

fn validate_workspace_name(name: &str) -> Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::Invalid(vec![profiled_core::Violation::new(
            "/name",
            "a workspace name is 1 to 63 lower-case letters, digits, `-` or `_`, starting with a letter or digit",
        )]))
    }
}

impl Service {
    /// Makes sure the `default` workspace exists. With `issue_first_key`, when it has never
    /// had a key, issues its first admin key and returns it: the only time that key's text
    /// is ever available.
    pub async fn bootstrap(&self, issue_first_key: bool) -> Result<Option<IssuedKey>> {
        let workspace = match self.store.workspace_by_name(DEFAULT_WORKSPACE).await? {
            Some(w) => w,
            None => match self
                .store
                .create_workspace(DEFAULT_WORKSPACE, Timestamp::now())
                .await
            {
                Ok(w) => w,
                // Another process created it between our read and our insert.
                Err(profiled_store::StoreError::Conflict(_)) => self
                    .store
                    .workspace_by_name(DEFAULT_WORKSPACE)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::NotFound(format!("workspace `{DEFAULT_WORKSPACE}`"))
                    })?,
                Err(e) => return Err(e.into()),
            },
        };
        if issue_first_key
            && self
                .store
                .list_api_keys(Some(workspace.id))
                .await?
                .is_empty()
        {
            let key = self
                .create_key(workspace.id, Scope::Admin, "bootstrap admin key")
                .await?;
            return Ok(Some(key));
        }
        Ok(None)
    }

    /// Creates a workspace and its first admin key.
    pub async fn create_workspace(&self, name: &str) -> Result<(Workspace, IssuedKey)> {
        validate_workspace_name(name)?;
        let workspace = self.store.create_workspace(name, Timestamp::now()).await?;
        let key = self
            .create_key(workspace.id, Scope::Admin, "initial admin key")
            .await?;
        Ok((workspace, key))
    }

    pub async fn workspace(&self, id: WorkspaceId) -> Result<Workspace> {
        self.store
            .workspace(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("workspace".into()))
    }

    pub async fn workspace_by_name(&self, name: &str) -> Result<Workspace> {
        self.store
            .workspace_by_name(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("workspace `{name}`")))
    }

    pub async fn list_workspaces(&self) -> Result<Vec<Workspace>> {
        Ok(self.store.list_workspaces().await?)
    }

    pub async fn create_key(
        &self,
        workspace: WorkspaceId,
        scope: Scope,
        name: &str,
    ) -> Result<IssuedKey> {
        if name.len() > 200 {
            return Err(ServiceError::Invalid(vec![profiled_core::Violation::new(
                "/name",
                "a key name is at most 200 bytes",
            )]));
        }
        let id = random_alphanumeric(KEY_ID_LEN, true);
        let secret = random_alphanumeric(KEY_SECRET_LEN, false);
        let record = ApiKeyRecord {
            id: id.clone(),
            workspace_id: workspace,
            name: name.to_owned(),
            scope,
            secret_hash: secret_hash(&secret),
            created_at: profiled_core::profile::to_micros(Timestamp::now()),
            revoked_at: None,
        };
        self.store.insert_api_key(&record).await?;
        Ok(IssuedKey {
            record,
            token: ApiKeyToken(format!("{KEY_PREFIX}{id}_{secret}")),
        })
    }

    /// Keys of one workspace, or of every workspace (for the operator's CLI).
    pub async fn list_keys(&self, workspace: Option<WorkspaceId>) -> Result<Vec<ApiKeyRecord>> {
        Ok(self.store.list_api_keys(workspace).await?)
    }

    /// Revokes a key; with a workspace, only a key of that workspace.
    pub async fn revoke_key(&self, workspace: Option<WorkspaceId>, id: &str) -> Result<()> {
        self.keys.forget(id);
        if self
            .store
            .revoke_api_key(workspace, id, Timestamp::now())
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("active API key `{id}`")))
        }
    }

    /// The key a bearer token stands for, if it is well-formed, known, unrevoked and its
    /// secret matches.
    pub async fn authenticate(&self, token: &str) -> Result<Option<ApiKeyRecord>> {
        let Some((id, secret)) = parse_token(token) else {
            return Ok(None);
        };
        let record = match self.keys.get(id) {
            Some(record) => record,
            None => {
                let Some(record) = self.store.api_key(id).await? else {
                    return Ok(None);
                };
                self.keys.put(record.clone());
                record
            }
        };
        let matches: bool = secret_hash(secret).ct_eq(&record.secret_hash).into();
        Ok((matches && record.revoked_at.is_none()).then_some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_a_fixed_shape() {
        let id = random_alphanumeric(KEY_ID_LEN, true);
        let secret = random_alphanumeric(KEY_SECRET_LEN, false);
        let token = format!("{KEY_PREFIX}{id}_{secret}");
        assert_eq!(parse_token(&token), Some((id.as_str(), secret.as_str())));
        assert_eq!(parse_token("prf_short_secret"), None);
        assert_eq!(parse_token(""), None);
        assert_eq!(parse_token(&token[1..]), None);
    }

    #[test]
    fn workspace_names_are_slugs() {
        assert!(validate_workspace_name("acme-prod_1").is_ok());
        for bad in ["", "Acme", "-x", "a b", &"x".repeat(64)] {
            assert!(validate_workspace_name(bad).is_err(), "{bad:?}");
        }
    }
}
