//! Identities: typed external identifiers `(kind, value)`, each pointing at exactly one
//! profile of a workspace.

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Violation, pointer_token};
use crate::limits::Limits;

/// The kind of an identity: `user_id`, `anonymous_id`, `email`, `phone`, `uid`,
/// `account:<compartment>` or any other lower-case name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct IdentityKind(String);

impl IdentityKind {
    pub const USER_ID: &'static str = "user_id";
    pub const ANONYMOUS_ID: &'static str = "anonymous_id";
    pub const EMAIL: &'static str = "email";
    pub const PHONE: &'static str = "phone";

    /// A kind is a lower-case name (`[a-z][a-z0-9_]*`), optionally followed by `:` and a
    /// qualifier of letters, digits, `_`, `-` or `.` (as in `account:web`).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > 64 {
            return Err("an identity kind is at most 64 characters".into());
        }
        let (name, qualifier) = match text.split_once(':') {
            Some((n, q)) => (n, Some(q)),
            None => (text, None),
        };
        let name_ok = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let qualifier_ok = qualifier.is_none_or(|q| {
            !q.is_empty()
                && q.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        });
        if name_ok && qualifier_ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "`{text}` is not an identity kind: use a lower-case name such as user_id, anonymous_id, email, phone or uid (optionally `name:qualifier`)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated, normalised identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub struct Identity {
    /// The kind, e.g. `user_id`, `anonymous_id`, `email`.
    #[schema(value_type = String, example = "user_id")]
    pub kind: IdentityKind,
    /// The value, normalised (emails lower-cased, phone numbers without punctuation).
    #[schema(example = "u1")]
    pub value: String,
}

impl Identity {
    /// Validates and normalises one identity. Emails are trimmed and lower-cased; phone
    /// numbers lose spaces, dashes, dots and parentheses and must then be `+` and digits, or
    /// digits. Other kinds keep their value exactly as sent.
    pub fn parse(kind: &str, value: &str, limits: &Limits) -> Result<Self, String> {
        let kind = IdentityKind::parse(kind)?;
        let value = match kind.as_str() {
            IdentityKind::EMAIL => normalise_email(value)?,
            IdentityKind::PHONE => normalise_phone(value)?,
            _ => value.to_owned(),
        };
        if value.trim().is_empty() {
            return Err("an identity value cannot be empty".into());
        }
        if limits.is_blocked(&value) {
            return Err(format!(
                "`{value}` is a placeholder, not an identifier: it is on the block list of junk values (limits.blocked_identity_values)"
            ));
        }
        if value.len() > limits.max_identity_length {
            return Err(format!(
                "an identity value is at most {} bytes",
                limits.max_identity_length
            ));
        }
        if value.chars().any(char::is_control) {
            return Err("an identity value cannot contain control characters".into());
        }
        Ok(Self { kind, value })
    }

    pub fn new_unchecked(kind: &str, value: &str) -> Self {
        Self::stored(kind.to_owned(), value.to_owned())
    }

    /// An identity as the store keeps it (checked when it was written).
    pub fn stored(kind: String, value: String) -> Self {
        Self {
            kind: IdentityKind(kind),
            value,
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

fn normalise_email(value: &str) -> Result<String, String> {
    let email = value.trim().to_lowercase();
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.contains(char::is_whitespace) =>
        {
            Ok(email)
        }
        _ => Err(format!("`{value}` is not an email address")),
    }
}

fn normalise_phone(value: &str) -> Result<String, String> {
    let phone: String = value
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = phone.strip_prefix('+').unwrap_or(&phone);
    if (3..=20).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(phone)
    } else {
        Err(format!(
            "`{value}` is not a phone number: use digits, optionally with a leading + (E.164)"
        ))
    }
}

/// The identities a request names, as the map clients send: `{"user_id": "u1", "email": "..."}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object, example = json!({"user_id": "u1", "email": "ada@example.com"}))]
pub struct IdentityMap(pub serde_json::Map<String, serde_json::Value>);

impl IdentityMap {
    /// Validates every entry; `base` is the JSON pointer of the map in the request.
    pub fn parse(&self, base: &str, limits: &Limits) -> Result<Vec<Identity>, DomainError> {
        let mut identities = Vec::with_capacity(self.0.len());
        let mut violations = Vec::new();
        for (kind, value) in &self.0 {
            let pointer = format!("{base}/{}", pointer_token(kind));
            let Some(value) = value.as_str() else {
                violations.push(Violation::new(
                    pointer,
                    "an identity value must be a string",
                ));
                continue;
            };
            match Identity::parse(kind, value, limits) {
                Ok(identity) => identities.push(identity),
                Err(message) => violations.push(Violation::new(pointer, message)),
            }
        }
        if identities.len() > limits.max_identities {
            violations.push(Violation::new(
                base,
                format!("at most {} identities per profile", limits.max_identities),
            ));
        }
        if violations.is_empty() {
            Ok(identities)
        } else {
            Err(DomainError::Invalid(violations))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: &str, value: &str) -> Result<Identity, String> {
        Identity::parse(kind, value, &Limits::default())
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            parse("email", " Ada@Example.COM ").unwrap().value,
            "ada@example.com"
        );
        assert!(parse("email", "not-an-email").is_err());
        assert!(parse("email", "a@b@c").is_err());
    }

    #[test]
    fn phones_lose_punctuation() {
        assert_eq!(
            parse("phone", "+1 (555) 010-9999").unwrap().value,
            "+15550109999"
        );
        assert!(parse("phone", "call me").is_err());
    }

    #[test]
    fn kinds_are_lower_case_names_with_optional_qualifier() {
        assert!(parse("user_id", "u1").is_ok());
        assert!(parse("account:web-1", "u1").is_ok());
        assert!(parse("UserId", "u1").is_err());
        assert!(parse("1abc", "u1").is_err());
        assert!(parse("account:", "u1").is_err());
    }

    #[test]
    fn junk_placeholders_are_refused_whatever_their_case() {
        for junk in [
            "null",
            "Undefined",
            " NULL ",
            "0",
            "anonymous",
            "Guest",
            "none",
            "NaN",
            "[object Object]",
            "   ",
        ] {
            assert!(parse("anonymous_id", junk).is_err(), "{junk:?} accepted");
        }
        assert!(parse("user_id", "00").is_ok());
        let open = Limits {
            blocked_identity_values: vec![],
            ..Limits::default()
        };
        assert!(Identity::parse("user_id", "0", &open).is_ok());
    }

    #[test]
    fn values_are_bounded_and_never_empty() {
        assert!(parse("user_id", "").is_err());
        assert!(parse("user_id", &"x".repeat(2000)).is_err());
        assert!(parse("user_id", "a\nb").is_err());
    }

    #[test]
    fn a_map_reports_every_bad_entry_with_its_pointer() {
        let map: IdentityMap =
            serde_json::from_value(serde_json::json!({"user_id": 5, "email": "x", "uid": "ok"}))
                .unwrap();
        let DomainError::Invalid(v) = map.parse("/identities", &Limits::default()).unwrap_err();
        let mut pointers: Vec<_> = v.iter().map(|v| v.pointer.as_str()).collect();
        pointers.sort();
        assert_eq!(pointers, ["/identities/email", "/identities/user_id"]);
    }
}
