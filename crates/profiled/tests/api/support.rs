//! A running server for a test: its own data directory, a random port, an admin key.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use profiled_core::{Limits, Scope};
use profiled_server::Service;
use profiled_store::Store;
use profiled_store::postgres::{PostgresSettings, PostgresStore};
use profiled_store::sqlite::{SqliteSettings, SqliteStore};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// Admin key of the `default` workspace.
    pub admin: String,
    pub service: Arc<Service>,
    pub dir: TempDir,
    setup: Setup,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// The background segment worker, as `profiled serve` runs it.
    worker: Option<JoinHandle<()>>,
}

/// An HTTP client for tests. reqwest here uses rustls with no built-in crypto provider (the
/// binary picks ring, as the database connections do), so the provider is installed first.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON pointers a problem's violations name.
    pub fn violation_pointers(&self) -> Vec<String> {
        self.body["violations"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|v| v["pointer"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// How a test server is configured, beyond the defaults.
#[derive(Clone, Default)]
pub struct Setup {
    pub limits: Limits,
    /// How long the change log keeps entries.
    pub retention: Option<std::time::Duration>,
    pub events: profiled_server::service::EventSettings,
    /// A GeoIP database for locations.
    pub geoip: Option<std::path::PathBuf>,
    /// How often segments comparing with `now` are re-checked (default 15 minutes).
    pub segment_refresh: Option<std::time::Duration>,
    /// Verification codes: `Some(None)` the development sender, `Some(Some(url))` a webhook.
    pub verification: Option<Option<String>>,
    /// How long a verification code is valid (default 10 minutes).
    pub code_ttl: Option<jiff::SignedDuration>,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(Limits::default()).await
    }

    pub async fn start_with(limits: Limits) -> Self {
        Self::start_setup(Setup {
            limits,
            ..Setup::default()
        })
        .await
    }

    /// A server whose change log keeps entries only for `retention`.
    pub async fn start_with_retention(retention: std::time::Duration) -> Self {
        Self::start_setup(Setup {
            retention: Some(retention),
            ..Setup::default()
        })
        .await
    }

    pub async fn start_setup(setup: Setup) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (service, admin) = open(dir.path(), &setup).await;
        Self::serve(
            dir,
            service,
            admin.expect("a fresh data directory issues a key"),
            setup,
        )
        .await
    }

    async fn serve(dir: TempDir, service: Arc<Service>, admin: String, setup: Setup) -> Self {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a free port");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let router = profiled_server::router(service.clone())
            .into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("the server runs");
        });
        let worker = tokio::spawn(profiled_server::service::run_segment_worker(
            service.clone(),
        ));
        Self {
            base,
            client: client(),
            admin,
            service,
            dir,
            setup,
            stop: Some(stop),
            task: Some(task),
            worker: Some(worker),
        }
    }

    /// Stops the server, closes the database and starts a new server on the same data.
    pub async fn restart(mut self) -> Self {
        self.shutdown().await;
        let setup = Setup {
            retention: None,
            ..self.setup.clone()
        };
        let (service, issued) = open(self.dir.path(), &setup).await;
        assert!(issued.is_none(), "a restart never issues a new first key");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        Self::serve(dir, service, self.admin.clone(), setup).await
    }

    async fn shutdown(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort();
            let _ = worker.await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server stops cleanly");
        }
        self.service.store().close().await;
    }

    /// A new key of the default workspace.
    pub async fn key(&self, scope: Scope) -> String {
        let ws = self.service.workspace_by_name("default").await.unwrap();
        self.service
            .create_key(ws.id, scope, "test")
            .await
            .unwrap()
            .token
            .0
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::read(request.send().await.expect("the server answers")).await
    }

    /// A request with a raw body and content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        key: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body);
        Self::read(request.send().await.expect("the server answers")).await
    }

    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    pub async fn upsert(&self, key: &str, body: Value) -> Reply {
        self.post("/v1/profiles", key, body).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The database a test's servers use.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A SQLite file in the test's data directory.
    Sqlite,
    /// A schema of its own on the PostgreSQL at `url`, dropped when the test ends.
    Postgres { url: String, schema: String },
}

tokio::task_local! {
    static BACKEND: Backend;
}

/// The backend of the running test (SQLite outside [`run_on`]).
pub fn backend() -> Backend {
    BACKEND.try_with(Clone::clone).unwrap_or(Backend::Sqlite)
}

/// Runs a test case on a backend: on PostgreSQL (when `PROFILED_TEST_POSTGRES_URL` is set;
/// otherwise the case is skipped) in a fresh schema that is dropped afterwards.
pub async fn run_on(postgres: bool, case: impl std::future::Future<Output = ()>) {
    if !postgres {
        return BACKEND.scope(Backend::Sqlite, case).await;
    }
    let Ok(url) = std::env::var("PROFILED_TEST_POSTGRES_URL") else {
        eprintln!("PROFILED_TEST_POSTGRES_URL is unset: skipped on PostgreSQL");
        return;
    };
    let schema = format!("profiled_it_{}", uuid::Uuid::new_v4().simple());
    let backend = Backend::Postgres {
        url: url.clone(),
        schema: schema.clone(),
    };
    BACKEND.scope(backend, case).await;
    // Reached only when the case passed; a failed case leaves its schema for inspection.
    let pool = sqlx::PgPool::connect(&url)
        .await
        .expect("PostgreSQL answers");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&pool)
        .await
        .expect("the test schema drops");
    pool.close().await;
}

/// Declares a test that runs on every backend, as `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! backend_test {
    ($(#[$test:meta])+ async fn $name:ident() $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn case() $body

            $(#[$test])+
            async fn sqlite() {
                $crate::support::run_on(false, case()).await
            }

            $(#[$test])+
            async fn postgres() {
                $crate::support::run_on(true, case()).await
            }
        }
    };
}

/// Opens the test's database the way `profiled serve` does; returns the first admin key if
/// one was issued.
async fn open(dir: &Path, setup: &Setup) -> (Arc<Service>, Option<String>) {
    let store: Arc<dyn Store> = match backend() {
        Backend::Sqlite => Arc::new(
            SqliteStore::open_dir(dir, &SqliteSettings::default())
                .await
                .expect("the store opens"),
        ),
        Backend::Postgres { url, schema } => {
            let mut settings = PostgresSettings::new(url);
            settings.schema = Some(schema);
            settings.max_connections = 8;
            Arc::new(
                PostgresStore::open(&settings)
                    .await
                    .expect("the store opens"),
            )
        }
    };
    let enricher = match &setup.geoip {
        Some(path) => {
            profiled_server::service::Enricher::with_geoip(path).expect("the GeoIP database opens")
        }
        None => profiled_server::service::Enricher::default(),
    };
    let service = Service::new(store, setup.limits.clone())
        .with_retention(setup.retention)
        .with_events(setup.events.clone())
        // Tests see a new segment backfilled within a tenth of a second.
        .with_segments(profiled_server::service::SegmentSettings {
            cache_ttl: std::time::Duration::from_millis(20),
            poll: std::time::Duration::from_millis(20),
            refresh: setup
                .segment_refresh
                .unwrap_or(std::time::Duration::from_secs(15 * 60)),
        })
        .with_enricher(enricher)
        .with_verification(
            match &setup.verification {
                None => profiled_server::service::verification::Sender::None,
                Some(None) => profiled_server::service::verification::Sender::development(),
                Some(Some(url)) => profiled_server::service::verification::Sender::webhook(
                    url.clone(),
                    Some("webhook-secret".into()),
                ),
            },
            setup
                .code_ttl
                .unwrap_or(jiff::SignedDuration::from_mins(10)),
        );
    let issued = service.bootstrap(true).await.expect("bootstrap");
    (Arc::new(service), issued.map(|k| k.token.0))
}

/// Asserts that a reply is an RFC 9457 problem with this status.
pub fn assert_problem(reply: &Reply, status: u16) {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "unexpected status; body: {}",
        reply.body
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "body: {}",
        reply.body
    );
    assert_eq!(reply.body["status"], status);
    for field in ["type", "title", "detail"] {
        assert!(
            reply.body[field].is_string(),
            "problem without `{field}`: {}",
            reply.body
        );
    }
}
