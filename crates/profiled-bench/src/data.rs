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

/// Profile number `i`, identified as the peers' harness identifies it: user id `u%014d` and
/// email `user<i>@example.com`.
pub fn profile(i: u64, rng: &mut StdRng, now: Timestamp) -> Profile {
    let mut p = Profile::new(
        ProfileId(format!("{i:016}")),
        now,
        rng.random_range(0.0..100.0),
    );
    p.attach([
        Identity::new_unchecked("user_id", &format!("u{i:014}")),
        Identity::new_unchecked("email", &format!("user{i}@example.com")),
    ]);
    p.properties = properties(i, rng);
    p
}

/// Loads profiles 0..count into a new workspace, in transactions of 5,000.
pub async fn load(
    store: &std::sync::Arc<dyn profiled_store::Store>,
    workspace: &str,
    count: u64,
) -> anyhow::Result<profiled_core::WorkspaceId> {
    const BATCH: u64 = 5_000;
    let ws = store
        .create_workspace(workspace, Timestamp::now())
        .await?
        .id;
    let now = Timestamp::from_microsecond(Timestamp::now().as_microsecond()).unwrap();
    let mut rng = rng(42);
    let started = std::time::Instant::now();
    let mut i = 0;
    while i < count {
        let mut tx = store.begin().await?;
        for _ in 0..BATCH.min(count - i) {
            tx.insert_profile(ws, &profile(i, &mut rng, now)).await?;
            i += 1;
        }
        tx.commit().await?;
        if i % 100_000 == 0 {
            eprintln!(
                "loaded {i} profiles ({:.0}/s)",
                i as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!("loaded {count} profiles in {:.1?}", started.elapsed());
    Ok(ws)
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}
