//! `profiled import FILE`: NDJSON or CSV commands applied straight to the database (also
//! while a server runs on it), or streamed to a running server with `--server`, with a
//! progress bar.

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
    /// Send the file to a running server (e.g. `https://profiles.example.com`) instead of
    /// writing to the database here; the workspace is the key's.
    #[arg(long)]
    server: Option<String>,
    /// The API key for `--server` (write scope) [env: PROFILED_KEY].
    #[arg(long, env = "PROFILED_KEY", hide_env_values = true)]
    key: Option<String>,
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
    if let Some(server) = &args.server {
        let key = args
            .key
            .as_deref()
            .context("--server needs an API key: --key or PROFILED_KEY")?;
        return remote(server, key, format, file, size).await;
    }
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
    print_failures(&record.id, c.failed, &record.failures);
    service.store().close().await;
    Ok(())
}

fn print_failures(id: &str, failed: u64, failures: &[profiled_core::import::ImportFailure]) {
    for failure in failures.iter().take(20) {
        eprintln!("  line {}: {}", failure.line, failure.reason);
    }
    if failed > 20 {
        eprintln!("  … {} more; see GET /v1/imports/{id}", failed - 20);
    }
}

/// Streams the file to `POST /v1/imports` of a running server; the bar counts bytes sent.
async fn remote(
    server: &str,
    key: &str,
    format: ImportFormat,
    file: tokio::fs::File,
    size: u64,
) -> anyhow::Result<()> {
    // TLS on ring, like the database connections.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let progress = ProgressBar::new(size).with_style(
        ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} sent  {bytes_per_sec}  {elapsed_precise}",
        )
        .expect("a valid template"),
    );
    let sent = progress.clone();
    let chunks = futures_util::stream::unfold(file, move |mut file| {
        let sent = sent.clone();
        async move {
            let mut buffer = vec![0u8; 256 * 1024];
            match file.read(&mut buffer).await {
                Ok(0) => None,
                Ok(n) => {
                    buffer.truncate(n);
                    sent.inc(n as u64);
                    Some((Ok::<_, std::io::Error>(buffer), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        }
    });
    let started = std::time::Instant::now();
    let client = reqwest::Client::new();
    let base = server.trim_end_matches('/');
    check_key(&client, base, key).await?;
    let url = format!("{base}/v1/imports?format={}", format.as_str());
    let response = client
        .post(&url)
        .bearer_auth(key)
        .header(
            "content-type",
            match format {
                ImportFormat::Ndjson => "application/x-ndjson",
                ImportFormat::Csv => "text/csv",
            },
        )
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    progress.finish_and_clear();
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .context("the server's answer is not JSON")?;
    if !status.is_success() {
        anyhow::bail!(
            "the server refused the import ({status}): {}",
            body["detail"].as_str().unwrap_or("no detail")
        );
    }
    let report: Report = serde_json::from_value(body).context("an unexpected import report")?;
    let c = report.counts;
    eprintln!(
        "import {}: {} rows in {:.1}s: {} created, {} updated, {} unchanged, {} deleted, {} skipped, {} failed",
        report.id,
        c.read,
        started.elapsed().as_secs_f64(),
        c.created,
        c.updated,
        c.unchanged,
        c.deleted,
        c.skipped,
        c.failed
    );
    print_failures(&report.id, c.failed, &report.failures);
    Ok(())
}

/// Refuses a key the server does not know before the file is sent: a server answers a bad key
/// without reading the body and may close the connection mid-upload, which hides its answer.
async fn check_key(client: &reqwest::Client, base: &str, key: &str) -> anyhow::Result<()> {
    // Any job id does: the key is checked first (a write-only key then gets a 403, a reading
    // key a 404, both fine for an import).
    let url = format!("{base}/v1/imports/-");
    let response = client
        .get(&url)
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        anyhow::bail!(
            "the server refused the import ({status}): {}",
            body["detail"].as_str().unwrap_or("no detail")
        );
    }
    Ok(())
}

/// The part of the server's import report the CLI prints.
#[derive(serde::Deserialize)]
struct Report {
    id: String,
    counts: profiled_core::import::ImportCounts,
    failures: Vec<profiled_core::import::ImportFailure>,
}
