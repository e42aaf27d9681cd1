//! Verified changes: an end user's write to a verified property (a phone number, an email)
//! waits for a code sent to the new value, and applies only when repeated with that code.
//!
//! Codes are six random digits, kept only as a hash, valid for a while (10 minutes by
//! default), with at most 5 wrong tries, and at most 5 sent to a profile per hour. The code is
//! tied to the exact verified values asked for: repeating the write with other values is a
//! different change.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use profiled_core::{ProfileId, WorkspaceId};
use profiled_store::VerificationRecord;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::profiles::now;
use super::{Result, Service, ServiceError};

/// Wrong codes allowed per pending change.
pub const MAX_ATTEMPTS: i64 = 5;
/// Codes sent to one profile per hour.
pub const MAX_SENDS_PER_HOUR: u64 = 5;
/// Codes the development sender keeps readable.
const DEV_CODES_KEPT: usize = 100;

/// How codes reach end users.
pub enum Sender {
    /// Verified properties cannot change: there is no way to send a code.
    None,
    /// Logs each code and keeps the last ones readable to admin keys
    /// (`GET /v1/dev/verification-codes`). For development only.
    Development(Mutex<VecDeque<SentCode>>),
    /// POSTs each code as JSON to a URL (an SMS or email provider's bridge), signed with
    /// HMAC-SHA256 of the body in `X-Profiled-Signature: sha256=<hex>` when a secret is set.
    Webhook {
        url: String,
        secret: Option<String>,
        client: reqwest::Client,
    },
}

impl Sender {
    pub fn development() -> Self {
        Sender::Development(Mutex::new(VecDeque::new()))
    }

    pub fn webhook(url: String, secret: Option<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client builds");
        Sender::Webhook {
            url,
            secret,
            client,
        }
    }
}

/// A code as sent: where to, for which change.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SentCode {
    pub workspace_id: i64,
    pub profile_id: String,
    /// The verified properties' new values: where the code goes.
    #[schema(value_type = Object, example = json!({"phone": "+4915112345678"}))]
    pub values: Map<String, Value>,
    #[schema(example = "482913")]
    pub code: String,
    pub expires_at: String,
}

/// What the end user sent along with a write to a verified property.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    pub code: Option<String>,
    pub resend: bool,
}

/// Why a verified change did not apply (yet).
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    /// A code was sent; the write applies when repeated with it.
    CodeSent { expires_at: Timestamp },
}

fn hash(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// HMAC-SHA256 (RFC 2104) of a message.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn random_code() -> String {
    use rand::Rng;
    format!("{:06}", rand::rng().random_range(0..1_000_000))
}

impl Service {
    /// Lets a verified change through: `Ok(None)` when `code` is right (the pending change is
    /// used up), `Ok(Some(Pending))` when a code was (re)sent, and a 400 when the code is
    /// wrong, expired or used up, naming which.
    pub(super) async fn verify_change(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
        values: &Map<String, Value>,
        verification: &Verification,
    ) -> Result<Option<Pending>> {
        let change_hash = hash(&Value::Object(values.clone()).to_string());
        let pending = self
            .store
            .verification(ws, profile)
            .await?
            .filter(|p| p.change_hash == change_hash);
        match (&verification.code, pending) {
            (Some(code), Some(mut pending)) if !verification.resend => {
                if pending.expires_at <= Timestamp::now() {
                    return Err(ServiceError::BadCode(
                        "the code has expired; send the change again (without a code) for a new one".into(),
                    ));
                }
                if pending.attempts >= MAX_ATTEMPTS {
                    return Err(ServiceError::BadCode(format!(
                        "the code was tried {MAX_ATTEMPTS} times; ask for a new one with resend"
                    )));
                }
                if bool::from(hash(code.trim()).ct_eq(&pending.code_hash)) {
                    self.store.save_verification(ws, profile, None).await?;
                    return Ok(None);
                }
                pending.attempts += 1;
                self.store
                    .save_verification(ws, profile, Some(&pending))
                    .await?;
                Err(ServiceError::BadCode(format!(
                    "the code is wrong; {} tries left",
                    MAX_ATTEMPTS - pending.attempts
                )))
            }
            (Some(_), None) if !verification.resend => Err(ServiceError::BadCode(
                "no code was sent for this change: send it without a code first".into(),
            )),
            _ => self
                .send_code(ws, profile, values, change_hash)
                .await
                .map(Some),
        }
    }

    async fn send_code(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
        values: &Map<String, Value>,
        change_hash: Vec<u8>,
    ) -> Result<Pending> {
        if matches!(self.sender, Sender::None) {
            return Err(ServiceError::Unavailable(
                "this property is verified, and no sender of codes is configured (verification.sender)".into(),
            ));
        }
        let at = now();
        let sent = self
            .store
            .count_verification_send(ws, profile, at, at - SignedDuration::from_hours(1))
            .await?;
        if sent > MAX_SENDS_PER_HOUR {
            return Err(ServiceError::TooManyRequests(format!(
                "at most {MAX_SENDS_PER_HOUR} codes are sent to a profile per hour"
            )));
        }
        let code = random_code();
        let expires_at = at + self.code_ttl;
        let message = SentCode {
            workspace_id: ws.0,
            profile_id: profile.0.clone(),
            values: values.clone(),
            code: code.clone(),
            expires_at: expires_at.to_string(),
        };
        self.deliver(&message).await?;
        self.store
            .save_verification(
                ws,
                profile,
                Some(&VerificationRecord {
                    workspace_id: ws,
                    profile_id: profile.clone(),
                    change_hash,
                    code_hash: hash(&code),
                    created_at: at,
                    expires_at,
                    attempts: 0,
                }),
            )
            .await?;
        Ok(Pending::CodeSent { expires_at })
    }

    async fn deliver(&self, message: &SentCode) -> Result<()> {
        match &self.sender {
            Sender::None => Ok(()),
            Sender::Development(kept) => {
                tracing::info!(profile_id = %message.profile_id, code = %message.code, "verification code (development sender)");
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() >= DEV_CODES_KEPT {
                    kept.pop_front();
                }
                kept.push_back(message.clone());
                Ok(())
            }
            Sender::Webhook {
                url,
                secret,
                client,
            } => {
                let body = serde_json::to_vec(message).expect("a code serialises");
                let mut request = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(secret) = secret {
                    let signature: String = hmac_sha256(secret.as_bytes(), &body)
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    request = request.header("x-profiled-signature", format!("sha256={signature}"));
                }
                match request.send().await {
                    Ok(reply) if reply.status().is_success() => Ok(()),
                    Ok(reply) => {
                        tracing::error!(status = %reply.status(), "the verification webhook refused a code");
                        Err(ServiceError::Unavailable(
                            "the code could not be sent; try again".into(),
                        ))
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "the verification webhook is unreachable");
                        Err(ServiceError::Unavailable(
                            "the code could not be sent; try again".into(),
                        ))
                    }
                }
            }
        }
    }

    /// The codes the development sender sent, newest first; `None` when another sender is
    /// configured (the route then does not exist).
    pub fn development_codes(
        &self,
        ws: WorkspaceId,
        profile: Option<&str>,
    ) -> Option<Vec<SentCode>> {
        match &self.sender {
            Sender::Development(kept) => Some(
                kept.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .rev()
                    .filter(|c| c.workspace_id == ws.0 && profile.is_none_or(|p| c.profile_id == p))
                    .cloned()
                    .collect(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..100 {
            let code = random_code();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
