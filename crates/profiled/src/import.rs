//! `profiled import FILE`: NDJSON or CSV commands applied straight to the database (also
//! while a server runs on it), with a progress bar of rows, rate and errors.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use profiled_server::service::WriteContext;
use profiled_server::service::imports::{ImportFormat, Importer};
use tokio::io::AsyncReadExt;

use crate::commands::{describe, open_service};
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file: NDJSON (`.ndjson`, `.jsonl`) or CSV (`.csv`).
    file: PathBuf,
    /// The workspace to import into.
    #[arg(long, default_value = "default")]
    workspace: String,
    /// `ndjson` or `csv`; by default taken from the file's extension.
    #[arg(long, value_parser = parse_format)]
    format: Option<ImportFormat>,
}

fn parse_format(text: &str) -> Result<ImportFormat, String> {
    ImportFormat::parse(text).ok_or_else(|| "expected `ndjson` or `csv`".into())
}

pub async fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    let format = match args.format {
        Some(format) => format,
        None => match args.file.extension().and_then(|e| e.to_str()) {
            Some("csv") => ImportFormat::Csv,
            Some("ndjson" | "jsonl" | "json") => ImportFormat::Ndjson,
            _ => {
                anyhow::bail!("cannot tell the format from the file name: pass --format ndjson|csv")
            }
        },
    };
    let mut file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().await?.len();
    let (service, _) = open_service(config, false).await?;
    let service = Arc::new(service);
    let ws = service
        .workspace_by_name(&args.workspace)
        .await
        .map_err(describe)?
        .id;
    let ctx = WriteContext {
        actor: "cli:import".into(),
        origin: Some(format!("import:{}", args.file.display())),
    };
    let mut importer = Importer::start(service.clone(), ws, ctx, format)
        .await
        .map_err(describe)?;
    let progress = ProgressBar::new(size).with_style(
        ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes}  {msg}  {elapsed_precise} (eta {eta})",
        )
        .expect("a valid template"),
    );
    let started = std::time::Instant::now();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        if let Err(e) = importer.feed(&buffer[..n]).await {
            let reason = e.to_string();
            importer.abort(reason).await.map_err(describe)?;
            return Err(describe(e));
        }
        progress.inc(n as u64);
        let counts = importer.counts();
        progress.set_message(format!(
            "{} rows ({:.0}/s), {} errors",
            counts.read,
            counts.read as f64 / started.elapsed().as_secs_f64().max(1e-3),
            counts.failed
        ));
    }
    let record = importer.finish().await.map_err(describe)?;
    progress.finish_and_clear();
    let c = record.counts;
    eprintln!(
        "import {}: {} rows in {:.1}s: {} created, {} updated, {} unchanged, {} deleted, {} skipped, {} failed",
        record.id,
        c.read,
        started.elapsed().as_secs_f64(),
        c.created,
        c.updated,
        c.unchanged,
        c.deleted,
        c.skipped,
        c.failed
    );
    for failure in record.failures.iter().take(20) {
        eprintln!("  line {}: {}", failure.line, failure.reason);
    }
    if c.failed > 20 {
        eprintln!(
            "  … {} more; see GET /v1/imports/{}",
            c.failed - 20,
            record.id
        );
    }
    service.store().close().await;
    Ok(())
}
