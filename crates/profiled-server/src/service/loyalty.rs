//! Deliveries to a workspace's loyalty service (Akinon's `CUSTOMER_LOYALTY_CARD_SERVICE`):
//! each profile change is POSTed as JSON, signed with HMAC-SHA256 of the body
//! (`X-Profiled-Signature: sha256=<hex>`), and retried with growing pauses when the service
//! fails. Deliveries run in the background of the process that made the change; one still
//! being retried when the process stops is lost (the change itself stays in the change log).

use std::sync::OnceLock;
use std::time::Duration;

use super::compat_settings::LoyaltyService;
use super::verification::hmac_sha256;

/// Tries per delivery.
const ATTEMPTS: u32 = 5;
/// The pause before the second try; it doubles after each failure.
const FIRST_PAUSE: Duration = Duration::from_millis(250);

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client builds")
    })
}

/// `sha256=<hex>` of the body under the secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let hex: String = hmac_sha256(secret.as_bytes(), body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Sends `payload` to the service in the background, retrying failures.
pub fn deliver(service: LoyaltyService, payload: serde_json::Value) {
    tokio::spawn(async move {
        let body = serde_json::to_vec(&payload).expect("a payload serialises");
        let signature = signature(&service.secret, &body);
        let mut pause = FIRST_PAUSE;
        for attempt in 1..=ATTEMPTS {
            let sent = client()
                .post(&service.url)
                .header("content-type", "application/json")
                .header("x-profiled-signature", &signature)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(reply) if reply.status().is_success() => return,
                Ok(reply) => {
                    tracing::warn!(status = %reply.status(), attempt, "the loyalty service refused a profile change")
                }
                Err(e) => tracing::warn!(error = %e, attempt, "the loyalty service is unreachable"),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        tracing::error!(url = %service.url, "a profile change never reached the loyalty service");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmacs() {
        let s = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            s,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
