//! Configuration: built-in defaults, then the TOML file named by `PROFILED_CONFIG` (or
//! `--config`), then `PROFILED_*` environment variables, then command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use profiled_core::Limits;
use profiled_store::postgres::{PgSslMode, PostgresSettings, valid_schema_name};
use profiled_store::sqlite::{Durability, SqliteSettings};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Where the embedded SQLite database lives.
    pub data_dir: PathBuf,
    /// A database URL; overrides `data_dir` when set.
    pub database_url: Option<DatabaseUrl>,
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `profiled=debug,info`.
    pub log_level: String,
    pub sqlite: SqliteConfig,
    pub postgres: PostgresConfig,
    pub limits: Limits,
    pub change_log: ChangeLogConfig,
    pub events: EventsConfig,
    pub enrichment: EnrichmentConfig,
    pub segments: SegmentsConfig,
    pub sessions: SessionsConfig,
    pub verification: VerificationConfig,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SenderKind {
    /// Verified properties cannot change.
    #[default]
    None,
    /// Logs codes and shows them at `/v1/dev/verification-codes`: development only.
    Development,
    /// POSTs each code to `webhook_url`.
    Webhook,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerificationConfig {
    pub sender: SenderKind,
    pub webhook_url: Option<String>,
    /// Signs each webhook body (HMAC-SHA256 in `X-Profiled-Signature`).
    pub webhook_secret: Option<String>,
    pub code_ttl_minutes: u32,
}

impl Default for VerificationConfig {
    fn default() -> Self {
        Self {
            sender: SenderKind::None,
            webhook_url: None,
            webhook_secret: None,
            code_ttl_minutes: 10,
        }
    }
}

impl VerificationConfig {
    pub fn sender(&self) -> profiled_server::service::verification::Sender {
        use profiled_server::service::verification::Sender;
        match self.sender {
            SenderKind::None => Sender::None,
            SenderKind::Development => Sender::development(),
            SenderKind::Webhook => Sender::webhook(
                self.webhook_url.clone().unwrap_or_default(),
                self.webhook_secret.clone(),
            ),
        }
    }

    pub fn code_ttl(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_mins(i64::from(self.code_ttl_minutes))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// The cookie a browser keeps an end user's session in.
    pub cookie_name: String,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            cookie_name: profiled_server::service::sessions::SessionSettings::default().cookie_name,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentsConfig {
    /// Minutes between re-checks of segments whose filter compares with `now`.
    pub refresh_minutes: u32,
}

impl Default for SegmentsConfig {
    fn default() -> Self {
        Self {
            refresh_minutes: 15,
        }
    }
}

impl SegmentsConfig {
    pub fn settings(&self) -> profiled_server::service::SegmentSettings {
        profiled_server::service::SegmentSettings {
            refresh: std::time::Duration::from_secs(60 * u64::from(self.refresh_minutes)),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Minutes of inactivity after which the next event starts a new session.
    pub session_gap_minutes: u32,
    /// Keep raw events this many days (windows of computed properties are at most this long).
    pub retention_days: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            session_gap_minutes: 90,
            retention_days: 30,
        }
    }
}

impl EventsConfig {
    pub fn settings(&self) -> profiled_server::service::EventSettings {
        profiled_server::service::EventSettings {
            session_gap: jiff::SignedDuration::from_mins(i64::from(self.session_gap_minutes)),
            retention: jiff::SignedDuration::from_hours(24 * i64::from(self.retention_days)),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrichmentConfig {
    /// A MaxMind-format GeoIP database (GeoLite2/GeoIP2 City `.mmdb`) for locations;
    /// without one, locations are off.
    pub geoip_database: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChangeLogConfig {
    /// Keep change log entries this many days; unset keeps everything.
    pub retention_days: Option<u32>,
}

impl ChangeLogConfig {
    pub fn retention(&self) -> Option<std::time::Duration> {
        self.retention_days
            .map(|days| std::time::Duration::from_secs(u64::from(days) * 86_400))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./profiled-data"),
            database_url: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            sqlite: SqliteConfig::default(),
            postgres: PostgresConfig::default(),
            limits: Limits::default(),
            change_log: ChangeLogConfig::default(),
            events: EventsConfig::default(),
            enrichment: EnrichmentConfig::default(),
            segments: SegmentsConfig::default(),
            sessions: SessionsConfig::default(),
            verification: VerificationConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// `full` (default): a commit is on disk before it is acknowledged. `normal`: survives a
    /// crash of the process, not necessarily a power loss.
    pub synchronous: Synchronous,
    /// Connections used for reads.
    pub read_connections: u32,
    /// The page cache of each writing connection, in MiB.
    pub writer_cache_mib: u32,
    /// How much of the database file is mapped into memory, in MiB (0: none).
    pub mmap_mib: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        let store = SqliteSettings::default();
        Self {
            synchronous: Synchronous::Full,
            read_connections: store.read_connections,
            writer_cache_mib: store.writer_cache_mib,
            mmap_mib: store.mmap_mib,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Full,
    Normal,
}

impl SqliteConfig {
    pub fn settings(&self) -> SqliteSettings {
        SqliteSettings {
            durability: match self.synchronous {
                Synchronous::Full => Durability::Full,
                Synchronous::Normal => Durability::Normal,
            },
            read_connections: self.read_connections,
            writer_cache_mib: self.writer_cache_mib,
            mmap_mib: self.mmap_mib,
            ..SqliteSettings::default()
        }
    }
}

/// Settings used when `database_url` is a `postgres://` URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connections in the pool, per server process.
    pub max_connections: u32,
    /// The longest a statement may run, in milliseconds; 0 for no limit.
    pub statement_timeout_ms: u64,
    /// The schema to keep profiled's tables in (created if missing); unset uses the
    /// connection's default (`public`).
    pub schema: Option<String>,
    /// TLS: `disable`, `prefer`, `require`, `verify-ca` or `verify-full`; unset follows the
    /// URL's `sslmode` (default `prefer`).
    pub ssl_mode: Option<SslMode>,
    /// PEM file of the certificate authorities that sign the server's certificate.
    pub ssl_root_cert: Option<PathBuf>,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        let defaults = PostgresSettings::new("");
        Self {
            max_connections: defaults.max_connections,
            statement_timeout_ms: defaults
                .statement_timeout
                .map_or(0, |t| t.as_millis() as u64),
            schema: None,
            ssl_mode: None,
            ssl_root_cert: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl PostgresConfig {
    pub fn settings(&self, url: &str) -> PostgresSettings {
        PostgresSettings {
            max_connections: self.max_connections,
            statement_timeout: (self.statement_timeout_ms > 0)
                .then(|| std::time::Duration::from_millis(self.statement_timeout_ms)),
            schema: self.schema.clone(),
            ssl_mode: self.ssl_mode.map(|mode| match mode {
                SslMode::Disable => PgSslMode::Disable,
                SslMode::Prefer => PgSslMode::Prefer,
                SslMode::Require => PgSslMode::Require,
                SslMode::VerifyCa => PgSslMode::VerifyCa,
                SslMode::VerifyFull => PgSslMode::VerifyFull,
            }),
            ssl_root_cert: self.ssl_root_cert.clone(),
            ..PostgresSettings::new(url)
        }
    }
}

/// The database a configuration names.
pub enum Database<'a> {
    SqliteDir(&'a std::path::Path),
    SqliteUrl(&'a str),
    Postgres(&'a str),
}

impl Config {
    pub fn database(&self) -> Database<'_> {
        match &self.database_url {
            None => Database::SqliteDir(&self.data_dir),
            Some(url) if is_postgres(&url.0) => Database::Postgres(&url.0),
            Some(url) => Database::SqliteUrl(&url.0),
        }
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A database URL. Its `Debug` form hides any password.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Settings given on the command line; unset ones leave the lower layers alone.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    pub limits: LimitOverrides,
}

#[derive(Debug, Default, Serialize, clap::Args)]
pub struct LimitOverrides {
    /// Largest request body, in bytes [default: 1048576].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// Deepest nesting inside properties [default: 32].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<usize>,
    /// Most property keys per profile, counted at every depth [default: 1000].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_properties: Option<usize>,
    /// Longest property key, in bytes [default: 256].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_key_length: Option<usize>,
    /// Longest string value, in bytes [default: 65536].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_string_length: Option<usize>,
    /// Most identities per profile [default: 100].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_identities: Option<usize>,
    /// Longest identity value, in bytes [default: 1024].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_identity_length: Option<usize>,
}

const TOP_LEVEL_KEYS: [&str; 9] = [
    "postgres",
    "change_log",
    "listen",
    "data_dir",
    "database_url",
    "log_format",
    "log_level",
    "sqlite",
    "limits",
];

impl Config {
    pub fn load(config_file: Option<PathBuf>, overrides: Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let file = config_file.or_else(|| std::env::var_os("PROFILED_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Keys arrive upper-case here; other PROFILED_* variables (e.g. the test suite's
        // PROFILED_TEST_POSTGRES_URL) are not settings and are left out.
        let env = Env::prefixed("PROFILED_").split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            TOP_LEVEL_KEYS
                .iter()
                .any(|known| known.eq_ignore_ascii_case(top))
        });
        let config: Config = figment
            .merge(env)
            .merge(Serialized::globals(overrides))
            .extract()
            .context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.database_url
            && !url.0.starts_with("sqlite:")
            && !is_postgres(&url.0)
        {
            bail!(
                "database_url {url:?} is not supported: use a postgres:// or sqlite: URL, or leave it unset to use data_dir"
            );
        }
        if let Some(schema) = &self.postgres.schema
            && !valid_schema_name(schema)
        {
            bail!("postgres.schema `{schema}` must be lowercase letters, digits and underscores");
        }
        if self.postgres.max_connections == 0 {
            bail!("postgres.max_connections must be at least 1");
        }
        let l = &self.limits;
        for (name, value) in [
            ("max_body_bytes", l.max_body_bytes),
            ("max_depth", l.max_depth),
            ("max_properties", l.max_properties),
            ("max_key_length", l.max_key_length),
            ("max_string_length", l.max_string_length),
            ("max_identities", l.max_identities),
            ("max_identity_length", l.max_identity_length),
        ] {
            if value == 0 {
                bail!("limits.{name} must be at least 1");
            }
        }
        if l.max_depth > Limits::MAX_DEPTH {
            bail!("limits.max_depth is at most {}", Limits::MAX_DEPTH);
        }
        if self.change_log.retention_days == Some(0) {
            bail!(
                "change_log.retention_days must be at least 1 (leave it unset to keep everything)"
            );
        }
        if self.sqlite.read_connections == 0 {
            bail!("sqlite.read_connections must be at least 1");
        }
        if !(2..=65536).contains(&self.sqlite.writer_cache_mib) {
            bail!("sqlite.writer_cache_mib must be 2 to 65536");
        }
        if self.sqlite.mmap_mib > 1 << 20 {
            bail!("sqlite.mmap_mib must be at most 1048576 (1 TiB)");
        }
        let cookie_ok = !self.sessions.cookie_name.is_empty()
            && self
                .sessions
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !cookie_ok {
            bail!(
                "sessions.cookie_name must be a cookie name: letters, digits and !#$%&'*+-.^_`|~"
            );
        }
        if self.verification.sender == SenderKind::Webhook
            && !self
                .verification
                .webhook_url
                .as_deref()
                .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"))
        {
            bail!(
                "verification.webhook_url must be an http(s) URL when verification.sender is webhook"
            );
        }
        if self.verification.code_ttl_minutes == 0 {
            bail!("verification.code_ttl_minutes must be at least 1");
        }
        if self.segments.refresh_minutes == 0 {
            bail!("segments.refresh_minutes must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment's (large) error type
mod tests {
    use super::*;

    #[test]
    fn database_urls_hide_their_password() {
        let url = DatabaseUrl("postgres://app:hunter2@db:5432/profiles".into());
        assert_eq!(format!("{url:?}"), "postgres://app:***@db:5432/profiles");
        assert_eq!(redact("sqlite://./x.db"), "sqlite://./x.db");
    }

    #[test]
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "p.toml",
                "listen = \"127.0.0.1:9000\"\n[limits]\nmax_depth = 8\nmax_properties = 50\n",
            )?;
            jail.set_env("PROFILED_LIMITS__MAX_DEPTH", "9");
            jail.set_env("PROFILED_TEST_POSTGRES_URL", "postgres://ignored");
            let overrides = Overrides {
                data_dir: Some("/tmp/x".into()),
                ..Overrides::default()
            };
            let config =
                Config::load(Some("p.toml".into()), overrides).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.port(), 9000);
            assert_eq!(config.limits.max_depth, 9);
            assert_eq!(config.limits.max_properties, 50);
            assert_eq!(
                config.limits.max_body_bytes,
                Limits::default().max_body_bytes
            );
            assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_zero_limits_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "lisen = \"127.0.0.1:9000\"\n")?;
            assert!(Config::load(Some("bad.toml".into()), Overrides::default()).is_err());
            jail.create_file("zero.toml", "[limits]\nmax_depth = 0\n")?;
            assert!(Config::load(Some("zero.toml".into()), Overrides::default()).is_err());
            jail.create_file("deep.toml", "[limits]\nmax_depth = 200\n")?;
            assert!(Config::load(Some("deep.toml".into()), Overrides::default()).is_err());
            jail.create_file("never.toml", "[segments]\nrefresh_minutes = 0\n")?;
            assert!(Config::load(Some("never.toml".into()), Overrides::default()).is_err());
            jail.create_file("hourly.toml", "[segments]\nrefresh_minutes = 60\n")?;
            let hourly = Config::load(Some("hourly.toml".into()), Overrides::default()).unwrap();
            assert_eq!(
                hourly.segments.settings().refresh,
                std::time::Duration::from_secs(3600)
            );
            Ok(())
        });
    }

    #[test]
    fn sqlite_memory_settings_reach_the_store_and_are_bounded() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PROFILED_SQLITE__MMAP_MIB", "256");
            let config = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            let settings = config.sqlite.settings();
            assert_eq!(settings.mmap_mib, 256);
            assert_eq!(settings.writer_cache_mib, 2);
            jail.create_file("tiny.toml", "[sqlite]\nwriter_cache_mib = 1\n")?;
            assert!(Config::load(Some("tiny.toml".into()), Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn a_postgres_url_selects_postgres_with_its_settings() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "pg.toml",
                "[postgres]\nmax_connections = 4\nstatement_timeout_ms = 0\nschema = \"tenant_a\"\nssl_mode = \"verify-full\"\n",
            )?;
            jail.set_env("PROFILED_DATABASE_URL", "postgres://app:pw@db/profiles");
            let config = Config::load(Some("pg.toml".into()), Overrides::default())
                .map_err(|e| e.to_string())?;
            assert!(matches!(
                config.database(),
                Database::Postgres("postgres://app:pw@db/profiles")
            ));
            let settings = config.postgres.settings("postgres://db/x");
            assert_eq!(settings.max_connections, 4);
            assert_eq!(settings.statement_timeout, None);
            assert_eq!(settings.schema.as_deref(), Some("tenant_a"));
            assert!(matches!(settings.ssl_mode, Some(PgSslMode::VerifyFull)));

            jail.create_file("bad.toml", "[postgres]\nschema = \"Robert'); DROP\"\n")?;
            assert!(Config::load(Some("bad.toml".into()), Overrides::default()).is_err());
            jail.set_env("PROFILED_DATABASE_URL", "mysql://db/x");
            assert!(Config::load(None, Overrides::default()).is_err());
            Ok(())
        });
    }
}
