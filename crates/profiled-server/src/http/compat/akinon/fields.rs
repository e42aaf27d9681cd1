//! Akinon's UserProfile fields: checked as Django REST framework checks them, and read from
//! (and written to) the properties of the same names.

use std::collections::BTreeMap;

use profiled_core::{Identity, Limits, Profile, ProfileId};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub use crate::service::compat_settings::AKINON_FIELDS as FIELDS;

/// DRF's field errors: each field with its messages.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Names at most this long, as Akinon's serializer allows.
const MAX_NAME: usize = 50;

fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) if n.as_i64() == Some(1) => Some(true),
        Value::Number(n) if n.as_i64() == Some(0) => Some(false),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// One field's value, checked: what to store, or DRF's message.
fn check(field: &str, value: &Value) -> Result<Value, String> {
    let not_null = || "This field may not be null.".to_owned();
    match field {
        "first_name" | "last_name" => match value {
            Value::String(s) if s.chars().count() <= MAX_NAME => Ok(json!(s.trim())),
            Value::String(_) => Err(format!(
                "Ensure this field has no more than {MAX_NAME} characters."
            )),
            Value::Null => Err(not_null()),
            _ => Err("Not a valid string.".into()),
        },
        "email_allowed" | "sms_allowed" | "whatsapp_allowed" => match value {
            Value::Null => Err(not_null()),
            v => boolean(v)
                .map(Value::Bool)
                .ok_or_else(|| "Must be a valid boolean.".into()),
        },
        "call_allowed" => match value {
            Value::Null => Ok(Value::Null),
            v => boolean(v)
                .map(Value::Bool)
                .ok_or_else(|| "Must be a valid boolean.".into()),
        },
        "email" => match value {
            Value::String(s) => Identity::parse("email", s, &Limits::default())
                .map(|_| json!(s.trim()))
                .map_err(|_| "Enter a valid email address.".into()),
            Value::Null => Err(not_null()),
            _ => Err("Enter a valid email address.".into()),
        },
        "phone" => match value {
            Value::Null => Ok(Value::Null),
            Value::String(s) if s.trim().len() <= 32 => Ok(json!(s.trim())),
            Value::String(_) => Err("Ensure this field has no more than 32 characters.".into()),
            _ => Err("Not a valid string.".into()),
        },
        "date_of_birth" => match value {
            Value::Null => Ok(Value::Null),
            Value::String(s) if s.len() == 10 && s.parse::<jiff::civil::Date>().is_ok() => {
                Ok(json!(s))
            }
            _ => Err("Date has wrong format. Use one of these formats instead: YYYY-MM-DD.".into()),
        },
        "gender" => match value {
            Value::Null => Ok(Value::Null),
            Value::String(s) if s == "male" || s == "female" => Ok(json!(s)),
            other => Err(format!(
                "\"{}\" is not a valid choice.",
                other.as_str().unwrap_or(&other.to_string())
            )),
        },
        "language_code" => match value {
            Value::String(s) if s.len() <= 16 => Ok(json!(s)),
            Value::Null => Err(not_null()),
            _ => Err("Not a valid string.".into()),
        },
        "attributes" => match value {
            Value::Object(_) => Ok(value.clone()),
            other => Err(format!(
                "Expected a dictionary of items but got type \"{}\".",
                match other {
                    Value::Null => "NoneType",
                    Value::Bool(_) => "bool",
                    Value::Number(_) => "int",
                    Value::String(_) => "str",
                    Value::Array(_) => "list",
                    Value::Object(_) => "dict",
                }
            )),
        },
        _ => unreachable!("only Akinon's fields are checked"),
    }
}

/// The properties an update sets: every Akinon field the body carries, checked. A full
/// update (`PUT`) must carry the workspace's required fields. Read-only fields (`id`,
/// `date_joined`, `avatar`, `genders`) and unknown keys are ignored, as DRF does.
pub fn update(
    body: &Map<String, Value>,
    required: &[String],
    partial: bool,
) -> Result<Map<String, Value>, FieldErrors> {
    let mut set = Map::new();
    let mut errors = FieldErrors::new();
    for field in FIELDS {
        match body.get(field) {
            Some(value) => match check(field, value) {
                Ok(value) => {
                    set.insert(field.to_owned(), value);
                }
                Err(message) => {
                    errors.insert(field.to_owned(), vec![message]);
                }
            },
            None if !partial && required.iter().any(|r| r == field) => {
                errors.insert(field.to_owned(), vec!["This field is required.".into()]);
            }
            None => {}
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// Akinon's integer id for a profile: 53 bits of the SHA-256 of its id, so it is stable,
/// and exact in JavaScript.
pub fn integer_id(id: &ProfileId) -> u64 {
    let digest = Sha256::digest(id.0.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) >> 11).max(1)
}

/// A profile as Akinon's UserProfile.
pub fn view(profile: &Profile) -> Value {
    let p = &profile.properties;
    let text = |key: &str| {
        p.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let flag = |key: &str| p.get(key).and_then(Value::as_bool).unwrap_or(false);
    let nullable_text = |key: &str| p.get(key).and_then(Value::as_str).map(str::to_owned);
    let email = nullable_text("email")
        .or_else(|| {
            profile
                .identities
                .iter()
                .find(|i| i.kind.as_str() == "email")
                .map(|i| i.value.clone())
        })
        .unwrap_or_default();
    let gender = nullable_text("gender").filter(|g| g == "male" || g == "female");
    json!({
        "id": integer_id(&profile.id),
        "first_name": text("first_name"),
        "last_name": text("last_name"),
        "email_allowed": flag("email_allowed"),
        "sms_allowed": flag("sms_allowed"),
        "whatsapp_allowed": flag("whatsapp_allowed"),
        "call_allowed": p.get("call_allowed").and_then(Value::as_bool),
        "avatar": nullable_text("avatar"),
        "email": email,
        "phone": nullable_text("phone"),
        "date_of_birth": nullable_text("date_of_birth"),
        "gender": gender,
        "genders": ["male", "female"],
        "language_code": text("language_code"),
        "attributes": p.get("attributes").filter(|a| a.is_object()).cloned().unwrap_or_else(|| json!({})),
        "date_joined": profile.created_at.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_storefronts_partial_update_is_taken_whole() {
        let set = update(
            &body(json!({"first_name": "Ada", "last_name": "Lovelace", "phone": "+905551112233",
                "date_of_birth": "1990-12-10", "gender": "female", "sms_allowed": true, "email_allowed": "false",
                "id": 7, "date_joined": "x", "unknown": 1})),
            &[],
            true,
        )
        .unwrap();
        assert_eq!(set.len(), 7);
        assert_eq!(set["email_allowed"], false);
        assert!(!set.contains_key("id"));
    }

    #[test]
    fn bad_values_get_drf_messages_per_field() {
        let errors = update(
            &body(
                json!({"first_name": "x".repeat(51), "email": "nope", "gender": "other",
                "date_of_birth": "10/12/1990", "attributes": "s", "sms_allowed": "maybe"}),
            ),
            &[],
            true,
        )
        .unwrap_err();
        assert_eq!(
            errors["first_name"],
            ["Ensure this field has no more than 50 characters."]
        );
        assert_eq!(errors["email"], ["Enter a valid email address."]);
        assert_eq!(errors["gender"], ["\"other\" is not a valid choice."]);
        assert!(errors["date_of_birth"][0].starts_with("Date has wrong format"));
        assert_eq!(
            errors["attributes"],
            ["Expected a dictionary of items but got type \"str\"."]
        );
        assert_eq!(errors["sms_allowed"], ["Must be a valid boolean."]);
    }

    #[test]
    fn a_full_update_needs_the_required_fields_only() {
        let required = vec!["first_name".to_owned(), "phone".to_owned()];
        let errors = update(&body(json!({"first_name": "Ada"})), &required, false).unwrap_err();
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["phone"]);
        assert!(update(&body(json!({"first_name": "Ada"})), &required, true).is_ok());
        assert!(update(&body(json!({})), &[], false).is_ok());
    }

    #[test]
    fn ids_are_stable_positive_and_javascript_safe() {
        let id = ProfileId("0192f3a4-b5c6-7d8e-9f00-112233445566".into());
        assert_eq!(integer_id(&id), integer_id(&id));
        assert!(integer_id(&id) < (1 << 53));
        assert_ne!(integer_id(&id), integer_id(&ProfileId("other".into())));
    }
}
