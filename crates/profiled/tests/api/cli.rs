//! The real `profiled` binary: first start, keys from the CLI while the server runs, and a
//! hard kill that loses no acknowledged write.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use crate::support::TestApp;

const BIN: &str = env!("CARGO_BIN_EXE_profiled");

fn profiled(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("PROFILED_CONFIG")
        .output()
        .expect("profiled runs")
}

/// A `profiled serve` process on a random port.
pub struct Server {
    child: Child,
    pub base: String,
    stdout: mpsc::Receiver<String>,
}

impl Server {
    fn start(data_dir: &Path) -> Self {
        Self::start_with(&["--data-dir", &data_dir.display().to_string()], &[])
    }

    /// A server with these extra arguments and environment variables.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text"])
            .args(args)
            .envs(env.iter().copied())
            .env_remove("PROFILED_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("profiled serve starts");
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        let address = loop {
            let line = stderr
                .recv_timeout(Duration::from_secs(30))
                .expect("the server logs that it listens");
            if let Some(rest) = line.split("address=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        Self {
            child,
            base: format!("http://{address}"),
            stdout,
        }
    }

    /// The admin key a first start prints, waiting for it (stdout is read on another thread,
    /// so it may arrive after the server already listens).
    pub fn first_key(&self) -> String {
        loop {
            let line = self
                .stdout
                .recv_timeout(Duration::from_secs(30))
                .expect("the first start prints a key");
            if let Some(key) = key_in(&line) {
                return key;
            }
        }
    }

    /// Everything printed on stdout so far.
    pub fn printed(&self) -> String {
        self.stdout.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub fn key_in(text: &str) -> Option<String> {
    text.split_whitespace()
        .find(|w| w.starts_with("prf_"))
        .map(str::to_owned)
}

async fn status(
    base: &str,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<serde_json::Value>,
) -> reqwest::StatusCode {
    let mut request = crate::support::client()
        .request(method, format!("{base}{path}"))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn the_first_start_prints_an_admin_key_once_and_never_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let key = server.first_key();
    assert_eq!(
        status(&server.base, reqwest::Method::GET, "/v1/keys", &key, None).await,
        200
    );
    assert!(
        dir.path().join("profiled.db").exists(),
        "the database file is created in the data dir"
    );
    drop(server);

    let again = Server::start(dir.path());
    assert_eq!(
        status(&again.base, reqwest::Method::GET, "/v1/keys", &key, None).await,
        200
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        key_in(&again.printed()),
        None,
        "a second start printed a key"
    );
}

#[tokio::test]
async fn keys_created_and_revoked_by_the_cli_work_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let created = profiled(dir.path(), &["workspaces", "create", "shop"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let shop_admin = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    assert!(shop_admin.starts_with("prf_"));

    let server = Server::start(dir.path());
    let output = profiled(
        dir.path(),
        &[
            "keys",
            "create",
            "--workspace",
            "shop",
            "--scope",
            "read_write",
            "--name",
            "backend",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout is the key alone: {stdout:?}"
    );
    let key = stdout.trim().to_owned();
    let upsert = json!({"identities": {"user_id": "cli"}, "set": {"a": 1}});
    assert_eq!(
        status(
            &server.base,
            reqwest::Method::POST,
            "/v1/profiles",
            &key,
            Some(upsert)
        )
        .await,
        201
    );

    let listed = profiled(dir.path(), &["keys", "list", "--workspace", "shop"]);
    let listing = String::from_utf8(listed.stdout).unwrap();
    let key_id = key.split('_').nth(1).unwrap();
    assert!(
        listing.contains(key_id) && listing.contains("read_write") && !listing.contains(&key),
        "{listing}"
    );

    let revoked = profiled(dir.path(), &["keys", "revoke", key_id]);
    assert!(revoked.status.success());
    // Another process's revocation reaches the server's key cache within a second.
    let mut refused = false;
    for _ in 0..30 {
        if status(
            &server.base,
            reqwest::Method::GET,
            "/v1/profiles/by/user_id/cli",
            &key,
            None,
        )
        .await
            == 401
        {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "a key revoked by the CLI still works after 3 s");
    assert_eq!(
        status(
            &server.base,
            reqwest::Method::GET,
            "/v1/profiles/by/user_id/cli",
            &shop_admin,
            None
        )
        .await,
        200
    );

    let bad_scope = profiled(dir.path(), &["keys", "create", "--scope", "root"]);
    assert!(!bad_scope.status.success());
    let no_workspace = profiled(
        dir.path(),
        &["keys", "create", "--workspace", "nope", "--scope", "read"],
    );
    assert!(!no_workspace.status.success());
    assert!(String::from_utf8_lossy(&no_workspace.stderr).contains("not found"));
}

#[tokio::test]
async fn a_killed_server_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let key = String::from_utf8(
        profiled(dir.path(), &["keys", "create", "--scope", "read_write"]).stdout,
    )
    .unwrap();
    let key = key.trim();
    let server = Server::start(dir.path());
    let client = crate::support::client();
    let mut acknowledged = Vec::new();
    for i in 0..50 {
        let reply = client
            .post(format!("{}/v1/profiles", server.base))
            .bearer_auth(key)
            .json(&json!({"identities": {"user_id": format!("k{i}")}, "increment": {"n": i}}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201);
        acknowledged.push(TestApp::read(reply).await.body);
    }
    drop(server); // SIGKILL: no graceful shutdown, no checkpoint.

    let server = Server::start(dir.path());
    for profile in &acknowledged {
        let reply = client
            .get(format!(
                "{}/v1/profiles/{}",
                server.base,
                profile["id"].as_str().unwrap()
            ))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(&TestApp::read(reply).await.body, profile);
    }
}

#[tokio::test]
async fn the_cli_exports_a_workspace_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let key = server.first_key();
    for (user, plan) in [("a", "pro"), ("b", "free"), ("c", "pro")] {
        let upsert = json!({"identities": {"user_id": user}, "set": {"plan": plan}});
        assert_eq!(
            status(
                &server.base,
                reqwest::Method::POST,
                "/v1/profiles",
                &key,
                Some(upsert)
            )
            .await,
            201
        );
    }
    let file = dir.path().join("pro.csv");
    let output = profiled(
        dir.path(),
        &[
            "export",
            "--format",
            "csv",
            "--columns",
            "identities.user_id,properties.plan",
            "--filter",
            "properties.plan = \"pro\"",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut rows: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    rows[1..].sort();
    assert_eq!(
        rows,
        ["identities.user_id,properties.plan", "a,pro", "c,pro"]
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("exported 2 profiles"));

    let ndjson = profiled(dir.path(), &["export"]);
    assert!(ndjson.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(ndjson.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines
            .iter()
            .all(|p| p["identities"][0]["kind"] == "user_id")
    );

    let bad = profiled(dir.path(), &["export", "--filter", "properties.plan ="]);
    assert!(!bad.status.success());
}

#[tokio::test]
async fn the_cli_imports_a_file_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let key = server.first_key();
    let file = dir.path().join("people.csv");
    std::fs::write(
        &file,
        "email,plan,age:number\na@x.io,pro,41\nb@x.io,free,oops\nc@x.io,free,7\n",
    )
    .unwrap();
    let output = profiled(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("3 rows"), "{stderr}");
    assert!(stderr.contains("2 created"), "{stderr}");
    assert!(stderr.contains("line 3: age"), "{stderr}");
    let profile = crate::support::client()
        .get(format!("{}/v1/profiles/by/email/a@x.io", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let profile: serde_json::Value = profile.json().await.unwrap();
    assert_eq!(profile["properties"], json!({"plan": "pro", "age": 41}));

    // The same through the running server.
    let remote = dir.path().join("more.ndjson");
    std::fs::write(
        &remote,
        "{\"identities\": {\"email\": \"d@x.io\"}, \"properties\": {\"plan\": \"team\"}}\nnot json\n",
    )
    .unwrap();
    let output = profiled(
        dir.path(),
        &[
            "import",
            remote.to_str().unwrap(),
            "--server",
            &server.base,
            "--key",
            &key,
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("1 created") && stderr.contains("1 failed"),
        "{stderr}"
    );
    assert!(stderr.contains("line 2: not a JSON command"), "{stderr}");
    let refused = profiled(
        dir.path(),
        &[
            "import",
            remote.to_str().unwrap(),
            "--server",
            &server.base,
            "--key",
            "prf_wrong",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));

    let unknown = profiled(dir.path(), &["import", "/nonexistent/file.ndjson"]);
    assert!(!unknown.status.success());
    let no_format = dir.path().join("data.txt");
    std::fs::write(&no_format, "x").unwrap();
    assert!(
        !profiled(dir.path(), &["import", no_format.to_str().unwrap()])
            .status
            .success()
    );
}
