//! Search and count latency on 1,000,000 generated profiles (issue: search and count).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use profiled_core::filter::{Filter, ValueType};
use profiled_core::{Limits, WorkspaceId};
use profiled_server::Service;
use profiled_server::service::Search;
use rand::Rng;

use crate::data;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many profiles to generate.
    #[arg(long, default_value_t = 1_000_000)]
    profiles: u64,
    /// Where the database lives; an existing data set of the same size is reused.
    #[arg(long, default_value = "target/bench-data/search")]
    data_dir: PathBuf,
    #[command(flatten)]
    target: crate::target::Target,
    /// Repetitions of each fast query (slow scans run a tenth as often, at least 20).
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let store = args.target.open(&args.data_dir).await?;
    let service = Service::new(store.clone(), Limits::default());
    let ws = match store.workspace_by_name("bench").await?.map(|w| w.id) {
        Some(ws) if service.count(ws, &Filter::all()).await? == args.profiles => {
            eprintln!(
                "reusing {} profiles in {}",
                args.profiles,
                args.target.describe(&args.data_dir)
            );
            ws
        }
        Some(_) => anyhow::bail!(
            "{} holds another data set; remove it first",
            args.target.describe(&args.data_dir)
        ),
        None => data::load(&store, "bench", args.profiles).await?,
    };
    for (field, value_type) in [
        ("properties.plan", ValueType::String),
        ("properties.uid", ValueType::Number),
    ] {
        let started = Instant::now();
        service.declare_index(ws, field, value_type).await?;
        eprintln!("declared index on {field} in {:.1?}", started.elapsed());
    }

    let fast = args.iterations;
    let slow = (args.iterations / 10).max(20);
    let n = args.profiles;
    let mut rng = data::rng(7);
    let mut rows = Vec::new();
    let mut measure = |name: &str, times: Vec<Duration>| {
        rows.push(format!(
            "| {name} | {} | {} | {} |",
            times.len(),
            ms(percentile(&times, 50)),
            ms(percentile(&times, 99))
        ));
    };

    let plans: Vec<String> = (0..fast)
        .map(|_| data::PLANS[rng.random_range(0..4)].to_owned())
        .collect();
    measure(
        "indexed equality, limit 20: `properties.plan = X`",
        time_searches(
            &service,
            ws,
            plans.iter().map(|p| format!("properties.plan = \"{p}\"")),
            20,
        )
        .await?,
    );
    let uids: Vec<u64> = (0..fast).map(|_| rng.random_range(0..n)).collect();
    measure(
        "indexed equality, limit 20: `properties.uid = N` (one match)",
        time_searches(
            &service,
            ws,
            uids.iter().map(|u| format!("properties.uid = {u}")),
            20,
        )
        .await?,
    );
    let pairs: Vec<(String, &str)> = (0..fast)
        .map(|_| {
            (
                data::PLANS[rng.random_range(0..4)].to_owned(),
                data::COUNTRIES[rng.random_range(0..10)],
            )
        })
        .collect();
    measure(
        "two conditions, limit 20: `properties.plan = X and properties.country = Y`",
        time_searches(
            &service,
            ws,
            pairs.iter().map(|(p, c)| {
                format!("properties.plan = \"{p}\" and properties.country = \"{c}\"")
            }),
            20,
        )
        .await?,
    );
    let plans: Vec<String> = (0..slow)
        .map(|_| data::PLANS[rng.random_range(0..4)].to_owned())
        .collect();
    measure(
        "count, indexed: `properties.plan = X`",
        time_counts(
            &service,
            ws,
            plans.iter().map(|p| format!("properties.plan = \"{p}\"")),
        )
        .await?,
    );
    let referrers: Vec<u32> = (0..slow).map(|_| rng.random_range(0..500)).collect();
    measure(
        "unindexed scan, limit 20 (rare value): `properties.address.zip = Z`",
        time_searches(
            &service,
            ws,
            referrers
                .iter()
                .map(|r| format!("properties.address.zip = \"{:05}\"", r * 199)),
            20,
        )
        .await?,
    );
    measure(
        "count, unindexed scan: `properties.referrer = R`",
        time_counts(
            &service,
            ws,
            referrers
                .iter()
                .map(|r| format!("properties.referrer = \"campaign-{r}\"")),
        )
        .await?,
    );

    let target = match &args.target.database_url {
        Some(_) => format!(
            " --database-url $DATABASE_URL --schema {}",
            args.target.schema
        ),
        None => String::new(),
    };
    println!(
        "Command: `cargo run --release -p profiled-bench -- search --profiles {n} --iterations {fast}{target}`\n"
    );
    println!("| query | runs | p50 | p99 |\n|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    store.close().await;
    Ok(())
}

async fn time_searches(
    service: &Service,
    ws: WorkspaceId,
    filters: impl Iterator<Item = String>,
    limit: u32,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::new();
    for text in filters {
        let filter = Filter::parse(&text)?;
        let started = Instant::now();
        let page = service
            .search(
                ws,
                Search {
                    filter,
                    sort: Vec::new(),
                    limit,
                    cursor: None,
                },
            )
            .await?;
        times.push(started.elapsed());
        std::hint::black_box(page);
    }
    Ok(times)
}

async fn time_counts(
    service: &Service,
    ws: WorkspaceId,
    filters: impl Iterator<Item = String>,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::new();
    for text in filters {
        let filter = Filter::parse(&text)?;
        let started = Instant::now();
        std::hint::black_box(service.count(ws, &filter).await?);
        times.push(started.elapsed());
    }
    Ok(times)
}

fn percentile(times: &[Duration], p: usize) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[((sorted.len() * p).div_ceil(100))
        .saturating_sub(1)
        .min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
