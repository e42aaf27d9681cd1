//! `profiled-bench`: benchmarks you can rerun. Each prints the exact command and its results
//! as a Markdown table for `docs/benchmarks.md`.

mod data;
mod ndjson;
mod preload;
mod search;
mod target;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "profiled-bench", about = "Benchmarks of profiled")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Search and count latency on a generated data set (SQLite, no HTTP).
    Search(search::Args),
    /// Fill a fresh data directory with generated profiles, a workspace and a key, for HTTP
    /// benchmarks; prints the key.
    Preload(preload::Args),
    /// Print an NDJSON import file of generated profiles on stdout.
    Ndjson(ndjson::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Search(args) => search::run(args).await,
            Command::Preload(args) => preload::run(args).await,
            Command::Ndjson(args) => ndjson::run(args).await,
        }
    })
}
