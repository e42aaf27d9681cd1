//! A workspace's own identity provider: JWTs it signs (HS256 with a shared secret, or RS256
//! with public keys given as PEM, a JWKS document, or a JWKS file) are exchanged for end-user
//! sessions of the profile their `sub` names.

use jiff::SignedDuration;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use profiled_core::{Identity, Violation, WorkspaceId};
use profiled_store::StoreError;
use serde::{Deserialize, Serialize};

use super::profiles::WriteContext;
use super::sessions::{IssuedSession, MAX_TTL};
use super::{Result, Service, ServiceError};

/// The workspace setting the identity provider is kept under.
const SETTING: &str = "identity_provider";
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// A trusted identity provider, as a workspace sets it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityProvider {
    /// The HS256 shared secret (at least 32 bytes). Never shown again once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs256_secret: Option<String>,
    /// RS256 public keys in PEM (`-----BEGIN PUBLIC KEY-----`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rs256_public_keys: Vec<String>,
    /// A JWKS document with RS256 keys, given inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// A JWKS document's path on the server, read at each exchange (so rotating keys is
    /// replacing the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_path: Option<String>,
    /// The `iss` tokens must carry, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// An `aud` tokens must carry, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The identity kind `sub` is (default `user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_kind: Option<String>,
    /// Seconds an exchanged session lasts (default a day, at most 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_ttl: Option<i64>,
}

/// The claims profiled reads; signature, `exp`, `nbf`, `iss` and `aud` are checked by the
/// JWT library.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    iss: Option<String>,
}

impl IdentityProvider {
    fn check(&self) -> Result<()> {
        let invalid = |pointer: &str, message: &str| {
            Err(ServiceError::Invalid(vec![Violation::new(
                pointer, message,
            )]))
        };
        if self.hs256_secret.is_none()
            && self.rs256_public_keys.is_empty()
            && self.jwks.is_none()
            && self.jwks_path.is_none()
        {
            return invalid(
                "",
                "give a key: hs256_secret, rs256_public_keys, jwks or jwks_path",
            );
        }
        if self.hs256_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return invalid("/hs256_secret", "an HS256 secret is at least 32 bytes");
        }
        for (i, pem) in self.rs256_public_keys.iter().enumerate() {
            if DecodingKey::from_rsa_pem(pem.as_bytes()).is_err() {
                return invalid(
                    &format!("/rs256_public_keys/{i}"),
                    "not an RSA public key in PEM",
                );
            }
        }
        if let Some(jwks) = &self.jwks
            && serde_json::from_value::<JwkSet>(jwks.clone()).is_err()
        {
            return invalid("/jwks", "not a JWKS document ({\"keys\": [...]})");
        }
        if let Some(kind) = &self.identity_kind {
            profiled_core::IdentityKind::parse(kind).map_err(|_| {
                ServiceError::Invalid(vec![Violation::new(
                    "/identity_kind",
                    "an identity kind is lower-case letters, digits and `_`, e.g. user_id",
                )])
            })?;
        }
        if let Some(ttl) = self.session_ttl
            && !(1..=MAX_TTL.as_secs()).contains(&ttl)
        {
            return invalid("/session_ttl", "a session lasts 1 second to 30 days");
        }
        Ok(())
    }

    /// The keys a token with this header may be verified with.
    fn keys(&self, header: &jsonwebtoken::Header) -> Result<Vec<DecodingKey>> {
        match header.alg {
            Algorithm::HS256 => Ok(self
                .hs256_secret
                .iter()
                .map(|s| DecodingKey::from_secret(s.as_bytes()))
                .collect()),
            Algorithm::RS256 => {
                let mut keys: Vec<DecodingKey> = self
                    .rs256_public_keys
                    .iter()
                    .filter_map(|pem| DecodingKey::from_rsa_pem(pem.as_bytes()).ok())
                    .collect();
                let mut sets = Vec::new();
                if let Some(jwks) = &self.jwks {
                    sets.extend(serde_json::from_value::<JwkSet>(jwks.clone()).ok());
                }
                if let Some(path) = &self.jwks_path {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        ServiceError::Store(StoreError::Corrupt(format!(
                            "the identity provider's JWKS file {path} cannot be read: {e}"
                        )))
                    })?;
                    let set = serde_json::from_str::<JwkSet>(&text).map_err(|e| {
                        ServiceError::Store(StoreError::Corrupt(format!(
                            "the identity provider's JWKS file {path} is not a JWKS document: {e}"
                        )))
                    })?;
                    sets.push(set);
                }
                for set in &sets {
                    for jwk in &set.keys {
                        let kid_matches = match (&header.kid, &jwk.common.key_id) {
                            (Some(wanted), Some(kid)) => wanted == kid,
                            _ => true,
                        };
                        if kid_matches && let Ok(key) = DecodingKey::from_jwk(jwk) {
                            keys.push(key);
                        }
                    }
                }
                Ok(keys)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The identity a token stands for, once its signature and claims check out; `None`
    /// when they do not.
    fn verify(
        &self,
        token: &str,
        limits: &profiled_core::Limits,
    ) -> Result<Option<(Identity, String)>> {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Ok(None);
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        for key in self.keys(&header)? {
            if let Ok(data) = jsonwebtoken::decode::<Claims>(token, &key, &validation) {
                let kind = self.identity_kind.as_deref().unwrap_or("user_id");
                let Some(sub) = data.claims.sub.filter(|s| !s.is_empty()) else {
                    return Ok(None);
                };
                let Ok(identity) = Identity::parse(kind, &sub, limits) else {
                    return Ok(None);
                };
                let issuer = data.claims.iss.unwrap_or_else(|| "idp".into());
                return Ok(Some((identity, issuer)));
            }
        }
        Ok(None)
    }
}

impl Service {
    /// The workspace's identity provider, with its secret left out.
    pub async fn identity_provider(&self, ws: WorkspaceId) -> Result<Option<IdentityProvider>> {
        Ok(self.stored_identity_provider(ws).await?.map(|mut idp| {
            idp.hs256_secret = idp.hs256_secret.map(|_| "********".into());
            idp
        }))
    }

    async fn stored_identity_provider(&self, ws: WorkspaceId) -> Result<Option<IdentityProvider>> {
        match self.store.setting(ws, SETTING).await? {
            None => Ok(None),
            Some((value, _)) => serde_json::from_value(value).map(Some).map_err(|e| {
                ServiceError::Store(StoreError::Corrupt(format!("identity provider: {e}")))
            }),
        }
    }

    /// Trusts an identity provider (or, with `None`, stops trusting any).
    pub async fn set_identity_provider(
        &self,
        ws: WorkspaceId,
        idp: Option<&IdentityProvider>,
    ) -> Result<bool> {
        if let Some(idp) = idp {
            idp.check()?;
        }
        let value = idp.map(|i| serde_json::to_value(i).expect("settings serialise"));
        Ok(self
            .store
            .save_setting(ws, SETTING, value.as_ref(), super::profiles::now())
            .await?)
    }

    /// A session for the end user a JWT of the workspace's identity provider names; `None`
    /// when the workspace trusts no provider or the token does not check out.
    pub async fn exchange_token(
        &self,
        workspace: &str,
        token: &str,
    ) -> Result<Option<IssuedSession>> {
        let Some(ws) = self.store.workspace_by_name(workspace).await? else {
            return Ok(None);
        };
        let Some(idp) = self.stored_identity_provider(ws.id).await? else {
            return Ok(None);
        };
        let Some((identity, issuer)) = idp.verify(token, &self.limits)? else {
            return Ok(None);
        };
        let ctx = WriteContext {
            actor: format!("jwt:{issuer}"),
            origin: None,
        };
        let ttl = idp.session_ttl.map(SignedDuration::from_secs);
        Ok(Some(self.create_session(ws.id, &ctx, identity, ttl).await?))
    }
}
