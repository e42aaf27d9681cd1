//! Where a benchmark's data lives: a SQLite data directory, or a schema on PostgreSQL.

use std::path::Path;
use std::sync::Arc;

use profiled_store::Store;
use profiled_store::postgres::{PostgresSettings, PostgresStore};
use profiled_store::sqlite::{SqliteSettings, SqliteStore};

#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// A `postgres://` URL: benchmark on PostgreSQL instead of the data directory.
    #[arg(long)]
    pub database_url: Option<String>,
    /// The PostgreSQL schema to use.
    #[arg(long, default_value = "profiled_bench")]
    pub schema: String,
}

impl Target {
    pub fn describe(&self, data_dir: &Path) -> String {
        match &self.database_url {
            Some(_) => format!("PostgreSQL schema {}", self.schema),
            None => data_dir.display().to_string(),
        }
    }

    pub async fn open(&self, data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match &self.database_url {
            Some(url) => {
                let mut settings = PostgresSettings::new(url.clone());
                settings.schema = Some(self.schema.clone());
                settings.statement_timeout = None;
                Arc::new(PostgresStore::open(&settings).await?)
            }
            None => Arc::new(SqliteStore::open_dir(data_dir, &SqliteSettings::default()).await?),
        })
    }
}
