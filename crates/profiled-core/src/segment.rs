//! Segments: named filters whose members the service keeps current. A profile's membership
//! is decided here, from the profile alone, so every write path and the background
//! reconciliation decide it the same way.

use jiff::Timestamp;

use crate::filter::{Context, Field, Filter};
use crate::{DomainError, Profile};

/// A live segment: its key and the filter its members match.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRule {
    pub key: String,
    pub filter: Filter,
}

impl SegmentRule {
    pub const MAX_KEY_LEN: usize = 64;

    /// A rule, once its key and filter are acceptable: keys are short slugs (they travel in
    /// URLs, change log keys and compat APIs), and a filter may not depend on segments
    /// (membership would then depend on the order rules are evaluated in).
    pub fn new(key: &str, filter: Filter) -> Result<Self, DomainError> {
        let key_ok = !key.is_empty()
            && key.len() <= Self::MAX_KEY_LEN
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            && key.as_bytes()[0].is_ascii_alphanumeric();
        if !key_ok {
            return Err(DomainError::invalid(
                "/key",
                format!(
                    "a segment key is 1 to {} lower-case letters, digits, `_` and `-`, starting with a letter or digit",
                    Self::MAX_KEY_LEN
                ),
            ));
        }
        if filter.names_field(&|f| matches!(f, Field::Segments)) {
            return Err(DomainError::invalid(
                "/filter",
                "a segment's filter cannot name `segments`",
            ));
        }
        Ok(Self {
            key: key.to_owned(),
            filter,
        })
    }
}

/// The segments a write made a profile enter and leave, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moves {
    pub entered: Vec<String>,
    pub left: Vec<String>,
}

impl Moves {
    pub fn is_empty(&self) -> bool {
        self.entered.is_empty() && self.left.is_empty()
    }
}

/// Decides the profile's membership of each rule's segment at `now`, updates
/// `profile.segments`, and says what moved. Keys no rule names are left as they are: the
/// segment is being created or deleted elsewhere, and its own reconciliation settles them.
pub fn place(rules: &[SegmentRule], profile: &mut Profile, now: Timestamp) -> Moves {
    let ctx = Context { now };
    let mut moves = Moves::default();
    for rule in rules {
        let member = rule.filter.matches(profile, &ctx);
        let was = profile.segments.contains(&rule.key);
        if member && !was {
            profile.segments.insert(rule.key.clone());
            moves.entered.push(rule.key.clone());
        } else if was && !member {
            profile.segments.remove(&rule.key);
            moves.left.push(rule.key.clone());
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProfileId;
    use proptest::prelude::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    fn rule(key: &str, filter: &str) -> SegmentRule {
        SegmentRule::new(key, Filter::parse(filter).unwrap()).unwrap()
    }

    fn profile(plan: &str, visits: i64) -> Profile {
        let mut p = Profile::new(ProfileId("p1".into()), now(), 10.0);
        p.properties = json!({"plan": plan, "visits": visits})
            .as_object()
            .unwrap()
            .clone();
        p
    }

    #[test]
    fn a_write_enters_and_leaves_segments() {
        let rules = [
            rule("pro", r#"properties.plan = "pro""#),
            rule("active", "properties.visits >= 3"),
        ];
        let mut p = profile("pro", 1);
        let moves = place(&rules, &mut p, now());
        assert_eq!(moves.entered, vec!["pro"]);
        assert!(moves.left.is_empty());

        p.properties.insert("plan".into(), json!("free"));
        p.properties.insert("visits".into(), json!(5));
        let moves = place(&rules, &mut p, now());
        assert_eq!(moves.entered, vec!["active"]);
        assert_eq!(moves.left, vec!["pro"]);
        assert_eq!(p.segments.iter().collect::<Vec<_>>(), vec!["active"]);
    }

    #[test]
    fn keys_no_rule_names_are_left_alone() {
        let mut p = profile("pro", 1);
        p.segments.insert("being-deleted".into());
        let moves = place(&[rule("pro", r#"properties.plan = "pro""#)], &mut p, now());
        assert_eq!(moves.entered, vec!["pro"]);
        assert!(p.segments.contains("being-deleted"));
    }

    #[test]
    fn keys_and_filters_are_checked() {
        for bad in ["", "Pro", "-x", "a b", &"k".repeat(65)] {
            assert!(SegmentRule::new(bad, Filter::all()).is_err(), "{bad:?}");
        }
        assert!(SegmentRule::new("trial-7d", Filter::all()).is_ok());
        let err = SegmentRule::new("x", Filter::parse(r#"segments = "y""#).unwrap());
        assert!(err.is_err());
    }

    proptest! {
        /// Placing twice moves nothing the second time, and afterwards the profile is in
        /// exactly the segments whose filter it matches.
        #[test]
        fn placing_is_idempotent_and_exact(plan in "(free|pro|team)", visits in 0i64..10, held in proptest::collection::btree_set("(pro|active|big)", 0..3)) {
            let rules = [
                rule("pro", r#"properties.plan = "pro""#),
                rule("active", "properties.visits >= 3"),
                rule("big", r#"properties.plan = "team" or properties.visits > 7"#),
            ];
            let mut p = profile(&plan, visits);
            p.segments = held;
            place(&rules, &mut p, now());
            prop_assert!(place(&rules, &mut p, now()).is_empty());
            let ctx = Context { now: now() };
            for r in &rules {
                prop_assert_eq!(p.segments.contains(&r.key), r.filter.matches(&p, &ctx));
            }
        }
    }
}
