//! Decoding rows into domain values, the same way on every backend: JSON documents travel
//! as text and times as microseconds since the epoch.

use jiff::Timestamp;
use profiled_core::{Identity, Profile, ProfileId, RawProfile, StoredObject};
use serde_json::{Map, Value};

use crate::{Result, StoreError};

pub(crate) fn micros(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

pub(crate) fn from_micros(us: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(us).map_err(|e| StoreError::Corrupt(format!("timestamp {us}: {e}")))
}

/// A profile's columns as read, before decoding.
pub(crate) struct ProfileColumns {
    pub id: String,
    pub properties: String,
    pub computed: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    /// A JSON array of top-level keys.
    pub set_once: String,
    /// A JSON array of `[kind, value]` pairs, in any order.
    pub identities: String,
    pub location: String,
    pub device: String,
    pub activity: String,
    pub company_id: Option<String>,
    /// A JSON array of segment keys.
    pub segments: String,
}

impl ProfileColumns {
    pub fn decode(self) -> Result<Profile> {
        Ok(Profile {
            identities: identities_of(&self.identities)?,
            id: ProfileId(self.id),
            properties: json_object(&self.properties)?,
            computed: json_object(&self.computed)?,
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
            version: self.version,
            set_once: serde_json::from_str(&self.set_once)
                .map_err(|e| StoreError::Corrupt(format!("set_once: {e}")))?,
            location: json_object(&self.location)?,
            device: json_object(&self.device)?,
            activity: serde_json::from_str(&self.activity)
                .map_err(|e| StoreError::Corrupt(format!("activity: {e}")))?,
            company: self.company_id,
            segments: serde_json::from_str(&self.segments)
                .map_err(|e| StoreError::Corrupt(format!("segments: {e}")))?,
        })
    }

    /// The profile with its documents left as stored: for stores that keep the text the
    /// service wrote (SQLite). PostgreSQL's `jsonb` text has its own key order and spacing,
    /// so it goes through [`Self::decode`] instead.
    pub fn decode_raw(self) -> Result<RawProfile> {
        let mut segments: Vec<String> = serde_json::from_str(&self.segments)
            .map_err(|e| StoreError::Corrupt(format!("segments: {e}")))?;
        segments.sort();
        Ok(RawProfile {
            identities: identities_of(&self.identities)?,
            id: ProfileId(self.id),
            properties: raw_object(self.properties)?,
            computed: raw_object(self.computed)?,
            location: raw_object(self.location)?,
            device: raw_object(self.device)?,
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
            version: self.version,
            company: self.company_id,
            segments,
        })
    }
}

/// Identities from a JSON array of `[kind, value]` pairs, in their canonical order.
pub(crate) fn identities_of(pairs: &str) -> Result<Vec<Identity>> {
    let mut identities = match plain_pairs(pairs) {
        Some(identities) => identities,
        None => {
            let pairs: Vec<(String, String)> = serde_json::from_str(pairs)
                .map_err(|e| StoreError::Corrupt(format!("identities: {e}")))?;
            pairs
                .into_iter()
                .map(|(k, v)| Identity::stored(k, v))
                .collect()
        }
    };
    if !identities.is_sorted() {
        identities.sort();
    }
    Ok(identities)
}

/// The pairs of a list read by slicing, when it has no spaces and no escapes: how serde_json
/// and SQLite's JSON functions write most lists (both escape control characters, so none is
/// looked for). Anything else is `None`, for serde_json. Parsing every list with serde_json
/// was 8 % of a search's instructions (docs/benchmarks.md, session 14).
fn plain_pairs(text: &str) -> Option<Vec<Identity>> {
    let mut rest = text.strip_prefix('[')?.strip_suffix(']')?;
    let mut identities = Vec::with_capacity(2);
    while !rest.is_empty() {
        let (kind, after) = plain_string(rest.strip_prefix('[')?)?;
        let (value, after) = plain_string(after.strip_prefix(',')?)?;
        rest = after.strip_prefix(']')?;
        identities.push(Identity::stored(kind.to_owned(), value.to_owned()));
        if let Some(next) = rest.strip_prefix(',') {
            rest = next;
            if rest.is_empty() {
                return None;
            }
        } else if !rest.is_empty() {
            return None;
        }
    }
    Some(identities)
}

/// A string with no escape at the start of `text`, and what follows it.
fn plain_string(text: &str) -> Option<(&str, &str)> {
    let body = text.strip_prefix('"')?;
    let end = memchr::memchr2(b'"', b'\\', body.as_bytes())?;
    (body.as_bytes()[end] == b'"').then(|| (&body[..end], &body[end + 1..]))
}

/// A stored JSON object, taken as it is: checked for the shape of an object and not parsed
/// again (`RawValue::from_string` parsed it in full, which was 9 % of a 20-profile search's
/// CPU: docs/benchmarks.md, session 12).
fn raw_object(text: String) -> Result<StoredObject> {
    StoredObject::from_stored(text)
        .ok_or_else(|| StoreError::Corrupt("a JSON column does not hold an object".into()))
}

/// Identities as a profile row lists them: `[kind, value]` pairs.
pub(crate) fn identities_json(identities: &[Identity]) -> String {
    let pairs: Vec<[&str; 2]> = identities
        .iter()
        .map(|i| [i.kind.as_str(), i.value.as_str()])
        .collect();
    serde_json::to_string(&pairs).expect("strings serialise")
}

/// A profile's JSON documents as written: properties, computed, set_once, location, device
/// and activity.
pub(crate) fn documents(profile: &Profile) -> [String; 6] {
    [
        to_json(&profile.properties),
        to_json(&profile.computed),
        set_once_json(profile),
        to_json(&profile.location),
        to_json(&profile.device),
        serde_json::to_string(&profile.activity).expect("activity serialises"),
    ]
}

pub(crate) fn json_object(text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(StoreError::Corrupt(
            "a JSON column does not hold an object".into(),
        )),
        Err(e) => Err(StoreError::Corrupt(format!(
            "a JSON column does not parse: {e}"
        ))),
    }
}

pub(crate) fn to_json(map: &Map<String, Value>) -> String {
    serde_json::to_string(map).expect("a JSON map always serialises")
}

pub(crate) fn set_once_json(profile: &Profile) -> String {
    serde_json::to_string(&profile.set_once).expect("a set of strings serialises")
}

/// A change log row's columns as read, before decoding.
pub(crate) struct ChangeColumns {
    pub seq: i64,
    pub profile_id: String,
    pub at: i64,
    pub actor: String,
    pub operation: String,
    /// A JSON array of key changes.
    pub changes: String,
    pub origin: Option<String>,
}

impl ChangeColumns {
    pub fn decode(self) -> Result<profiled_core::change::Change> {
        use profiled_core::change::{Change, KeyChange, NewChange, Operation};
        Ok(Change {
            seq: self.seq,
            entry: NewChange {
                profile_id: ProfileId(self.profile_id),
                at: from_micros(self.at)?,
                actor: self.actor,
                operation: Operation::parse(&self.operation)
                    .ok_or_else(|| StoreError::Corrupt(format!("operation {}", self.operation)))?,
                changes: serde_json::from_str::<Vec<KeyChange>>(&self.changes)
                    .map_err(|e| StoreError::Corrupt(format!("changes: {e}")))?,
                origin: self.origin,
            },
        })
    }
}

/// A deletion receipt's columns as read, before decoding.
pub(crate) struct DeletionColumns {
    pub id: String,
    pub profile_id: String,
    pub requested_at: i64,
    pub completed_at: i64,
    pub requested_by: String,
    /// A JSON array of hex digests.
    pub identifiers: String,
}

impl DeletionColumns {
    pub fn decode(self) -> Result<crate::DeletionReceipt> {
        Ok(crate::DeletionReceipt {
            id: self.id,
            profile_id: ProfileId(self.profile_id),
            requested_at: from_micros(self.requested_at)?,
            completed_at: from_micros(self.completed_at)?,
            requested_by: self.requested_by,
            identifiers: serde_json::from_str(&self.identifiers)
                .map_err(|e| StoreError::Corrupt(format!("deletion identifiers: {e}")))?,
        })
    }
}

/// An import record's columns as read, before decoding.
pub(crate) struct ImportColumns {
    pub id: String,
    pub status: String,
    pub format: String,
    pub requested_by: String,
    pub started_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    pub counts: String,
    pub failures: String,
    pub error: Option<String>,
}

impl ImportColumns {
    pub fn decode(self) -> Result<crate::ImportRecord> {
        let corrupt =
            |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("import {what}: {e}"));
        Ok(crate::ImportRecord {
            id: self.id,
            status: self.status,
            format: self.format,
            requested_by: self.requested_by,
            started_at: from_micros(self.started_at)?,
            updated_at: from_micros(self.updated_at)?,
            finished_at: self.finished_at.map(from_micros).transpose()?,
            counts: serde_json::from_str(&self.counts).map_err(|e| corrupt("counts", e))?,
            failures: serde_json::from_str(&self.failures).map_err(|e| corrupt("failures", e))?,
            error: self.error,
        })
    }
}

/// An event row's columns as read, before decoding.
pub(crate) struct EventColumns {
    pub id: String,
    pub profile_id: String,
    pub name: String,
    pub at: i64,
    pub received_at: i64,
    pub properties: String,
    pub context: String,
}

impl EventColumns {
    pub fn decode(self) -> Result<crate::StoredEvent> {
        Ok(crate::StoredEvent {
            id: self.id,
            profile_id: ProfileId(self.profile_id),
            name: self.name,
            at: from_micros(self.at)?,
            received_at: from_micros(self.received_at)?,
            properties: json_object(&self.properties)?,
            context: json_object(&self.context)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored object comes back byte for byte, and serialises as the same JSON, not as a
    /// struct around it (which is what a change of serde_json's raw-value token would give).
    #[test]
    fn a_stored_object_is_served_as_it_was_written() {
        let text = r#"{"plan":"pro","nested":{"a":[1,2.5,null]},"name":"Zoë \"Z\""}"#;
        let raw = raw_object(text.to_string()).unwrap();
        assert_eq!(raw.get(), text);
        let around = serde_json::json!({ "properties": raw });
        assert_eq!(
            around["properties"],
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert_eq!(
            serde_json::to_string(&raw).unwrap(),
            text,
            "written out verbatim"
        );
    }

    #[test]
    fn identities_are_listed_as_kind_value_pairs() {
        let identities = [
            Identity::new_unchecked("user_id", "u\"1"),
            Identity::new_unchecked("email", "a@x.io"),
        ];
        assert_eq!(
            identities_json(&identities),
            r#"[["user_id","u\"1"],["email","a@x.io"]]"#
        );
    }

    proptest::proptest! {
        /// Read by slicing or by serde_json, a written list comes back as it was, sorted.
        #[test]
        fn identities_read_back_as_written(
            pairs in proptest::collection::vec((".{0,6}", "[a-z\"\\\\\u{1}é]{0,6}"), 0..4),
            spaced in proptest::bool::ANY,
        ) {
            let identities: Vec<Identity> = pairs
                .into_iter()
                .map(|(k, v)| Identity::stored(k, v))
                .collect();
            let text = if spaced {
                let pairs: Vec<[&str; 2]> = identities
                    .iter()
                    .map(|i| [i.kind.as_str(), i.value.as_str()])
                    .collect();
                serde_json::to_string_pretty(&pairs).unwrap()
            } else {
                identities_json(&identities)
            };
            let mut expected = identities;
            expected.sort();
            proptest::prop_assert_eq!(identities_of(&text).unwrap(), expected);
        }
    }

    #[test]
    fn a_list_of_identities_that_is_not_one_is_corrupt() {
        for text in [
            "",
            "[",
            "[[\"a\"]]",
            "[[\"a\",\"b\"],]",
            "[[\"a\",\"b\"]x]",
            "{}",
        ] {
            assert!(
                matches!(identities_of(text), Err(StoreError::Corrupt(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_column_that_is_not_an_object_is_corrupt() {
        for text in ["", "[1]", "\"s\"", "{\"a\":1", "null"] {
            assert!(
                matches!(raw_object(text.to_string()), Err(StoreError::Corrupt(_))),
                "{text:?}"
            );
        }
    }
}
