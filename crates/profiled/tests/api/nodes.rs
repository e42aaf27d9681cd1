//! Several `profiled` processes on one PostgreSQL database, as several API nodes behind a
//! load balancer would run: they migrate together and never split one identity in two.

use serde_json::json;
use tokio::task::JoinSet;

use crate::cli::{Server, key_in};
use crate::support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_upserting_one_identity_make_one_profile_and_lose_nothing() {
    let Ok(url) = std::env::var("PROFILED_TEST_POSTGRES_URL") else {
        eprintln!("PROFILED_TEST_POSTGRES_URL is unset: skipped");
        return;
    };
    let schema = format!("profiled_nodes_{}", uuid::Uuid::new_v4().simple());
    let env = [("PROFILED_POSTGRES__SCHEMA", schema.as_str())];
    // Started together on an empty schema: their migrations race, and both must come up.
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| Server::start_with(&["--database-url", &url], &env));
        let b = scope.spawn(|| Server::start_with(&["--database-url", &url], &env));
        (a.join().unwrap(), b.join().unwrap())
    });
    // Whichever node bootstrapped prints the key; stdout arrives on its own thread.
    let mut printed = String::new();
    let key = (0..300)
        .find_map(|_| {
            printed.push_str(&a.printed());
            printed.push_str(&b.printed());
            let key = key_in(&printed);
            if key.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            key
        })
        .expect("one of the nodes issued the first admin key");

    let client = crate::support::client();
    let mut writes = JoinSet::new();
    for i in 0..60 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let request = client
            .post(format!("{base}/v1/profiles"))
            .bearer_auth(&key)
            .json(&json!({"identities": {"user_id": "shared"}, "increment": {"visits": 1}}));
        writes.spawn(async move { TestApp::read(request.send().await.unwrap()).await });
    }
    let replies = writes.join_all().await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "exactly one write creates the profile: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "{statuses:?}"
    );

    for node in [&a, &b] {
        let count = client
            .post(format!("{}/v1/profiles/count", node.base))
            .bearer_auth(&key)
            .json(&json!({"filter": r#"identities.user_id = "shared""#}))
            .send()
            .await
            .unwrap();
        let count = TestApp::read(count).await;
        assert_eq!(count.body["count"], 1, "{}", count.body);
        let profile = client
            .get(format!("{}/v1/profiles/by/user_id/shared", node.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        let profile = TestApp::read(profile).await;
        assert_eq!(profile.body["properties"]["visits"], 60, "{}", profile.body);
        assert_eq!(profile.body["version"], 60);
    }

    // The change feed numbers the 60 writes 1..=60 in commit order, with no gap.
    let feed = client
        .get(format!("{}/v1/changes?limit=1000", b.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let feed = TestApp::read(feed).await;
    let seqs: Vec<i64> = feed.body["changes"]
        .as_array()
        .expect("a feed")
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=60).collect::<Vec<_>>());

    // A reader long-polling one node hears of a write made through the other.
    let waiting = client
        .get(format!("{}/v1/changes?after=60&wait=20", a.base))
        .bearer_auth(&key)
        .send();
    let started = std::time::Instant::now();
    let write = client
        .post(format!("{}/v1/profiles", b.base))
        .bearer_auth(&key)
        .json(&json!({"identities": {"user_id": "late"}, "set": {"plan": "pro"}}))
        .send();
    let (waited, written) = tokio::join!(waiting, write);
    assert_eq!(written.unwrap().status(), 201);
    let waited = TestApp::read(waited.unwrap()).await;
    assert_eq!(waited.body["changes"][0]["seq"], 61, "{}", waited.body);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    drop((a, b));
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}
