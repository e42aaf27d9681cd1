//! The SQL compiled from a filter selects exactly the profiles the reference evaluator
//! matches: random profiles, random filters, type mismatches, missing keys and nulls included.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;
use profiled_core::filter::{CompareOp, Context, Field, Filter, Literal, Segment, TimeLiteral};
use profiled_core::{Identity, Profile, ProfileId};
use profiled_store::{SearchQuery, SortKey, Store};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-2i64..4).prop_map(|n| json!(n)),
        prop_oneof![Just(0.5), Just(1.0), Just(2.5), Just(-1.5)].prop_map(|f| json!(f)),
        prop_oneof![
            Just(""),
            Just("a"),
            Just("b"),
            Just("ab"),
            Just("ba"),
            Just("[x"),
            Just("{"),
            Just("1"),
            Just("2026-01-01T00:00:00Z"),
            Just("2026-06-01T00:00:00.000Z"),
            Just("2025-12-31T23:59:59.999999Z"),
            Just("2026-06-01T00:00:00.5Z"),
        ]
        .prop_map(|s| json!(s)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => leaf(),
        1 => prop::collection::vec(leaf(), 0..3).prop_map(Value::Array),
        1 => (leaf(), leaf()).prop_map(|(x, y)| json!({"x": x, "y": y})),
    ]
}

fn properties() -> impl Strategy<Value = serde_json::Map<String, Value>> {
    prop::collection::btree_map(prop_oneof![Just("a"), Just("b"), Just("c")], value(), 0..4)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        4 => leaf().prop_map(|v| match v {
            Value::Null => Literal::Null,
            Value::Bool(b) => Literal::Bool(b),
            Value::Number(n) => Literal::Number(n),
            Value::String(s) => Literal::String(s),
            _ => unreachable!(),
        }),
        1 => prop_oneof![
            Just("2026-01-01T00:00:00Z"), Just("2026-06-01T00:00:00Z"), Just("2026-06-01T00:00:00.5Z"), Just("now-1d"), Just("now")
        ]
        .prop_map(|t| Literal::Time(TimeLiteral::parse(t).unwrap())),
    ]
}

fn json_field() -> impl Strategy<Value = Field> {
    let key = |k: &str| Segment::Key(k.to_owned());
    prop_oneof![
        Just(Field::Property(vec![key("a")])),
        Just(Field::Property(vec![key("b")])),
        Just(Field::Property(vec![key("c")])),
        Just(Field::Property(vec![key("a"), key("x")])),
        Just(Field::Property(vec![key("b"), Segment::Index(0)])),
        Just(Field::Computed(vec![key("percent")])),
    ]
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Lt),
        Just(CompareOp::Le),
        Just(CompareOp::Gt),
        Just(CompareOp::Ge)
    ]
}

/// A predicate that builds (invalid combinations are what the parser refuses anyway).
fn predicate() -> impl Strategy<Value = Filter> {
    let json_predicate = (
        json_field(),
        op(),
        literal(),
        prop::collection::vec(literal(), 0..3),
        0..5u8,
    )
        .prop_map(|(field, op, literal, list, kind)| match kind {
            0 if !(op.is_ordering() && matches!(literal, Literal::Null | Literal::Bool(_))) => {
                Filter::Compare {
                    field,
                    op,
                    value: literal,
                }
            }
            0 | 1 => Filter::In {
                field,
                values: list,
            },
            2 => Filter::Exists { field },
            3 => Filter::Contains {
                field,
                value: literal,
            },
            _ => match literal {
                Literal::String(prefix) => Filter::StartsWith { field, prefix },
                _ => Filter::Exists { field },
            },
        });
    let email =
        prop_oneof![Just("1@x.io"), Just("2@y.io"), Just("1"), Just("")].prop_map(str::to_owned);
    let identity_predicate = (email, 0..4u8).prop_map(|(email, kind)| {
        let field = Field::Identity("email".into());
        match kind {
            0 => Filter::Compare {
                field,
                op: CompareOp::Eq,
                value: Literal::String(email),
            },
            1 => Filter::Compare {
                field,
                op: CompareOp::Lt,
                value: Literal::String(email),
            },
            2 => Filter::StartsWith {
                field,
                prefix: email,
            },
            _ => Filter::Compare {
                field,
                op: CompareOp::Eq,
                value: Literal::Null,
            },
        }
    });
    let time_predicate = (
        op(),
        prop_oneof![Just("now-1d"), Just("2026-01-01T00:00:00Z")],
    )
        .prop_map(|(op, t)| Filter::Compare {
            field: Field::CreatedAt,
            op,
            value: Literal::Time(TimeLiteral::parse(t).unwrap()),
        });
    let key = prop_oneof![Just("a"), Just("b"), Just("c"), Just("")].prop_map(str::to_owned);
    let segment_predicate = (key, 0..5u8).prop_map(|(key, kind)| {
        let field = Field::Segments;
        match kind {
            0 => Filter::Compare {
                field,
                op: CompareOp::Eq,
                value: Literal::String(key),
            },
            1 => Filter::Contains {
                field,
                value: Literal::String(key),
            },
            2 => Filter::StartsWith { field, prefix: key },
            3 => Filter::Exists { field },
            _ => Filter::Compare {
                field,
                op: CompareOp::Eq,
                value: Literal::Null,
            },
        }
    });
    prop_oneof![6 => json_predicate, 1 => identity_predicate, 1 => time_predicate, 1 => segment_predicate]
}

fn filter() -> impl Strategy<Value = Filter> {
    predicate().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

fn dataset() -> impl Strategy<Value = Vec<(serde_json::Map<String, Value>, u8)>> {
    prop::collection::vec((properties(), 0..3u8), 1..12)
}

/// Stores the profiles in a fresh workspace; returns them as stored.
async fn load(
    store: &Arc<dyn Store>,
    case: usize,
    data: &[(serde_json::Map<String, Value>, u8)],
) -> (profiled_core::WorkspaceId, Vec<Profile>) {
    let ws = store
        .create_workspace(&format!("case{case}"), Timestamp::now())
        .await
        .unwrap()
        .id;
    let created: Timestamp = "2026-03-01T00:00:00Z".parse().unwrap();
    let mut profiles = Vec::new();
    let mut tx = store.begin().await.unwrap();
    for (i, (properties, emails)) in data.iter().enumerate() {
        let mut p = Profile::new(ProfileId(format!("p{i:02}")), created, (i * 7 % 100) as f64);
        p.properties = properties.clone();
        // Identities are unique per workspace: profile i owns `i@x.io` and `i@y.io`.
        p.identities = ["x", "y"]
            .iter()
            .take(usize::from(*emails))
            .map(|domain| Identity::new_unchecked("email", &format!("{i}@{domain}.io")))
            .collect();
        // Segments: `a` for even profiles, `b` for every third.
        let held: Vec<String> = [(i % 2 == 0, "a"), (i % 3 == 0, "b")]
            .into_iter()
            .filter(|(member, _)| *member)
            .map(|(_, key)| key.to_owned())
            .collect();
        p.segments = held.iter().cloned().collect();
        tx.insert_profile(ws, &p).await.unwrap();
        tx.move_segments(
            ws,
            &[profiled_store::SegmentMove {
                profile_id: p.id.clone(),
                moves: profiled_core::segment::Moves {
                    entered: held,
                    left: Vec::new(),
                },
                at: created,
            }],
        )
        .await
        .unwrap();
        profiles.push(p);
    }
    tx.commit().await.unwrap();
    (ws, profiles)
}

pub fn sql_selects_what_the_evaluator_matches(
    store: Arc<dyn Store>,
    runtime: &tokio::runtime::Runtime,
) {
    let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
    let ctx = Context { now };
    let mut runner = TestRunner::new(Config {
        cases: 200,
        ..Config::default()
    });
    let case = std::cell::Cell::new(0);
    runner
        .run(
            &(dataset(), prop::collection::vec(filter(), 8)),
            |(data, filters)| {
                case.set(case.get() + 1);
                runtime.block_on(async {
                    let (ws, profiles) = load(&store, case.get(), &data).await;
                    for filter in &filters {
                        let expected: BTreeSet<String> = profiles
                            .iter()
                            .filter(|p| filter.matches(p, &ctx))
                            .map(|p| p.id.0.clone())
                            .collect();
                        let query = SearchQuery {
                            filter: filter.clone(),
                            now,
                            sort: Vec::<SortKey>::new(),
                            after: None,
                            limit: 1000,
                        };
                        let found: BTreeSet<String> = store
                            .search(ws, &query)
                            .await
                            .unwrap()
                            .profiles
                            .into_iter()
                            .map(|p| p.id.0)
                            .collect();
                        prop_assert_eq!(
                            &found,
                            &expected,
                            "filter {:?}\nprofiles {:?}",
                            filter,
                            data
                        );
                        let count = store.count(ws, filter, now).await.unwrap();
                        prop_assert_eq!(count as usize, expected.len(), "count of {:?}", filter);
                    }
                    Ok(())
                })
            },
        )
        .unwrap();
}
