//! Prepares a data directory for the HTTP benchmark: generated profiles in the `default`
//! workspace, the declared index on `properties.plan`, and a read-write key (printed).

use std::path::PathBuf;
use std::sync::Arc;

use profiled_core::filter::ValueType;
use profiled_core::{Limits, Scope};
use profiled_server::Service;
use profiled_store::Store;
use profiled_store::sqlite::{SqliteSettings, SqliteStore};

use crate::data;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 100_000)]
    profiles: u64,
    /// Must not exist yet.
    #[arg(long)]
    data_dir: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.data_dir.exists(),
        "{} exists; preload needs a fresh directory",
        args.data_dir.display()
    );
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open_dir(&args.data_dir, &SqliteSettings::default()).await?);
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
