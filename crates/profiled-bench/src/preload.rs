//! Prepares a data directory for the HTTP benchmark: generated profiles in the `default`
//! workspace, the declared index on `properties.plan`, and a read-write key (printed).

use std::path::PathBuf;

use profiled_core::filter::ValueType;
use profiled_core::{Limits, Scope};
use profiled_server::Service;

use crate::data;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 100_000)]
    profiles: u64,
    /// Must not exist yet (unless the data goes to PostgreSQL).
    #[arg(long, default_value = "target/bench-data/http")]
    data_dir: PathBuf,
    #[command(flatten)]
    target: crate::target::Target,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.target.database_url.is_some() || !args.data_dir.exists(),
        "{} exists; preload needs a fresh directory",
        args.data_dir.display()
    );
    let store = args.target.open(&args.data_dir).await?;
    anyhow::ensure!(
        store.workspace_by_name("bench").await?.is_none(),
        "{} already holds a `bench` workspace; preload needs a fresh one",
        args.target.describe(&args.data_dir)
    );
    let service = Service::new(store.clone(), Limits::default());
    let ws = data::load(&store, "bench", args.profiles).await?;
    service
        .declare_index(ws, "properties.plan", ValueType::String)
        .await?;
    let key = service
        .create_key(ws, Scope::ReadWrite, "benchmark")
        .await?;
    println!("{}", key.token.0);
    store.close().await;
    Ok(())
}
