//! End users' sessions, and what an end user may do with their own profile.
//!
//! A session token is `pss_<id>_<secret>`, like an API key: the id finds the stored row and
//! the SHA-256 of the secret is compared in constant time. Its CSRF token is another random
//! secret, also kept only as a hash. A session reaches exactly one profile (or the profile it
//! was merged into), and nothing else.

use jiff::{SignedDuration, Timestamp};
use profiled_core::end_user::EndUserRules;
use profiled_core::ops::PropertyOps;
use profiled_core::{Identity, Profile, ProfileId, Violation, WorkspaceId};
use profiled_store::SessionRecord;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::profiles::{Change, Upsert, WriteContext, now};
use super::{Result, Service, ServiceError};

const TOKEN_PREFIX: &str = "pss_";
const ID_LEN: usize = 16;
const SECRET_LEN: usize = 43;
/// A session lasts this long unless its creator says otherwise.
pub const DEFAULT_TTL: SignedDuration = SignedDuration::from_hours(24);
/// And at most this long.
pub const MAX_TTL: SignedDuration = SignedDuration::from_hours(24 * 30);
/// The workspace setting the end users' rules are kept under.
const SETTING: &str = "end_users";

/// How end users' sessions travel.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSettings {
    /// The cookie a browser keeps the session token in.
    pub cookie_name: String,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            cookie_name: "profiled_session".into(),
        }
    }
}

/// A new session: its token and CSRF token are shown only now.
#[derive(Clone)]
pub struct IssuedSession {
    pub record: SessionRecord,
    pub token: String,
    pub csrf_token: String,
}

impl std::fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSession")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// An authenticated end user: the session, and the profile it reaches.
#[derive(Debug, Clone)]
pub struct EndUser {
    pub workspace: WorkspaceId,
    pub session_id: String,
    pub profile_id: ProfileId,
    csrf_hash: Vec<u8>,
}

impl EndUser {
    /// Whether a CSRF token is the session's own.
    pub fn csrf_matches(&self, token: &str) -> bool {
        bool::from(hash(token).ct_eq(&self.csrf_hash))
    }

    /// Who writes, for the change log.
    pub fn context(&self) -> WriteContext {
        WriteContext {
            actor: format!("session:{}", self.session_id),
            origin: None,
        }
    }
}

/// What end users may do, as a workspace sets it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndUserSettings {
    /// Property paths an end user may change (with everything below them). Nothing else is
    /// writable.
    #[serde(default)]
    #[schema(example = json!(["first_name", "preferences"]))]
    pub writable: Vec<String>,
    /// Property paths an end user never sees nor changes.
    #[serde(default)]
    #[schema(example = json!(["internal"]))]
    pub hidden: Vec<String>,
    /// Origins (`https://app.example.com`) besides profiled's own whose pages may send
    /// cookie-authenticated writes.
    #[serde(default)]
    #[schema(example = json!(["https://app.example.com"]))]
    pub allowed_origins: Vec<String>,
    /// Writable paths whose changes wait for a code sent to the new value (`phone`, `email`):
    /// the write answers 202, and applies when repeated with the code.
    #[serde(default)]
    #[schema(example = json!(["phone"]))]
    pub verified: Vec<String>,
}

impl EndUserSettings {
    pub fn rules(&self) -> Result<EndUserRules> {
        Ok(EndUserRules::parse(
            &self.writable,
            &self.hidden,
            &self.verified,
            "",
        )?)
    }

    fn check(&self) -> Result<()> {
        self.rules()?;
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.ends_with('/')
                && origin
                    .split("://")
                    .nth(1)
                    .is_some_and(|host| !host.is_empty() && !host.contains('/'));
            if !ok {
                return Err(ServiceError::Invalid(vec![Violation::new(
                    format!("/allowed_origins/{i}"),
                    "an origin is a scheme and a host, e.g. https://app.example.com",
                )]));
            }
        }
        Ok(())
    }
}

/// What became of an end user's write.
#[derive(Debug, Clone)]
pub enum MyWrite {
    /// Written; the profile as the end user sees it.
    Applied(Box<Profile>),
    /// It changes a verified property: a code was sent, and nothing changed yet.
    Pending(super::verification::Pending),
}

/// What an end user's write asks for.
#[derive(Debug, Clone)]
pub enum EndUserChange {
    /// Operations or a merge patch, applied to the current properties.
    Change(Change),
    /// The visible properties replaced whole.
    Replace(Map<String, Value>),
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn random(len: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Splits `pss_<id>_<secret>`, if the text has that shape.
fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == ID_LEN && secret.len() == SECRET_LEN).then_some((id, secret))
}

/// Whether a text looks like a session token (rather than an API key).
pub fn is_session_token(token: &str) -> bool {
    token.starts_with(TOKEN_PREFIX)
}

impl Service {
    /// Opens a session for the profile carrying `identity`, creating an empty profile if none
    /// does. `ttl` defaults to a day and is at most 30 days.
    pub async fn create_session(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        identity: Identity,
        ttl: Option<SignedDuration>,
    ) -> Result<IssuedSession> {
        let ttl = ttl.unwrap_or(DEFAULT_TTL);
        if ttl <= SignedDuration::ZERO || ttl > MAX_TTL {
            return Err(ServiceError::Invalid(vec![Violation::new(
                "/ttl",
                "a session lasts 1 second to 30 days (2,592,000 seconds)",
            )]));
        }
        let profile = match self.store.profile_by_identity(ws, &identity).await? {
            Some(profile) => profile,
            None => {
                self.upsert(
                    ws,
                    ctx,
                    Upsert {
                        identities: vec![identity],
                        change: Change::Ops(PropertyOps::default()),
                        company: None,
                        seen: None,
                    },
                )
                .await?
                .profile
            }
        };
        let id = random(ID_LEN).to_ascii_lowercase();
        let secret = random(SECRET_LEN);
        let csrf_token = random(SECRET_LEN);
        let created_at = now();
        let record = SessionRecord {
            id: id.clone(),
            workspace_id: ws,
            profile_id: profile.id,
            secret_hash: hash(&secret),
            csrf_hash: hash(&csrf_token),
            created_by: ctx.actor.clone(),
            created_at,
            expires_at: created_at + ttl,
            revoked_at: None,
        };
        self.store.insert_session(&record).await?;
        Ok(IssuedSession {
            record,
            token: format!("{TOKEN_PREFIX}{id}_{secret}"),
            csrf_token,
        })
    }

    /// The end user a session token stands for; `None` when it is not a live session.
    pub async fn authenticate_session(&self, token: &str) -> Result<Option<EndUser>> {
        let Some((id, secret)) = parse_token(token) else {
            return Ok(None);
        };
        let Some(record) = self.store.session(id).await? else {
            return Ok(None);
        };
        let secret_ok: bool = hash(secret).ct_eq(&record.secret_hash).into();
        if !secret_ok || record.revoked_at.is_some() || record.expires_at <= Timestamp::now() {
            return Ok(None);
        }
        Ok(Some(EndUser {
            workspace: record.workspace_id,
            session_id: record.id,
            profile_id: record.profile_id,
            csrf_hash: record.csrf_hash,
        }))
    }

    /// Revokes one session of the workspace.
    pub async fn revoke_session(&self, ws: WorkspaceId, id: &str) -> Result<()> {
        match self
            .store
            .revoke_sessions(ws, Some(id), None, now())
            .await?
        {
            0 => Err(ServiceError::NotFound(format!("session `{id}`"))),
            _ => Ok(()),
        }
    }

    /// Revokes every session of a profile; returns how many were live.
    pub async fn revoke_profile_sessions(&self, ws: WorkspaceId, id: &ProfileId) -> Result<u64> {
        let profile = self.profile(ws, id).await?;
        let mut revoked = self
            .store
            .revoke_sessions(ws, None, Some(&profile.id), now())
            .await?;
        // Sessions opened on profiles merged into this one reach it too.
        for merge in self.store.merges_into(ws, &profile.id).await? {
            for absorbed in &merge.absorbed {
                revoked += self
                    .store
                    .revoke_sessions(ws, None, Some(&absorbed.id), now())
                    .await?;
            }
        }
        Ok(revoked)
    }

    /// The end users' rules of a workspace.
    pub async fn end_user_settings(&self, ws: WorkspaceId) -> Result<EndUserSettings> {
        Ok(self
            .json_setting(ws, SETTING, "end user settings")
            .await?
            .unwrap_or_default())
    }

    pub async fn set_end_user_settings(
        &self,
        ws: WorkspaceId,
        settings: &EndUserSettings,
    ) -> Result<()> {
        settings.check()?;
        self.save_json_setting(ws, SETTING, settings).await
    }

    /// The end user's own profile, with hidden properties removed.
    pub async fn my_profile(&self, user: &EndUser) -> Result<Profile> {
        let mut profile = self.profile(user.workspace, &user.profile_id).await?;
        let rules = self.end_user_settings(user.workspace).await?.rules()?;
        profile.properties = rules.visible(&profile.properties);
        Ok(profile)
    }

    /// An end user's write to their own profile: only writable, visible paths may change
    /// (403 naming the others), and the workspace's schema applies as to any write.
    pub async fn change_my_profile(
        &self,
        user: &EndUser,
        change: EndUserChange,
        verification: &super::verification::Verification,
    ) -> Result<MyWrite> {
        let rules = self.end_user_settings(user.workspace).await?.rules()?;
        self.change_my_profile_under(user, change, verification, &rules)
            .await
    }

    /// An end user's write under rules of the caller's choosing (a vendor's self-service API
    /// has its own writable fields and verified ones).
    pub async fn change_my_profile_under(
        &self,
        user: &EndUser,
        change: EndUserChange,
        verification: &super::verification::Verification,
        rules: &EndUserRules,
    ) -> Result<MyWrite> {
        let ws = user.workspace;
        // The check is made on the profile as read; if another write lands in between, the
        // version no longer matches and the check is made again on the newer profile.
        let mut attempts = 0;
        loop {
            let current = self.profile(ws, &user.profile_id).await?;
            let wanted = match &change {
                EndUserChange::Change(change) => {
                    super::profiles::edited(change, &current.properties)?.0
                }
                EndUserChange::Replace(sent) => {
                    rules.with_hidden(sent.clone(), &current.properties)
                }
            };
            rules
                .check_write(&current.properties, &wanted)
                .map_err(|profiled_core::DomainError::Invalid(v)| ServiceError::Forbidden(v))?;
            let verified = rules.verified_changes(&current.properties, &wanted);
            if !verified.is_empty() {
                // The whole write waits: checked now (so a code is not sent for a write that
                // would be refused), applied only with the right code.
                let mut candidate = current.clone();
                candidate.properties = wanted.clone();
                self.write_rules(ws).await?.validate(&candidate)?;
                if let Some(pending) = self
                    .verify_change(ws, &current.id, &verified, verification)
                    .await?
                {
                    return Ok(MyWrite::Pending(pending));
                }
            }
            let outcome = self
                .change(
                    ws,
                    &user.context(),
                    &current.id,
                    Change::Replace(wanted),
                    Some(super::Precondition::Versions(vec![current.version])),
                )
                .await;
            match outcome {
                Err(ServiceError::PreconditionFailed { .. }) if attempts < 5 => attempts += 1,
                Err(e) => return Err(e),
                Ok(mut written) => {
                    written.properties = rules.visible(&written.properties);
                    return Ok(MyWrite::Applied(Box::new(written)));
                }
            }
        }
    }
}
