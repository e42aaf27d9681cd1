//! Computed properties a workspace defines: an aggregate (count, sum, min, max, first, last)
//! of an event property, over every event of a name or only those of a recent window.
//!
//! Every aggregate is order-free: counts and sums add, minima and maxima compare, and first
//! and last compare by time (ties broken by the value's JSON text), so the value does not
//! depend on the order events arrive in.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::activity::{BUILT_IN_KEYS, Event};
use crate::error::DomainError;

/// How the events' values are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Count,
    Sum,
    Min,
    Max,
    First,
    Last,
}

impl Aggregate {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::First => "first",
            Aggregate::Last => "last",
        }
    }
}

/// One computed property: `computed.<key>`.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedDefinition {
    pub key: String,
    /// The event name it aggregates; `None` for every event.
    pub event: Option<String>,
    pub aggregate: Aggregate,
    /// The event property it reads (keys from the top); `None` only for `count`, which then
    /// counts events.
    pub property: Option<Vec<String>>,
    /// Only events at most this old count (recomputed from stored events on each event).
    pub window: Option<SignedDuration>,
}

impl ComputedDefinition {
    /// The most characters in a key.
    pub const MAX_KEY_LEN: usize = 64;

    pub fn matches(&self, event_name: &str) -> bool {
        self.event.as_deref().is_none_or(|name| name == event_name)
    }

    /// Checks what a definition must be, whoever wrote it.
    pub fn validate(&self, max_window: SignedDuration) -> Result<(), DomainError> {
        let key_ok = !self.key.is_empty()
            && self.key.len() <= Self::MAX_KEY_LEN
            && self
                .key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && self.key.as_bytes()[0].is_ascii_lowercase();
        if !key_ok {
            return Err(DomainError::invalid(
                "/key",
                format!(
                    "a key is 1 to {} lower-case letters, digits and `_`, starting with a letter",
                    Self::MAX_KEY_LEN
                ),
            ));
        }
        if BUILT_IN_KEYS.contains(&self.key.as_str()) {
            return Err(DomainError::invalid(
                "/key",
                format!("`{}` is a built-in computed value", self.key),
            ));
        }
        if self.property.is_none() && self.aggregate != Aggregate::Count {
            return Err(DomainError::invalid(
                "/property",
                format!(
                    "`{}` needs the event property it aggregates",
                    self.aggregate.as_str()
                ),
            ));
        }
        if let Some(window) = self.window
            && (window <= SignedDuration::ZERO || window > max_window)
        {
            return Err(DomainError::invalid(
                "/window",
                format!(
                    "a window is positive and at most the event retention ({})",
                    format_window(max_window)
                ),
            ));
        }
        Ok(())
    }

    /// The value over the events of a window ending at `now`; `events` may hold others.
    pub fn over_window<'a>(
        &self,
        events: impl IntoIterator<Item = &'a Event>,
        now: Timestamp,
    ) -> Value {
        let since = self.window.map(|w| now - w);
        let mut state = AggregateState::default();
        for event in events {
            if self.matches(&event.name) && since.is_none_or(|since| event.at >= since) {
                state.add(self, event);
            }
        }
        state.value(self.aggregate)
    }
}

/// Parses `30m`, `24h`, `7d` (or seconds, `s`).
pub fn parse_window(text: &str) -> Option<SignedDuration> {
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    (n > 0).then_some(())?;
    Some(SignedDuration::from_secs(n.checked_mul(seconds)?))
}

/// The shortest of `Nd`, `Nh`, `Nm`, `Ns` that says a window exactly.
pub fn format_window(window: SignedDuration) -> String {
    let s = window.as_secs();
    for (unit, size) in [('d', 86_400), ('h', 3_600), ('m', 60)] {
        if s % size == 0 {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

/// What an aggregate has seen so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AggregateState {
    #[serde(default, skip_serializing_if = "is_default")]
    pub count: u64,
    /// Integer amounts add exactly here; others (and an overflow) in `sum_float`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub sum_int: i64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub sum_float: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<(Timestamp, Value)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<(Timestamp, Value)>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    value == &T::default()
}

impl AggregateState {
    /// Takes one event into account; an event without the property is skipped.
    pub fn add(&mut self, definition: &ComputedDefinition, event: &Event) {
        let value = match &definition.property {
            None => None,
            Some(path) => match lookup(&event.properties, path) {
                None | Some(Value::Null) => return,
                Some(value) => Some(value),
            },
        };
        self.count += 1;
        let Some(value) = value else { return };
        match definition.aggregate {
            Aggregate::Count => {}
            Aggregate::Sum => self.add_to_sum(value),
            Aggregate::Min => keep_number(&mut self.min, value, std::cmp::Ordering::Less),
            Aggregate::Max => keep_number(&mut self.max, value, std::cmp::Ordering::Greater),
            Aggregate::First => keep_timed(
                &mut self.first,
                (event.at, value.clone()),
                std::cmp::Ordering::Less,
            ),
            Aggregate::Last => keep_timed(
                &mut self.last,
                (event.at, value.clone()),
                std::cmp::Ordering::Greater,
            ),
        }
    }

    /// Folds in what another profile's aggregate saw.
    pub fn absorb(&mut self, other: &AggregateState) {
        self.count += other.count;
        match self.sum_int.checked_add(other.sum_int) {
            Some(sum) => self.sum_int = sum,
            None => self.sum_float += other.sum_int as f64,
        }
        self.sum_float += other.sum_float;
        if let Some(v) = &other.min {
            keep_number(&mut self.min, v, std::cmp::Ordering::Less);
        }
        if let Some(v) = &other.max {
            keep_number(&mut self.max, v, std::cmp::Ordering::Greater);
        }
        if let Some(v) = &other.first {
            keep_timed(&mut self.first, v.clone(), std::cmp::Ordering::Less);
        }
        if let Some(v) = &other.last {
            keep_timed(&mut self.last, v.clone(), std::cmp::Ordering::Greater);
        }
    }

    /// The computed value: a number for count and sum, the value seen (or null) otherwise.
    pub fn value(&self, aggregate: Aggregate) -> Value {
        match aggregate {
            Aggregate::Count => self.count.into(),
            Aggregate::Sum if self.sum_float == 0.0 => self.sum_int.into(),
            Aggregate::Sum => serde_json::Number::from_f64(self.sum_int as f64 + self.sum_float)
                .map_or(Value::Null, Value::Number),
            Aggregate::Min => self.min.clone().unwrap_or(Value::Null),
            Aggregate::Max => self.max.clone().unwrap_or(Value::Null),
            Aggregate::First => self.first.as_ref().map_or(Value::Null, |(_, v)| v.clone()),
            Aggregate::Last => self.last.as_ref().map_or(Value::Null, |(_, v)| v.clone()),
        }
    }

    fn add_to_sum(&mut self, value: &Value) {
        let Value::Number(n) = value else { return };
        match n.as_i64().and_then(|i| self.sum_int.checked_add(i)) {
            Some(sum) => self.sum_int = sum,
            None => self.sum_float += n.as_f64().unwrap_or(0.0),
        }
    }
}

fn lookup<'a>(root: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(root.get(first)?, |value, key| value.as_object()?.get(key))
}

/// Keeps the smaller (`Less`) or larger (`Greater`) number; ties by JSON text.
fn keep_number(kept: &mut Option<Value>, candidate: &Value, wanted: std::cmp::Ordering) {
    let Some(c) = candidate.as_f64() else { return };
    let replace = match kept.as_ref().and_then(Value::as_f64) {
        None => true,
        Some(k) => {
            let order = c.total_cmp(&k).then_with(|| {
                candidate
                    .to_string()
                    .cmp(&kept.as_ref().map(Value::to_string).unwrap_or_default())
            });
            order == wanted
        }
    };
    if replace {
        *kept = Some(candidate.clone());
    }
}

/// Keeps the earlier (`Less`) or later (`Greater`) value; ties by JSON text.
fn keep_timed(
    kept: &mut Option<(Timestamp, Value)>,
    candidate: (Timestamp, Value),
    wanted: std::cmp::Ordering,
) {
    let replace = match kept {
        None => true,
        Some((at, value)) => {
            candidate
                .0
                .cmp(at)
                .then_with(|| candidate.1.to_string().cmp(&value.to_string()))
                == wanted
        }
    };
    if replace {
        *kept = Some(candidate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn definition(aggregate: Aggregate, window: Option<&str>) -> ComputedDefinition {
        ComputedDefinition {
            key: "k".into(),
            event: Some("purchase".into()),
            aggregate,
            property: Some(vec!["cart".into(), "total".into()]),
            window: window.and_then(parse_window),
        }
    }

    fn purchase(second: i64, total: Value) -> Event {
        let mut properties = Map::new();
        properties.insert("cart".into(), serde_json::json!({ "total": total }));
        Event {
            name: "purchase".into(),
            at: Timestamp::from_second(second).unwrap(),
            properties,
        }
    }

    #[test]
    fn windows_parse_in_seconds_minutes_hours_and_days() {
        assert_eq!(parse_window("7d"), Some(SignedDuration::from_hours(168)));
        assert_eq!(parse_window("90m"), Some(SignedDuration::from_mins(90)));
        for bad in ["", "d", "0d", "-1d", "7w", "1.5h", "99999999999999999d"] {
            assert_eq!(parse_window(bad), None, "{bad}");
        }
        assert_eq!(format_window(SignedDuration::from_hours(48)), "2d");
        assert_eq!(format_window(SignedDuration::from_mins(90)), "90m");
    }

    #[test]
    fn a_window_counts_only_recent_events() {
        let events = [
            purchase(0, 1.into()),
            purchase(100_000, 2.into()),
            purchase(200_000, 4.into()),
        ];
        let now = Timestamp::from_second(200_000).unwrap();
        let sum = definition(Aggregate::Sum, Some("2d"));
        assert_eq!(sum.over_window(&events, now), 6);
        assert_eq!(
            definition(Aggregate::Sum, None).over_window(&events, now),
            7
        );
        assert_eq!(
            definition(Aggregate::First, Some("1d")).over_window(&events, now),
            4
        );
    }

    #[test]
    fn events_without_the_property_or_of_another_name_are_skipped() {
        let mut other = purchase(5, 3.into());
        other.name = "view".into();
        let events = [purchase(1, Value::Null), other, purchase(2, "x".into())];
        let now = Timestamp::from_second(10).unwrap();
        assert_eq!(
            definition(Aggregate::Count, None).over_window(&events, now),
            1
        );
        assert_eq!(
            definition(Aggregate::Sum, None).over_window(&events, now),
            0
        );
        assert_eq!(
            definition(Aggregate::Max, None).over_window(&events, now),
            Value::Null
        );
        assert_eq!(
            definition(Aggregate::Last, None).over_window(&events, now),
            "x"
        );
    }

    #[test]
    fn definitions_are_validated() {
        let year = SignedDuration::from_hours(24 * 365);
        let mut d = definition(Aggregate::Sum, Some("7d"));
        assert!(d.validate(year).is_ok());
        d.key = "session_count".into();
        assert!(d.validate(year).is_err());
        d.key = "Bad Key".into();
        assert!(d.validate(year).is_err());
        d.key = "total".into();
        d.property = None;
        assert!(d.validate(year).is_err());
        d.aggregate = Aggregate::Count;
        assert!(d.validate(year).is_ok());
        d.window = parse_window("400d");
        assert!(d.validate(year).is_err());
    }

    proptest! {
        #[test]
        fn every_aggregate_is_free_of_order(
            totals in prop::collection::vec((0i64..1_000, -100i64..100, any::<bool>()), 0..30),
            aggregate in prop::sample::select(vec![Aggregate::Count, Aggregate::Sum, Aggregate::Min, Aggregate::Max, Aggregate::First, Aggregate::Last]),
        ) {
            let events: Vec<Event> = totals
                .iter()
                .map(|(s, t, as_text)| purchase(*s, if *as_text { t.to_string().into() } else { (*t).into() }))
                .collect();
            let d = definition(aggregate, None);
            let now = Timestamp::from_second(2_000).unwrap();
            let forward = d.over_window(&events, now);
            let backward = d.over_window(events.iter().rev(), now);
            prop_assert_eq!(forward, backward);
            // Split in two and absorbed: the same as seen together.
            let (a, b) = events.split_at(events.len() / 2);
            let mut left = AggregateState::default();
            a.iter().for_each(|e| left.add(&d, e));
            let mut right = AggregateState::default();
            b.iter().for_each(|e| right.add(&d, e));
            right.absorb(&left);
            prop_assert_eq!(right.value(aggregate), d.over_window(&events, now));
        }
    }
}
