//! `profiled serve`: open the store, print the first admin key once, serve until signalled.

use std::sync::Arc;

use anyhow::Context;

use crate::commands::open_service;
use crate::config::Config;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let (service, bootstrap_key) = open_service(&config, true).await?;
    let service = Arc::new(service);
    if let Some(key) = bootstrap_key {
        println!(
            "\nCreated workspace `default` with an admin API key. It is shown only this once; keep it safe:\n\n    {}\n\nUse it as `Authorization: Bearer <key>`.\n",
            key.token.0
        );
    }
    if config.change_log.retention().is_some() {
        tokio::spawn(prune_changes(service.clone()));
    }
    tokio::spawn(prune_events(service.clone()));
    tokio::spawn(profiled_server::service::run_segment_worker(
        service.clone(),
    ));
    if config.verification.sender == crate::config::SenderKind::Development {
        tracing::warn!(
            "verification codes go to the development sender: they are logged and readable at /v1/dev/verification-codes; do not use it in production"
        );
    }
    match &config.enrichment.geoip_database {
        Some(path) => {
            tracing::info!(geoip_database = %path.display(), "locations from IP addresses are on")
        }
        None => tracing::info!(
            "locations from IP addresses are off: set enrichment.geoip_database to a GeoIP2/GeoLite2 City .mmdb file to turn them on"
        ),
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        backend = service.store().backend(),
        database = %describe_database(&config),
        "profiled is listening; API docs at /docs"
    );
    let app = profiled_server::router(service.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")?;
    service.store().close().await;
    tracing::info!("stopped");
    Ok(())
}

fn describe_database(config: &Config) -> String {
    match &config.database_url {
        Some(url) => format!("{url:?}"),
        None => config
            .data_dir
            .join(profiled_store::sqlite::SqliteStore::FILE_NAME)
            .display()
            .to_string(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Prunes the change log to its retention at start and then every hour.
async fn prune_changes(service: Arc<profiled_server::Service>) {
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        match service.prune_changes().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "pruned the change log to its retention"),
            Err(err) => tracing::error!(error = %err, "pruning the change log failed"),
        }
    }
}

/// Deletes events older than their retention at start and then every hour.
async fn prune_events(service: Arc<profiled_server::Service>) {
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        match service.prune_events().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "deleted events older than their retention"),
            Err(err) => tracing::error!(error = %err, "deleting old events failed"),
        }
    }
}
