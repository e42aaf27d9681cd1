//! What a profile's events add up to: first and last seen, sessions, counts per event name,
//! and the aggregates a workspace defines ([`crate::aggregate`]).
//!
//! The state is a function of the *set* of events seen, not of their arrival order: sessions
//! are kept as time intervals and coalesced, counts add, minima and maxima compare. So a late
//! event, a retried batch in another order, or a merge of two profiles (the union of their
//! events) gives the same result as the events arriving in time order.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::aggregate::{AggregateState, ComputedDefinition};
use crate::filter::format_canonical;

/// The most sessions kept as intervals. Older ones are only counted: an event older than
/// every kept session can then no longer be placed, and counts toward no session.
pub const MAX_SESSIONS: usize = 64;

/// The computed keys activity writes; user-defined computed properties may not take them.
pub const BUILT_IN_KEYS: [&str; 7] = [
    "first_seen_at",
    "last_seen_at",
    "session_count",
    "event_counts",
    "last_event_at",
    "percent",
    "cleared_at",
];

/// How a workspace turns events into computed values.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRules {
    /// The inactivity after which the next event starts a new session.
    pub session_gap: SignedDuration,
    /// The workspace's own computed properties.
    pub definitions: Vec<ComputedDefinition>,
}

impl Default for ActivityRules {
    fn default() -> Self {
        Self {
            session_gap: SignedDuration::from_mins(90),
            definitions: Vec::new(),
        }
    }
}

impl ActivityRules {
    /// Whether `computed.<key>` is derived from events (and so is not summed by a merge).
    pub fn derives(&self, key: &str) -> bool {
        BUILT_IN_KEYS.contains(&key) || self.definitions.iter().any(|d| d.key == key)
    }
}

/// An event as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub at: Timestamp,
    pub properties: Map<String, Value>,
}

/// A session: the time of its first and last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Session(pub Timestamp, pub Timestamp);

/// What a profile's events add up to (stored with the profile, never served as is).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Timestamp>,
    /// Oldest first; never overlapping, and more than the session gap apart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<Session>,
    /// Sessions older than the kept ones.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub older_sessions: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub event_counts: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last_event_at: BTreeMap<String, Timestamp>,
    /// The state of each user-defined computed property without a window, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aggregates: BTreeMap<String, AggregateState>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Activity {
    pub fn is_empty(&self) -> bool {
        self == &Activity::default()
    }

    /// Takes one event into account.
    pub fn record(&mut self, event: &Event, rules: &ActivityRules) {
        let (gap, definitions) = (rules.session_gap, &rules.definitions);
        self.first_seen_at = Some(self.first_seen_at.map_or(event.at, |t| t.min(event.at)));
        self.last_seen_at = Some(self.last_seen_at.map_or(event.at, |t| t.max(event.at)));
        self.add_session(Session(event.at, event.at), gap);
        *self.event_counts.entry(event.name.clone()).or_default() += 1;
        let last = self
            .last_event_at
            .entry(event.name.clone())
            .or_insert(event.at);
        *last = (*last).max(event.at);
        for definition in definitions.iter().filter(|d| d.window.is_none()) {
            if definition.matches(&event.name) {
                self.aggregates
                    .entry(definition.key.clone())
                    .or_default()
                    .add(definition, event);
            }
        }
    }

    /// Folds another profile's activity into this one, as if this profile had seen its
    /// events too.
    pub fn absorb(&mut self, other: &Activity, rules: &ActivityRules) {
        let gap = rules.session_gap;
        self.first_seen_at = min_some(self.first_seen_at, other.first_seen_at);
        self.last_seen_at = self.last_seen_at.max(other.last_seen_at);
        self.older_sessions += other.older_sessions;
        for session in &other.sessions {
            self.add_session(*session, gap);
        }
        for (name, n) in &other.event_counts {
            *self.event_counts.entry(name.clone()).or_default() += n;
        }
        for (name, at) in &other.last_event_at {
            let last = self.last_event_at.entry(name.clone()).or_insert(*at);
            *last = (*last).max(*at);
        }
        for (key, state) in &other.aggregates {
            self.aggregates
                .entry(key.clone())
                .or_default()
                .absorb(state);
        }
    }

    pub fn session_count(&self) -> u64 {
        self.older_sessions + self.sessions.len() as u64
    }

    /// Writes the built-in computed values (and the aggregates without a window) into a
    /// profile's `computed`. A profile that has seen no event keeps its `computed` as is.
    pub fn write_computed(&self, computed: &mut Map<String, Value>, rules: &ActivityRules) {
        let (Some(first), Some(last)) = (self.first_seen_at, self.last_seen_at) else {
            return;
        };
        computed.insert("first_seen_at".into(), format_canonical(first).into());
        computed.insert("last_seen_at".into(), format_canonical(last).into());
        computed.insert("session_count".into(), self.session_count().into());
        computed.insert(
            "event_counts".into(),
            Value::Object(
                self.event_counts
                    .iter()
                    .map(|(name, n)| (name.clone(), Value::from(*n)))
                    .collect(),
            ),
        );
        computed.insert(
            "last_event_at".into(),
            Value::Object(
                self.last_event_at
                    .iter()
                    .map(|(name, at)| (name.clone(), format_canonical(*at).into()))
                    .collect(),
            ),
        );
        for definition in rules.definitions.iter().filter(|d| d.window.is_none()) {
            let state = self
                .aggregates
                .get(&definition.key)
                .cloned()
                .unwrap_or_default();
            computed.insert(definition.key.clone(), state.value(definition.aggregate));
        }
    }

    /// Inserts a session and coalesces it with its neighbours closer than `gap`.
    fn add_session(&mut self, new: Session, gap: SignedDuration) {
        if self.older_sessions > 0
            && let Some(oldest) = self.sessions.first()
            && new.1 < oldest.0 - gap
        {
            // It falls among sessions only counted: which one is no longer known.
            return;
        }
        let at = self.sessions.partition_point(|s| s.0 < new.0);
        self.sessions.insert(at, new);
        let mut coalesced: Vec<Session> = Vec::with_capacity(self.sessions.len());
        for session in self.sessions.drain(..) {
            match coalesced.last_mut() {
                Some(previous) if session.0.duration_since(previous.1) <= gap => {
                    previous.1 = previous.1.max(session.1);
                }
                _ => coalesced.push(session),
            }
        }
        self.sessions = coalesced;
        if self.sessions.len() > MAX_SESSIONS {
            let excess = self.sessions.len() - MAX_SESSIONS;
            self.sessions.drain(..excess);
            self.older_sessions += excess as u64;
        }
    }
}

fn min_some(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Aggregate;
    use proptest::prelude::*;

    const GAP: SignedDuration = SignedDuration::from_mins(90);

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + minutes * 60).unwrap()
    }

    fn event(name: &str, minutes: i64, amount: i64) -> Event {
        let mut properties = Map::new();
        properties.insert("amount".into(), amount.into());
        Event {
            name: name.into(),
            at: at(minutes),
            properties,
        }
    }

    fn rules() -> ActivityRules {
        ActivityRules {
            session_gap: GAP,
            definitions: definitions(),
        }
    }

    fn definitions() -> Vec<ComputedDefinition> {
        [
            Aggregate::Count,
            Aggregate::Sum,
            Aggregate::Min,
            Aggregate::Max,
            Aggregate::First,
            Aggregate::Last,
        ]
        .into_iter()
        .map(|aggregate| ComputedDefinition {
            key: format!("purchase_{}", aggregate.as_str()),
            event: Some("purchase".into()),
            aggregate,
            property: (aggregate != Aggregate::Count).then(|| vec!["amount".into()]),
            window: None,
        })
        .collect()
    }

    fn replay(events: &[Event]) -> Activity {
        let mut activity = Activity::default();
        for e in events {
            activity.record(e, &rules());
        }
        activity
    }

    #[test]
    fn a_new_session_starts_after_ninety_minutes_of_inactivity() {
        let events = [
            event("view", 0, 1),
            event("view", 90, 1),
            event("view", 181, 1),
        ];
        let activity = replay(&events);
        assert_eq!(activity.session_count(), 2);
        assert_eq!(activity.first_seen_at, Some(at(0)));
        assert_eq!(activity.last_seen_at, Some(at(181)));
    }

    #[test]
    fn a_late_event_can_join_two_sessions_into_one() {
        let mut activity = replay(&[event("view", 0, 1), event("view", 150, 1)]);
        assert_eq!(activity.session_count(), 2);
        activity.record(&event("view", 75, 1), &rules());
        assert_eq!(activity.session_count(), 1);
    }

    #[test]
    fn computed_values_are_written_in_canonical_form() {
        let activity = replay(&[
            event("purchase", 0, 5),
            event("purchase", 10, 7),
            event("view", 20, 0),
        ]);
        let mut computed = Map::new();
        activity.write_computed(&mut computed, &rules());
        assert_eq!(computed["session_count"], 1);
        assert_eq!(computed["event_counts"]["purchase"], 2);
        assert_eq!(computed["last_event_at"]["view"], format_canonical(at(20)));
        assert_eq!(computed["purchase_sum"], 12);
        assert_eq!(computed["purchase_min"], 5);
        assert_eq!(computed["purchase_max"], 7);
        assert_eq!(computed["purchase_first"], 5);
        assert_eq!(computed["purchase_last"], 7);
        assert_eq!(computed["purchase_count"], 2);
    }

    #[test]
    fn only_counted_sessions_take_no_placeable_event() {
        let events: Vec<Event> = (0..MAX_SESSIONS as i64 + 5)
            .map(|i| event("view", 1_000 + i * 200, 1))
            .collect();
        let mut activity = replay(&events);
        assert_eq!(activity.sessions.len(), MAX_SESSIONS);
        assert_eq!(activity.session_count(), MAX_SESSIONS as u64 + 5);
        activity.record(&event("view", 0, 1), &rules());
        assert_eq!(activity.session_count(), MAX_SESSIONS as u64 + 5);
        assert_eq!(activity.first_seen_at, Some(at(0)));
    }

    fn events() -> impl Strategy<Value = Vec<Event>> {
        prop::collection::vec(
            (
                prop::sample::select(vec!["view", "purchase"]),
                0i64..2_000,
                -50i64..50,
            ),
            0..40,
        )
        .prop_map(|v| v.into_iter().map(|(n, m, a)| event(n, m, a)).collect())
    }

    proptest! {
        #[test]
        fn the_order_of_events_does_not_change_the_result(
            events in events(),
            seed in any::<u64>(),
        ) {
            let mut shuffled = events.clone();
            // A deterministic shuffle from the seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut sorted = events.clone();
            sorted.sort_by_key(|e| e.at);
            prop_assert_eq!(replay(&shuffled), replay(&sorted));
        }

        #[test]
        fn absorbing_a_profile_is_seeing_its_events(
            mine in events(),
            theirs in events(),
        ) {
            let mut merged = replay(&mine);
            merged.absorb(&replay(&theirs), &rules());
            let all: Vec<Event> = mine.iter().chain(&theirs).cloned().collect();
            prop_assert_eq!(merged, replay(&all));
        }

        #[test]
        fn sessions_are_the_gaps_longer_than_the_timeout_plus_one(events in events()) {
            prop_assume!(!events.is_empty());
            let mut times: Vec<Timestamp> = events.iter().map(|e| e.at).collect();
            times.sort();
            let gaps = times.windows(2).filter(|w| w[1].duration_since(w[0]) > GAP).count();
            prop_assert_eq!(replay(&events).session_count(), gaps as u64 + 1);
        }
    }
}
