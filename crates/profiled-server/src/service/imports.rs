//! Imports: a file of commands (NDJSON or CSV) applied line by line, as a job with an id whose
//! counts and failed lines can be read while it runs and after.
//!
//! The input arrives in chunks of any size and is split into lines here, so nothing holds the
//! whole file. Every line is its own transaction: a bad line fails alone, with its line number
//! and reason, and changes nothing. Lines are applied concurrently (on SQLite, concurrent
//! writes share commits), except that a line waits for the lines before it that name one of
//! its identities, so the last line about a person wins, as in the file. Re-running a file
//! gives the same end state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use profiled_core::import::{CsvLayout, ImportCommand, ImportCounts, ImportFailure, Mode};
use profiled_core::{Identity, WorkspaceId};
use profiled_store::ImportRecord;
use serde_json::Value;
use tokio::task::JoinSet;

use super::{Change, Result, Service, ServiceError, Upsert, WriteContext};

/// Lines applied at the same time.
const IN_FLIGHT: usize = 64;
/// Failed lines kept with their reasons (all are counted).
pub const KEPT_FAILURES: usize = 1000;
/// How often a running import saves its record.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// A running import whose record is older than this died with its process.
const STALE: Duration = Duration::from_secs(30);

/// Now, in the microseconds every backend stores.
fn now() -> Timestamp {
    profiled_core::profile::to_micros(Timestamp::now())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Ndjson,
    Csv,
}

impl ImportFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ndjson" => Some(Self::Ndjson),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Csv => "csv",
        }
    }
}

/// What one line did.
enum Outcome {
    Created,
    Updated,
    Unchanged,
    Deleted,
    Skipped,
}

/// A running import: feed it the input in chunks, then finish it.
pub struct Importer {
    service: Arc<Service>,
    ws: WorkspaceId,
    ctx: Arc<WriteContext>,
    format: ImportFormat,
    csv: Option<CsvLayout>,
    record: ImportRecord,
    /// The part of a line not yet ended by a newline.
    pending: Vec<u8>,
    /// Lines seen so far (blank ones included), for line numbers.
    line_no: u64,
    /// A line too long to keep: skipped up to its end.
    oversized: bool,
    max_line: usize,
    tasks: JoinSet<(Vec<Identity>, u64, Result<Outcome>)>,
    in_flight: HashMap<Identity, usize>,
    last_save: Instant,
    any_deleted: bool,
}

impl Importer {
    /// Starts an import job and saves its record (status `running`).
    pub async fn start(
        service: Arc<Service>,
        ws: WorkspaceId,
        ctx: WriteContext,
        format: ImportFormat,
    ) -> Result<Self> {
        let now = now();
        let record = ImportRecord {
            id: uuid::Uuid::now_v7().to_string(),
            status: "running".into(),
            format: format.as_str().into(),
            requested_by: ctx.actor.clone(),
            started_at: now,
            updated_at: now,
            finished_at: None,
            counts: ImportCounts::default(),
            failures: Vec::new(),
            error: None,
        };
        service.store.save_import(ws, &record).await?;
        let max_line = service.limits.max_body_bytes;
        Ok(Self {
            service,
            ws,
            ctx: Arc::new(ctx),
            format,
            csv: None,
            record,
            pending: Vec::new(),
            line_no: 0,
            oversized: false,
            max_line,
            tasks: JoinSet::new(),
            in_flight: HashMap::new(),
            last_save: Instant::now(),
            any_deleted: false,
        })
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// Counts so far (for a progress display).
    pub fn counts(&self) -> ImportCounts {
        self.record.counts
    }

    /// Takes the next chunk of input.
    pub async fn feed(&mut self, mut chunk: &[u8]) -> Result<()> {
        while let Some(end) = chunk.iter().position(|b| *b == b'\n') {
            let (head, rest) = chunk.split_at(end);
            chunk = &rest[1..];
            if self.oversized {
                self.oversized = false;
            } else {
                self.pending.extend_from_slice(head);
                let line = std::mem::take(&mut self.pending);
                self.line(line).await?;
            }
        }
        if !self.oversized {
            self.pending.extend_from_slice(chunk);
            if self.pending.len() > self.max_line {
                // Count it now and skip the rest of it as it arrives.
                self.pending.clear();
                self.oversized = true;
                self.line_no += 1;
                self.fail(format!("the line is longer than {} bytes", self.max_line));
            }
        }
        self.save_now_and_then().await
    }

    /// Ends the input: waits for every line, saves the record as `completed`.
    pub async fn finish(mut self) -> Result<ImportRecord> {
        if !self.pending.is_empty() && !self.oversized {
            let line = std::mem::take(&mut self.pending);
            self.line(line).await?;
        }
        self.settle(None).await
    }

    /// The input broke off (a client went away, a file could not be read): what was read is
    /// applied, and the record says why the rest is missing.
    pub async fn abort(self, reason: String) -> Result<ImportRecord> {
        self.settle(Some(reason)).await
    }

    async fn settle(mut self, error: Option<String>) -> Result<ImportRecord> {
        while let Some(done) = self.tasks.join_next().await {
            self.complete(done);
        }
        if self.any_deleted {
            self.service.scrub().await;
        }
        let now = now();
        self.record.status = if error.is_some() {
            "failed"
        } else {
            "completed"
        }
        .into();
        self.record.error = error;
        self.record.updated_at = now;
        self.record.finished_at = Some(now);
        self.service
            .store
            .save_import(self.ws, &self.record)
            .await?;
        Ok(self.record)
    }

    async fn line(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.line_no += 1;
        let line_no = self.line_no;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            self.record.counts.read += 1;
            self.fail("the line is not UTF-8".into());
            return Ok(());
        };
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() {
            return Ok(());
        }
        let limits = &self.service.limits;
        let command = match self.format {
            ImportFormat::Ndjson => profiled_core::import::parse_ndjson(text, limits),
            ImportFormat::Csv => match &self.csv {
                None => {
                    match csv_cells(text)
                        .and_then(|cells| CsvLayout::from_header(cells.iter().map(String::as_str)))
                    {
                        Ok(layout) => self.csv = Some(layout),
                        Err(reason) => {
                            return Err(ServiceError::Invalid(vec![
                                profiled_core::Violation::new("/header", reason),
                            ]));
                        }
                    }
                    return Ok(());
                }
                Some(layout) => csv_cells(text)
                    .and_then(|cells| layout.row(cells.iter().map(String::as_str), limits)),
            },
        };
        self.record.counts.read += 1;
        match command {
            Ok(command) => self.dispatch(line_no, command).await,
            Err(reason) => {
                self.fail(reason);
                Ok(())
            }
        }
    }

    /// Starts a line once no earlier line naming one of its identities is still running.
    async fn dispatch(&mut self, line_no: u64, command: ImportCommand) -> Result<()> {
        let identities = command.identities().to_vec();
        while self.tasks.len() >= IN_FLIGHT
            || identities.iter().any(|i| self.in_flight.contains_key(i))
        {
            let done = self
                .tasks
                .join_next()
                .await
                .expect("a line is in flight while we wait");
            self.complete(done);
        }
        for identity in &identities {
            *self.in_flight.entry(identity.clone()).or_default() += 1;
        }
        let service = self.service.clone();
        let ctx = self.ctx.clone();
        let ws = self.ws;
        self.tasks.spawn(async move {
            let outcome = apply(&service, ws, &ctx, command).await;
            (identities, line_no, outcome)
        });
        Ok(())
    }

    fn complete(
        &mut self,
        done: std::result::Result<(Vec<Identity>, u64, Result<Outcome>), tokio::task::JoinError>,
    ) {
        let Ok((identities, line_no, outcome)) = done else {
            // A panic in a line's task: count it, keep going.
            self.record.counts.failed += 1;
            return;
        };
        for identity in identities {
            if let Some(n) = self.in_flight.get_mut(&identity) {
                *n -= 1;
                if *n == 0 {
                    self.in_flight.remove(&identity);
                }
            }
        }
        let counts = &mut self.record.counts;
        match outcome {
            Ok(Outcome::Created) => counts.created += 1,
            Ok(Outcome::Updated) => counts.updated += 1,
            Ok(Outcome::Unchanged) => counts.unchanged += 1,
            Ok(Outcome::Deleted) => {
                counts.deleted += 1;
                self.any_deleted = true;
            }
            Ok(Outcome::Skipped) => counts.skipped += 1,
            Err(e) => self.fail_line(line_no, reason(&e)),
        }
    }

    fn fail(&mut self, reason: String) {
        self.fail_line(self.line_no, reason);
    }

    fn fail_line(&mut self, line: u64, reason: String) {
        self.record.counts.failed += 1;
        if self.record.failures.len() < KEPT_FAILURES {
            self.record.failures.push(ImportFailure { line, reason });
        }
    }

    async fn save_now_and_then(&mut self) -> Result<()> {
        if self.last_save.elapsed() >= SAVE_EVERY {
            self.last_save = Instant::now();
            self.record.updated_at = now();
            self.record.failures.sort_by_key(|f| f.line);
            self.service
                .store
                .save_import(self.ws, &self.record)
                .await?;
        }
        Ok(())
    }
}

/// The cells of one CSV line (a row may not span lines).
fn csv_cells(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => Ok(record.iter().map(str::to_owned).collect()),
        Some(Err(e)) => Err(format!("not a CSV row: {e}")),
        None => Ok(Vec::new()),
    }
}

async fn apply(
    service: &Service,
    ws: WorkspaceId,
    ctx: &WriteContext,
    command: ImportCommand,
) -> Result<Outcome> {
    match command {
        ImportCommand::Upsert {
            identities,
            properties,
            mode,
        } => {
            let change = match mode {
                Mode::Merge => Change::MergePatch(Value::Object(properties)),
                Mode::Replace => Change::Replace(properties),
            };
            let written = service
                .upsert(ws, ctx, Upsert { identities, change })
                .await?;
            Ok(if written.created {
                Outcome::Created
            } else if written.changed {
                Outcome::Updated
            } else {
                Outcome::Unchanged
            })
        }
        ImportCommand::Delete { identities } => Ok(
            match service.forget_unscrubbed(ws, ctx, &identities).await? {
                Some(_) => Outcome::Deleted,
                None => Outcome::Skipped,
            },
        ),
    }
}

/// Why a line failed, in words for the report; storage failures stay vague (and logged).
fn reason(error: &ServiceError) -> String {
    match error {
        ServiceError::Invalid(violations) => violations
            .iter()
            .map(|v| format!("{}: {}", v.pointer, v.message))
            .collect::<Vec<_>>()
            .join("; "),
        ServiceError::Store(e) => {
            tracing::error!(error = %e, "import line failed in storage");
            "a storage failure; the line can be imported again".into()
        }
        other => other.to_string(),
    }
}

impl Service {
    /// An import job's record. A job still `running` whose record has not been saved for a
    /// while died with its process: it is reported `interrupted`.
    pub async fn import(&self, ws: WorkspaceId, id: &str) -> Result<ImportRecord> {
        let record = self
            .store
            .import(ws, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("import `{id}`")))?;
        Ok(interrupted_if_stale(record))
    }

    /// Import jobs, newest first.
    pub async fn imports(&self, ws: WorkspaceId, limit: u32) -> Result<Vec<ImportRecord>> {
        Ok(self
            .store
            .imports(ws, limit)
            .await?
            .into_iter()
            .map(interrupted_if_stale)
            .collect())
    }
}

fn interrupted_if_stale(mut record: ImportRecord) -> ImportRecord {
    let stale = now().duration_since(record.updated_at).unsigned_abs() > STALE;
    if record.status == "running" && stale {
        record.status = "interrupted".into();
    }
    record
}
