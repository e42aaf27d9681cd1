//! `profiled`: the service and the CLI for the jobs people script.

mod commands;
mod config;
mod export;
mod import;
mod serve;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use profiled_core::Scope;

use config::{Config, LimitOverrides, LogFormat, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "profiled",
    version,
    about = "A self-hosted user profile service"
)]
struct Cli {
    /// A TOML config file [env: PROFILED_CONFIG].
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Directory of the embedded database [env: PROFILED_DATA_DIR] [default: ./profiled-data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL; overrides --data-dir [env: PROFILED_DATABASE_URL].
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Log format [env: PROFILED_LOG_FORMAT] [default: text].
    #[arg(long, global = true)]
    log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `debug` [env: PROFILED_LOG_LEVEL] [default: info].
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Address to listen on [env: PROFILED_LISTEN] [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        #[command(flatten)]
        limits: LimitOverrides,
    },
    /// Run database migrations and exit.
    Migrate,
    /// Manage workspaces.
    #[command(subcommand)]
    Workspaces(WorkspacesCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the property paths a workspace declares indexed.
    #[command(subcommand)]
    Indexes(IndexesCommand),
    /// Import NDJSON or CSV commands (upserts and deletes) into a workspace.
    Import(import::Args),
    /// Export a workspace's profiles (or those matching a filter) as NDJSON or CSV.
    Export(export::Args),
}

#[derive(Debug, Subcommand)]
enum IndexesCommand {
    /// List declared indexes.
    List {
        #[arg(long, default_value = "default")]
        workspace: String,
    },
    /// Declare a field indexed and build the index, e.g. `properties.plan --type string`.
    Add {
        field: String,
        #[arg(long = "type", value_parser = parse_value_type)]
        value_type: profiled_core::filter::ValueType,
        #[arg(long, default_value = "default")]
        workspace: String,
    },
    /// Drop a declared index.
    Drop {
        field: String,
        #[arg(long, default_value = "default")]
        workspace: String,
    },
}

fn parse_value_type(text: &str) -> Result<profiled_core::filter::ValueType, String> {
    profiled_core::filter::ValueType::parse(text)
        .ok_or_else(|| "expected one of: string, number, boolean, timestamp".into())
}

#[derive(Debug, Subcommand)]
enum WorkspacesCommand {
    /// Create a workspace; prints its first admin key.
    Create { name: String },
    /// List workspaces.
    List,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key; prints the key alone on stdout.
    Create {
        #[arg(long, default_value = "default")]
        workspace: String,
        #[arg(long, value_parser = parse_scope)]
        scope: Scope,
        /// A label for people.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List keys (of one workspace, or all).
    List {
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Revoke a key by id.
    Revoke { id: String },
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    Scope::parse(text).ok_or_else(|| "expected one of: write, read, read_write, admin".into())
}

/// mimalloc instead of glibc's malloc: imports and batched writes allocate and free many
/// short-lived JSON values, which glibc serves slowly (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let (listen, limits) = match &mut cli.command {
        Command::Serve { listen, limits } => (*listen, std::mem::take(limits)),
        _ => (None, LimitOverrides::default()),
    };
    let overrides = Overrides {
        listen,
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
        log_format: cli.log_format,
        log_level: cli.log_level.clone(),
        limits,
    };
    let config = match Config::load(cli.config.clone(), overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("profiled: {err:#}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { .. } => serve::run(config).await,
            Command::Migrate => commands::migrate(&config).await,
            Command::Workspaces(WorkspacesCommand::Create { name }) => {
                commands::create_workspace(&config, &name).await
            }
            Command::Workspaces(WorkspacesCommand::List) => {
                commands::list_workspaces(&config).await
            }
            Command::Keys(KeysCommand::Create {
                workspace,
                scope,
                name,
            }) => commands::create_key(&config, &workspace, scope, &name).await,
            Command::Keys(KeysCommand::List { workspace }) => {
                commands::list_keys(&config, workspace.as_deref()).await
            }
            Command::Keys(KeysCommand::Revoke { id }) => commands::revoke_key(&config, &id).await,
            Command::Indexes(IndexesCommand::List { workspace }) => {
                commands::list_indexes(&config, &workspace).await
            }
            Command::Indexes(IndexesCommand::Add {
                field,
                value_type,
                workspace,
            }) => commands::declare_index(&config, &workspace, &field, value_type).await,
            Command::Indexes(IndexesCommand::Drop { field, workspace }) => {
                commands::drop_index(&config, &workspace, &field).await
            }
            Command::Export(args) => export::run(&config, args).await,
            Command::Import(args) => import::run(&config, args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("profiled: {err:#}");
            ExitCode::FAILURE
        }
    }
}
