//! The CLI's administrative commands. They work directly on the database (the data
//! directory or the database URL), also while a server runs on it.

use std::sync::Arc;

use anyhow::Context;
use profiled_core::Scope;
use profiled_server::Service;
use profiled_store::Store;
use profiled_store::postgres::PostgresStore;
use profiled_store::sqlite::SqliteStore;

use crate::config::{Config, Database};

/// Opens the configured store, migrated and with its `default` workspace; with
/// `issue_first_key`, also the workspace's first admin key if it never had one.
pub async fn open_service(
    config: &Config,
    issue_first_key: bool,
) -> anyhow::Result<(Service, Option<profiled_server::service::IssuedKey>)> {
    let settings = config.sqlite.settings();
    let store: Arc<dyn Store> = match config.database() {
        Database::Postgres(url) => Arc::new(
            PostgresStore::open(&config.postgres.settings(url))
                .await
                .with_context(|| format!("cannot open database {:?}", config.database_url))?,
        ),
        Database::SqliteUrl(url) => Arc::new(
            SqliteStore::open_url(url, &settings)
                .await
                .with_context(|| format!("cannot open database {:?}", config.database_url))?,
        ),
        Database::SqliteDir(dir) => Arc::new(
            SqliteStore::open_dir(dir, &settings)
                .await
                .with_context(|| format!("cannot open the data directory {}", dir.display()))?,
        ),
    };
    let enricher = match &config.enrichment.geoip_database {
        Some(path) => {
            profiled_server::service::Enricher::with_geoip(path).map_err(anyhow::Error::msg)?
        }
        None => profiled_server::service::Enricher::default(),
    };
    let service = Service::new(store, config.limits.clone())
        .with_retention(config.change_log.retention())
        .with_events(config.events.settings())
        .with_segments(config.segments.settings())
        .with_verification(config.verification.sender(), config.verification.code_ttl())
        .with_sessions(profiled_server::service::sessions::SessionSettings {
            cookie_name: config.sessions.cookie_name.clone(),
        })
        .with_enricher(enricher);
    let bootstrap_key = service
        .bootstrap(issue_first_key)
        .await
        .context("cannot create the default workspace")?;
    Ok((service, bootstrap_key))
}

async fn service(config: &Config) -> anyhow::Result<Service> {
    Ok(open_service(config, false).await?.0)
}

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let service = service(config).await?;
    service.store().close().await;
    eprintln!("migrations applied");
    Ok(())
}

pub async fn create_workspace(config: &Config, name: &str) -> anyhow::Result<()> {
    let service = service(config).await?;
    let (workspace, key) = service.create_workspace(name).await.map_err(describe)?;
    eprintln!(
        "created workspace `{}` (id {}); its admin key (shown once):",
        workspace.name, workspace.id.0
    );
    println!("{}", key.token.0);
    service.store().close().await;
    Ok(())
}

pub async fn list_workspaces(config: &Config) -> anyhow::Result<()> {
    let service = service(config).await?;
    println!("{:<8} {:<32} CREATED", "ID", "NAME");
    for w in service.list_workspaces().await.map_err(describe)? {
        println!("{:<8} {:<32} {}", w.id.0, w.name, w.created_at);
    }
    service.store().close().await;
    Ok(())
}

pub async fn create_key(
    config: &Config,
    workspace: &str,
    scope: Scope,
    name: &str,
) -> anyhow::Result<()> {
    let service = service(config).await?;
    let workspace = service
        .workspace_by_name(workspace)
        .await
        .map_err(describe)?;
    let key = service
        .create_key(workspace.id, scope, name)
        .await
        .map_err(describe)?;
    // The key alone on stdout, so that `KEY=$(profiled keys create ...)` works.
    println!("{}", key.token.0);
    service.store().close().await;
    Ok(())
}

pub async fn list_keys(config: &Config, workspace: Option<&str>) -> anyhow::Result<()> {
    let service = service(config).await?;
    let workspace_id = match workspace {
        Some(name) => Some(service.workspace_by_name(name).await.map_err(describe)?.id),
        None => None,
    };
    let names: std::collections::HashMap<_, _> = service
        .list_workspaces()
        .await
        .map_err(describe)?
        .into_iter()
        .map(|w| (w.id, w.name))
        .collect();
    println!(
        "{:<18} {:<16} {:<11} {:<8} {:<28} NAME",
        "ID", "WORKSPACE", "SCOPE", "STATUS", "CREATED"
    );
    for key in service.list_keys(workspace_id).await.map_err(describe)? {
        let status = if key.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        let ws = names
            .get(&key.workspace_id)
            .map(String::as_str)
            .unwrap_or("?");
        println!(
            "{:<18} {:<16} {:<11} {:<8} {:<28} {}",
            key.id,
            ws,
            key.scope,
            status,
            key.created_at.to_string(),
            key.name
        );
    }
    service.store().close().await;
    Ok(())
}

pub async fn revoke_key(config: &Config, id: &str) -> anyhow::Result<()> {
    let service = service(config).await?;
    service.revoke_key(None, id).await.map_err(describe)?;
    eprintln!("revoked key {id}");
    service.store().close().await;
    Ok(())
}

pub async fn list_indexes(config: &Config, workspace: &str) -> anyhow::Result<()> {
    let service = service(config).await?;
    let ws = service
        .workspace_by_name(workspace)
        .await
        .map_err(describe)?;
    println!("{:<40} {:<10} CREATED", "FIELD", "TYPE");
    for index in service.indexes(ws.id).await.map_err(describe)? {
        println!(
            "{:<40} {:<10} {}",
            index.field.to_string(),
            index.value_type.as_str(),
            index.created_at
        );
    }
    service.store().close().await;
    Ok(())
}

pub async fn declare_index(
    config: &Config,
    workspace: &str,
    field: &str,
    value_type: profiled_core::filter::ValueType,
) -> anyhow::Result<()> {
    let service = service(config).await?;
    let ws = service
        .workspace_by_name(workspace)
        .await
        .map_err(describe)?;
    let started = std::time::Instant::now();
    let index = service
        .declare_index(ws.id, field, value_type)
        .await
        .map_err(describe)?;
    eprintln!(
        "indexed {} ({}) in {:.1?}",
        index.field,
        index.value_type.as_str(),
        started.elapsed()
    );
    service.store().close().await;
    Ok(())
}

pub async fn drop_index(config: &Config, workspace: &str, field: &str) -> anyhow::Result<()> {
    let service = service(config).await?;
    let ws = service
        .workspace_by_name(workspace)
        .await
        .map_err(describe)?;
    service.drop_index(ws.id, field).await.map_err(describe)?;
    eprintln!("dropped the index on {field}");
    service.store().close().await;
    Ok(())
}

pub fn describe(err: profiled_server::ServiceError) -> anyhow::Error {
    match err {
        profiled_server::ServiceError::Invalid(violations) => anyhow::anyhow!(
            "{}",
            violations
                .iter()
                .map(|v| v.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => anyhow::Error::new(other),
    }
}
