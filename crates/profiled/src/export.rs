//! `profiled export`: every matching profile to a file (or stdout), with a progress bar, read
//! straight from the database (also while a server runs on it).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use profiled_core::filter::Filter;
use profiled_server::service::exports::{ExportCursor, ExportFormat, Renderer};

use crate::commands::{describe, open_service};
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workspace to export.
    #[arg(long, default_value = "default")]
    workspace: String,
    /// `ndjson` (one profile per line, as the API shows it) or `csv`.
    #[arg(long, default_value = "ndjson", value_parser = parse_format)]
    format: ExportFormat,
    /// Only profiles matching this filter (the search language).
    #[arg(long)]
    filter: Option<String>,
    /// CSV columns, e.g. `id,identities.email,properties.plan`.
    #[arg(long)]
    columns: Option<String>,
    /// Where to write; `-` (the default) is stdout.
    #[arg(long, short, default_value = "-")]
    output: PathBuf,
}

fn parse_format(text: &str) -> Result<ExportFormat, String> {
    ExportFormat::parse(text).ok_or_else(|| "expected `ndjson` or `csv`".into())
}

pub async fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    let (service, _) = open_service(config, false).await?;
    let ws = service
        .workspace_by_name(&args.workspace)
        .await
        .map_err(describe)?
        .id;
    let filter = match &args.filter {
        Some(text) => Filter::parse(text).map_err(|e| anyhow::anyhow!("the filter: {e}"))?,
        None => Filter::all(),
    };
    let renderer = Renderer::new(args.format, args.columns.as_deref()).map_err(describe)?;
    let total = service.count(ws, &filter).await.map_err(describe)?;
    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} profiles  {per_sec}  {elapsed_precise} (eta {eta})",
        )
        .expect("a valid template"),
    );
    let mut out: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(&args.output)
                .with_context(|| format!("cannot create {}", args.output.display()))?,
        ))
    };
    out.write_all(&renderer.header())?;
    let mut cursor = ExportCursor::new(filter);
    let mut written = 0u64;
    let mut page = service
        .export_page(ws, &mut cursor)
        .await
        .map_err(describe)?;
    while let Some(profiles) = page {
        // The next page is read (on a blocking thread) while this one is written here.
        let (next, wrote) = tokio::join!(service.export_page(ws, &mut cursor), async {
            out.write_all(&renderer.page(&profiles))
        });
        wrote?;
        written += profiles.len() as u64;
        progress.set_position(written);
        page = next.map_err(describe)?;
    }
    out.flush()?;
    progress.finish_and_clear();
    eprintln!("exported {written} profiles");
    service.store().close().await;
    Ok(())
}
