//! The profile: what the service keeps about one end user.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::identity::Identity;

/// A workspace's numeric id. Every stored row leads with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct WorkspaceId(pub i64);

/// A profile's server-assigned, stable id (a UUID, time-ordered).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProfileId(pub String);

impl std::fmt::Display for ProfileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A profile as stored and served.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub id: ProfileId,
    /// Sorted by kind, then value.
    pub identities: Vec<Identity>,
    /// Set by clients: arbitrary nested JSON.
    pub properties: Map<String, Value>,
    /// Derived by the service (e.g. `percent`); clients cannot write it.
    pub computed: Map<String, Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Increments on every change; served as the ETag.
    pub version: i64,
    /// Top-level property keys whose value was written by `set_once`: across a merge they keep
    /// the oldest profile's value.
    pub set_once: std::collections::BTreeSet<String>,
    /// Where the end user was last seen, from enrichment: country, region, city, ...
    pub location: Map<String, Value>,
    /// The end user's last device, from enrichment: browser, version, os, type, bot.
    pub device: Map<String, Value>,
    /// What the profile's events add up to; `computed` shows it.
    pub activity: crate::activity::Activity,
    /// The id of the company the profile belongs to.
    pub company: Option<String>,
    /// Keys of the segments the profile is a member of; the service keeps them current.
    pub segments: std::collections::BTreeSet<String>,
}

impl Profile {
    /// A new, empty profile. `percent` is the profile's stable random number in [0, 100),
    /// drawn by the caller (the core does no IO, randomness included).
    pub fn new(id: ProfileId, now: Timestamp, percent: f64) -> Self {
        let mut computed = Map::new();
        computed.insert("percent".into(), Value::from(percent));
        Self {
            id,
            identities: Vec::new(),
            properties: Map::new(),
            computed,
            created_at: now,
            updated_at: now,
            version: 1,
            set_once: Default::default(),
            location: Map::new(),
            device: Map::new(),
            activity: Default::default(),
            company: None,
            segments: Default::default(),
        }
    }

    /// Attaches identities, keeping them in their canonical order (kind, then value), the
    /// order every read returns them in.
    pub fn attach(&mut self, identities: impl IntoIterator<Item = Identity>) {
        self.identities.extend(identities);
        self.identities.sort();
        self.identities.dedup();
    }

    /// The identities of `wanted` the profile does not carry yet.
    pub fn missing_identities(&self, wanted: &[Identity]) -> Vec<Identity> {
        wanted
            .iter()
            .filter(|i| !self.identities.contains(i))
            .cloned()
            .collect()
    }

    /// Takes new properties and identities (the version is the caller's to bump). Keys
    /// written by `set_once` are remembered while they exist.
    pub fn edit(
        &mut self,
        properties: Map<String, Value>,
        set_once_filled: impl IntoIterator<Item = String>,
        new_identities: &[Identity],
    ) {
        self.properties = properties;
        self.set_once.extend(set_once_filled);
        let properties = &self.properties;
        self.set_once.retain(|key| properties.contains_key(key));
        self.attach(new_identities.iter().cloned());
    }

    /// Resets the profile as Chameleon's "clear" does: properties, computed values, device and
    /// location emptied, a new `percent` drawn, `computed.cleared_at` set; the id, identities
    /// and company stay.
    pub fn clear(&mut self, now: Timestamp, percent: f64) {
        self.properties.clear();
        self.set_once.clear();
        self.computed.clear();
        self.location.clear();
        self.device.clear();
        self.activity = Default::default();
        self.computed.insert("percent".into(), Value::from(percent));
        self.computed
            .insert("cleared_at".into(), Value::from(now.to_string()));
        self.touch(now);
    }

    /// One of the profile's JSON documents.
    pub fn document(&self, column: crate::filter::JsonColumn) -> &Map<String, Value> {
        use crate::filter::JsonColumn;
        match column {
            JsonColumn::Properties => &self.properties,
            JsonColumn::Computed => &self.computed,
            JsonColumn::Location => &self.location,
            JsonColumn::Device => &self.device,
        }
    }

    /// Records that the profile changed at `now`.
    pub fn touch(&mut self, now: Timestamp) {
        self.version += 1;
        self.updated_at = now.max(self.updated_at);
    }
}

/// Truncates a timestamp to whole microseconds, the precision every backend stores.
pub fn to_micros(ts: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(ts.as_microsecond()).expect("truncation stays in range")
}

/// A profile as read for showing it: identities, times and segments decoded, its JSON
/// documents kept as the text they were stored as. A page of profiles is then served
/// without decoding and re-encoding every property (which was most of a search's time).
#[derive(Debug, Clone)]
pub struct RawProfile {
    pub id: ProfileId,
    /// Sorted by kind, then value.
    pub identities: Vec<Identity>,
    pub properties: StoredObject,
    pub computed: StoredObject,
    pub location: StoredObject,
    pub device: StoredObject,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
    pub company: Option<String>,
    /// Sorted.
    pub segments: Vec<String>,
}

impl From<Profile> for RawProfile {
    fn from(p: Profile) -> Self {
        let raw = StoredObject::of;
        Self {
            properties: raw(&p.properties),
            computed: raw(&p.computed),
            location: raw(&p.location),
            device: raw(&p.device),
            id: p.id,
            identities: p.identities,
            created_at: p.created_at,
            updated_at: p.updated_at,
            version: p.version,
            company: p.company,
            segments: p.segments.into_iter().collect(),
        }
    }
}

/// A JSON object as the service wrote it, kept as text and written out as it is (serde_json
/// treats it as a raw value). Taking it from a column costs no parse and no copy: building
/// a `RawValue` from it cost a copy and a trip through serde for every document read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject(String);

impl StoredObject {
    /// Text read back from storage: only checked for the shape of an object, since only
    /// this service writes these columns, always with serde_json. `None` when it is not one.
    pub fn from_stored(text: String) -> Option<Self> {
        (text.starts_with('{') && text.ends_with('}')).then_some(Self(text))
    }

    pub fn of(map: &Map<String, Value>) -> Self {
        Self(serde_json::to_string(map).expect("a JSON map always serialises"))
    }

    pub fn get(&self) -> &str {
        &self.0
    }
}

impl Serialize for StoredObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        // serde_json's raw-value token: how `RawValue` itself serialises. The test below
        // fails if serde_json ever stops treating it so.
        const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";
        let mut raw = serializer.serialize_struct(RAW_VALUE_TOKEN, 1)?;
        raw.serialize_field(RAW_VALUE_TOKEN, &self.0)?;
        raw.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_object_is_written_out_as_it_is() {
        let text = r#"{"b":1,"a":{"x":[1,2.5,null]},"s":"Zoë \"Z\""}"#;
        let stored = StoredObject::from_stored(text.to_string()).unwrap();
        assert_eq!(serde_json::to_string(&stored).unwrap(), text);
        assert_eq!(
            serde_json::to_value(&stored).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert_eq!(StoredObject::from_stored("[1]".into()), None);
    }
}
