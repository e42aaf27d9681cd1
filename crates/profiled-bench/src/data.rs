//! The generated data set: profiles shaped like the peers' harness (`../shared/bench`), with
//! a fixed seed so every run loads the same data.

use jiff::Timestamp;
use profiled_core::{Identity, Profile, ProfileId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

pub const PLANS: [&str; 4] = ["free", "starter", "pro", "enterprise"];
pub const COUNTRIES: [&str; 10] = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "ES", "IT", "NL"];

/// Plan with the harness's distribution: 50 / 30 / 15 / 5 %.
fn plan(rng: &mut StdRng) -> &'static str {
    match rng.random_range(0..100) {
        0..50 => PLANS[0],
        50..80 => PLANS[1],
        80..95 => PLANS[2],
        _ => PLANS[3],
    }
}

/// Properties of profile number `i`: ten keys, nested address, ~330 bytes of JSON.
pub fn properties(i: u64, rng: &mut StdRng) -> serde_json::Map<String, Value> {
    let lang = ["en", "de", "fr", "es"][rng.random_range(0..4)];
    let signup = Timestamp::from_second(1_600_000_000 + rng.random_range(0..150_000_000)).unwrap();
    let value = json!({
        "uid": i,
        "plan": plan(rng),
        "country": COUNTRIES[rng.random_range(0..COUNTRIES.len())],
        "age": rng.random_range(18..80),
        "score": (rng.random_range(0.0..1000.0f64) * 100.0).round() / 100.0,
        "newsletter": rng.random_bool(0.4),
        "signup_ts": profiled_core::filter::format_canonical(signup),
        "lang": lang,
        "tags": [format!("t{}", rng.random_range(0..20)), format!("t{}", rng.random_range(0..20))],
        "referrer": format!("campaign-{}", rng.random_range(0..500)),
        "address": {"city": format!("city-{}", rng.random_range(0..1000)), "zip": format!("{:05}", rng.random_range(0..99999)),
                    "geo": {"lat": rng.random_range(-90.0..90.0f64), "lon": rng.random_range(-180.0..180.0f64)}},
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// Profile number `i`, with a `user_id` identity `u<i>`.
pub fn profile(i: u64, rng: &mut StdRng, now: Timestamp) -> Profile {
    let mut p = Profile::new(
        ProfileId(format!("{i:016}")),
        now,
        rng.random_range(0.0..100.0),
    );
    p.identities = vec![Identity::new_unchecked("user_id", &format!("u{i}"))];
    p.properties = properties(i, rng);
    p
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}
