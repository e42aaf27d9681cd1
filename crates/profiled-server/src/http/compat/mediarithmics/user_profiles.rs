//! How a user point's UserProfiles live among a profile's properties, and the property
//! operations each mediarithmics write becomes.
//!
//! A profile holds one UserProfile per compartment and user account (an anonymous one per
//! compartment too): its custom properties at `properties.user_profiles.<compartment>.<account>`
//! (account `$anonymous` without one), and its system times (`creation_ts`,
//! `last_modified_ts`, epoch ms) at `properties.user_profile_times.<compartment>.<account>`,
//! so that replacing a UserProfile keeps when it was created. `$compartment_id` and
//! `$user_account_id` are read from where the UserProfile sits.

use profiled_core::error::pointer_token;
use profiled_core::ops::PropertyOps;
use serde_json::{Map, Value, json};

pub const PROFILES: &str = "user_profiles";
pub const TIMES: &str = "user_profile_times";
const ANONYMOUS: &str = "$anonymous";

/// Which UserProfile of a user point.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    pub compartment: i64,
    /// `None`: the compartment's anonymous UserProfile.
    pub account: Option<String>,
}

impl Slot {
    fn account_key(&self) -> &str {
        self.account.as_deref().unwrap_or(ANONYMOUS)
    }

    /// A JSON pointer (below properties) into one of the two documents.
    fn pointer(&self, root: &str) -> String {
        format!(
            "/{root}/{}/{}",
            self.compartment,
            pointer_token(self.account_key())
        )
    }

    /// The slot a UserProfile names with its own `$compartment_id` and `$user_account_id`
    /// (never inherited from the identifier), the default compartment when it names none.
    pub fn named_by(
        profile: &Map<String, Value>,
        default_compartment: i64,
    ) -> Result<Slot, String> {
        let compartment = match profile.get("$compartment_id") {
            None | Some(Value::Null) => default_compartment,
            Some(v) => integer(v).ok_or("`$compartment_id` is a compartment's integer id")?,
        };
        let account = match profile.get("$user_account_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => return Err("`$user_account_id` is a non-empty string".into()),
        };
        Ok(Slot {
            compartment,
            account,
        })
    }
}

/// An integer, or a string of one (`"1600"`).
pub fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// How an upsert meets the stored UserProfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `force_replace: true`, `FORCE_REPLACE`: the new one replaces it.
    Replace,
    /// `force_replace: false`, `PARTIAL_UPDATE`: its keys are set; with `deep`
    /// (`merge_objects: true`) nested objects merge key by key instead of replacing.
    Merge { deep: bool },
    /// `PARTIAL_DELETE`: its keys are removed.
    PartialDelete,
}

/// The custom properties of a UserProfile as sent: the system's `$` fields left out.
fn custom(profile: &Map<String, Value>) -> Map<String, Value> {
    profile
        .iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every leaf of `value` below `pointer`, for a deep merge; an empty object is a leaf.
fn leaves(pointer: String, value: &Value, out: &mut Map<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                leaves(format!("{pointer}/{}", pointer_token(k)), v, out);
            }
        }
        other => {
            out.insert(pointer, other.clone());
        }
    }
}

/// The operations that write `profile` into `slot` at `now_ms`.
pub fn upsert_ops(
    slot: &Slot,
    strategy: Strategy,
    profile: &Map<String, Value>,
    now_ms: i64,
) -> PropertyOps {
    let at = slot.pointer(PROFILES);
    let times = slot.pointer(TIMES);
    let content = custom(profile);
    let mut ops = PropertyOps::default();
    match strategy {
        Strategy::Replace => {
            ops.set.insert(at, Value::Object(content));
        }
        Strategy::Merge { deep } => {
            ops.set_once.insert(at.clone(), json!({}));
            for (k, v) in &content {
                let pointer = format!("{at}/{}", pointer_token(k));
                if deep {
                    leaves(pointer, v, &mut ops.set);
                } else {
                    ops.set.insert(pointer, v.clone());
                }
            }
        }
        Strategy::PartialDelete => {
            ops.unset = content
                .keys()
                .map(|k| format!("{at}/{}", pointer_token(k)))
                .collect();
            ops.set
                .insert(format!("{times}/last_modified_ts"), json!(now_ms));
            return ops;
        }
    }
    ops.set
        .insert(format!("{times}/last_modified_ts"), json!(now_ms));
    ops.set_once
        .insert(format!("{times}/creation_ts"), json!(now_ms));
    ops
}

/// The operations that remove one UserProfile, or all of them.
pub fn delete_ops(slot: Option<&Slot>) -> PropertyOps {
    let unset = match slot {
        Some(slot) => vec![slot.pointer(PROFILES), slot.pointer(TIMES)],
        None => vec![PROFILES.into(), TIMES.into()],
    };
    PropertyOps {
        unset,
        ..PropertyOps::default()
    }
}

/// A profile's UserProfiles as mediarithmics shows them, in compartment and account order.
pub fn read(properties: &Map<String, Value>) -> Vec<(Slot, Value)> {
    let mut found = Vec::new();
    let Some(Value::Object(compartments)) = properties.get(PROFILES) else {
        return found;
    };
    let times = properties.get(TIMES);
    for (compartment, accounts) in compartments {
        let (Ok(compartment_id), Value::Object(accounts)) = (compartment.parse::<i64>(), accounts)
        else {
            continue;
        };
        for (account, content) in accounts {
            let Value::Object(content) = content else {
                continue;
            };
            let slot = Slot {
                compartment: compartment_id,
                account: (account != ANONYMOUS).then(|| account.clone()),
            };
            let time = |key: &str| {
                times
                    .and_then(|t| t.get(compartment))
                    .and_then(|t| t.get(account))
                    .and_then(|t| t.get(key))
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            let mut view = Map::new();
            view.insert("$compartment_id".into(), json!(compartment_id));
            if let Some(account) = &slot.account {
                view.insert("$user_account_id".into(), json!(account));
            }
            view.insert("$creation_ts".into(), time("creation_ts"));
            view.insert("$last_modified_ts".into(), time("last_modified_ts"));
            for (k, v) in content {
                view.insert(k.clone(), v.clone());
            }
            found.push((slot, Value::Object(view)));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(properties: &Map<String, Value>, ops: &PropertyOps) -> Map<String, Value> {
        ops.apply(properties, "").expect("the operations apply")
    }

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn slots_come_from_the_profiles_own_fields_with_the_default_compartment() {
        let slot = Slot::named_by(
            &object(json!({"$compartment_id": "1606", "$user_account_id": "a.b/c"})),
            1,
        )
        .unwrap();
        assert_eq!(
            slot,
            Slot {
                compartment: 1606,
                account: Some("a.b/c".into())
            }
        );
        assert_eq!(slot.pointer(PROFILES), "/user_profiles/1606/a.b~1c");
        let anonymous = Slot::named_by(&Map::new(), 7).unwrap();
        assert_eq!(
            anonymous,
            Slot {
                compartment: 7,
                account: None
            }
        );
        assert!(Slot::named_by(&object(json!({"$compartment_id": "x"})), 1).is_err());
    }

    #[test]
    fn replace_keeps_the_creation_time_and_merge_keeps_other_keys() {
        let slot = Slot {
            compartment: 1,
            account: Some("u".into()),
        };
        let first = object(json!({"firstname": "David", "options": {"a": 1, "b": 2}}));
        let p = apply(
            &Map::new(),
            &upsert_ops(&slot, Strategy::Replace, &first, 100),
        );
        let replaced = apply(
            &p,
            &upsert_ops(
                &slot,
                Strategy::Replace,
                &object(json!({"lastname": "G"})),
                200,
            ),
        );
        let (_, view) = &read(&replaced)[0];
        assert_eq!(view["$creation_ts"], 100);
        assert_eq!(view["$last_modified_ts"], 200);
        assert_eq!(view["lastname"], "G");
        assert!(view.get("firstname").is_none());

        let shallow = apply(
            &p,
            &upsert_ops(
                &slot,
                Strategy::Merge { deep: false },
                &object(json!({"options": {"a": 9}})),
                300,
            ),
        );
        assert_eq!(read(&shallow)[0].1["options"], json!({"a": 9}));
        assert_eq!(read(&shallow)[0].1["firstname"], "David");
        let deep = apply(
            &p,
            &upsert_ops(
                &slot,
                Strategy::Merge { deep: true },
                &object(json!({"options": {"a": 9}})),
                300,
            ),
        );
        assert_eq!(read(&deep)[0].1["options"], json!({"a": 9, "b": 2}));

        let trimmed = apply(
            &p,
            &upsert_ops(
                &slot,
                Strategy::PartialDelete,
                &object(json!({"options": null})),
                400,
            ),
        );
        assert!(read(&trimmed)[0].1.get("options").is_none());
        assert_eq!(read(&trimmed)[0].1["firstname"], "David");
    }

    #[test]
    fn system_fields_sent_by_clients_are_not_stored() {
        let slot = Slot {
            compartment: 1,
            account: None,
        };
        let sent = object(json!({"$creation_ts": 5, "$compartment_id": 9, "x": 1}));
        let p = apply(
            &Map::new(),
            &upsert_ops(&slot, Strategy::Replace, &sent, 100),
        );
        let (_, view) = &read(&p)[0];
        assert_eq!(view["$creation_ts"], 100);
        assert_eq!(view["$compartment_id"], 1);
        assert!(view.get("$user_account_id").is_none());
    }

    #[test]
    fn deleting_removes_one_profile_or_all() {
        let a = Slot {
            compartment: 1,
            account: Some("a".into()),
        };
        let b = Slot {
            compartment: 2,
            account: None,
        };
        let mut p = apply(
            &Map::new(),
            &upsert_ops(&a, Strategy::Replace, &object(json!({"x": 1})), 1),
        );
        p = apply(
            &p,
            &upsert_ops(&b, Strategy::Replace, &object(json!({"y": 2})), 1),
        );
        assert_eq!(read(&p).len(), 2);
        let one = apply(&p, &delete_ops(Some(&a)));
        assert_eq!(
            read(&one)
                .iter()
                .map(|(s, _)| s.clone())
                .collect::<Vec<_>>(),
            [b]
        );
        assert!(read(&apply(&p, &delete_ops(None))).is_empty());
    }
}
