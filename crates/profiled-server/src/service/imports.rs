//! Imports: a file of commands (NDJSON or CSV) applied line by line, as a job with an id whose
//! counts and failed lines can be read while it runs and after.
//!
//! The input arrives in chunks of any size and is split into lines here, so nothing holds the
//! whole file. Lines are applied in file order, in batches of 1,000 (a batch is applied on a task
//! of its own while the next is read): the upserts of a batch share one
//! transaction and a few multi-row statements ([`Service::upsert_batch`]), each checked on its
//! own, so a bad line fails alone, with its line number and reason, and changes nothing.
//! Deletes, and upserts that merge profiles, take the one-by-one path at their place in the
//! file. Re-running a file gives the same end state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use profiled_core::WorkspaceId;
use profiled_core::import::{CsvLayout, ImportCommand, ImportCounts, ImportFailure, Mode};
use profiled_store::ImportRecord;
use serde_json::Value;

use super::bulk::{BatchOutcome, BatchUpsert};
use super::{Change, Result, Service, ServiceError, Upsert, WriteContext};

/// Lines per batch (one transaction).
const BATCH: usize = 1000;
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

/// A vendor's import format: one JSON command a line, parsed into a native command (the
/// error is the reason the line fails).
pub type LineParser = Arc<dyn Fn(&str) -> std::result::Result<ImportCommand, String> + Send + Sync>;

/// A running import: feed it the input in chunks, then finish it.
pub struct Importer {
    service: Arc<Service>,
    ws: WorkspaceId,
    ctx: Arc<WriteContext>,
    format: ImportFormat,
    /// A vendor's lines instead of profiled's NDJSON.
    parser: Option<LineParser>,
    csv: Option<CsvLayout>,
    record: ImportRecord,
    /// The part of a line not yet ended by a newline.
    pending: Vec<u8>,
    /// Lines seen so far (blank ones included), for line numbers.
    line_no: u64,
    /// A line too long to keep: skipped up to its end.
    oversized: bool,
    max_line: usize,
    /// Parsed lines not yet applied, with their line numbers.
    batch: Vec<(u64, ImportCommand)>,
    /// The batch being applied.
    in_flight: Option<tokio::task::JoinHandle<Applied>>,
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
        Self::begin(service, ws, ctx, format, None, format.as_str()).await
    }

    /// Starts an import job whose lines are a vendor's commands; `name` is recorded as the
    /// job's format.
    pub async fn start_vendor(
        service: Arc<Service>,
        ws: WorkspaceId,
        ctx: WriteContext,
        name: &str,
        parser: LineParser,
    ) -> Result<Self> {
        Self::begin(service, ws, ctx, ImportFormat::Ndjson, Some(parser), name).await
    }

    async fn begin(
        service: Arc<Service>,
        ws: WorkspaceId,
        ctx: WriteContext,
        format: ImportFormat,
        parser: Option<LineParser>,
        name: &str,
    ) -> Result<Self> {
        let now = now();
        let record = ImportRecord {
            id: uuid::Uuid::now_v7().to_string(),
            status: "running".into(),
            format: name.into(),
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
            parser,
            csv: None,
            record,
            pending: Vec::new(),
            line_no: 0,
            oversized: false,
            max_line,
            batch: Vec::new(),
            in_flight: None,
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
                self.record.counts.read += 1;
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
        self.flush().await;
        self.wait_for_batch().await;
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
        let command = match (&self.parser, self.format) {
            (Some(parse), _) => parse(text),
            (None, ImportFormat::Ndjson) => profiled_core::import::parse_ndjson(text, limits),
            (None, ImportFormat::Csv) => match &self.csv {
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

    async fn dispatch(&mut self, line_no: u64, command: ImportCommand) -> Result<()> {
        self.batch.push((line_no, command));
        if self.batch.len() >= BATCH {
            self.flush().await;
        }
        Ok(())
    }

    /// Hands the parsed lines to a task that applies them, after the task before it is done
    /// (so lines apply in file order), and reads on meanwhile.
    async fn flush(&mut self) {
        let spent = self.wait_for_batch().await;
        let batch = std::mem::take(&mut self.batch);
        if batch.is_empty() {
            return;
        }
        let applier = Applier {
            service: self.service.clone(),
            ws: self.ws,
            ctx: self.ctx.clone(),
            results: Vec::with_capacity(batch.len()),
        };
        self.in_flight = Some(tokio::spawn(applier.apply(batch)));
        // Freed here, once the next batch is on its way: by the thread that parsed them, not
        // by the one applying.
        drop(spent);
    }

    /// Waits for the batch being applied and counts what its lines did; returns its
    /// upserts, to be freed.
    async fn wait_for_batch(&mut self) -> Vec<BatchUpsert> {
        let Some(task) = self.in_flight.take() else {
            return Vec::new();
        };
        match task.await {
            Ok(Applied { results, upserts }) => {
                for (line_no, outcome) in results {
                    self.count(line_no, outcome);
                }
                upserts
            }
            Err(e) => {
                tracing::error!(error = %e, "an import batch panicked");
                self.fail(format!(
                    "the batch ending before line {} failed; import those lines again",
                    self.line_no
                ));
                Vec::new()
            }
        }
    }

    fn count(&mut self, line_no: u64, outcome: Result<Outcome>) {
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

/// What each line of a batch did, by line number.
type Results = Vec<(u64, Result<Outcome>)>;

/// An applied batch: what its lines did, and its upserts, handed back to be freed.
struct Applied {
    results: Results,
    upserts: Vec<BatchUpsert>,
}

/// Applies a batch of lines on its own task.
struct Applier {
    service: Arc<Service>,
    ws: WorkspaceId,
    ctx: Arc<WriteContext>,
    results: Results,
}

impl Applier {
    /// Applies the lines, in order.
    async fn apply(mut self, batch: Vec<(u64, ImportCommand)>) -> Applied {
        let mut lines = Vec::new();
        let mut upserts = Vec::new();
        for (line_no, command) in batch {
            match command {
                ImportCommand::Upsert {
                    identities,
                    properties,
                    mode,
                } => {
                    lines.push(line_no);
                    upserts.push(BatchUpsert {
                        identities,
                        change: change(properties, mode),
                        ctx: self.ctx.clone(),
                        create: true,
                    });
                }
                ImportCommand::Edit {
                    identities,
                    ops,
                    create,
                } => {
                    lines.push(line_no);
                    upserts.push(BatchUpsert {
                        identities,
                        change: Change::Ops(ops),
                        ctx: self.ctx.clone(),
                        create,
                    });
                }
                ImportCommand::Delete { identities } => {
                    self.upserts(&std::mem::take(&mut lines), &std::mem::take(&mut upserts))
                        .await;
                    let outcome = self
                        .service
                        .forget_unscrubbed(self.ws, &self.ctx, &identities)
                        .await
                        .map(|receipt| match receipt {
                            Some(_) => Outcome::Deleted,
                            None => Outcome::Skipped,
                        });
                    self.results.push((line_no, outcome));
                }
            }
        }
        self.upserts(&lines, &upserts).await;
        Applied {
            results: self.results,
            upserts,
        }
    }

    /// A run of upserts: in batches, with the one-by-one path for merges, and for the rest of
    /// a batch the database refused as a whole (e.g. a concurrent writer took an identity).
    async fn upserts(&mut self, lines: &[u64], upserts: &[BatchUpsert]) {
        let mut start = 0;
        while start < upserts.len() {
            match self
                .service
                .upsert_batch(self.ws, &upserts[start..], false)
                .await
            {
                Ok(outcomes) => {
                    let taken = outcomes.len();
                    for (line_no, outcome) in lines[start..].iter().zip(outcomes) {
                        self.results.push((*line_no, from_batch(outcome)));
                    }
                    start += taken;
                    if start < upserts.len() {
                        self.upsert_alone(lines[start], &upserts[start]).await;
                        start += 1;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "a batch was refused; its lines go one by one");
                    for (line_no, upsert) in lines[start..].iter().zip(&upserts[start..]) {
                        self.upsert_alone(*line_no, upsert).await;
                    }
                    start = upserts.len();
                }
            }
        }
    }

    async fn upsert_alone(&mut self, line_no: u64, upsert: &BatchUpsert) {
        if !upsert.create {
            let outcome = self.edit_existing(upsert).await;
            self.results.push((line_no, outcome));
            return;
        }
        let outcome = self
            .service
            .upsert(
                self.ws,
                &self.ctx,
                Upsert {
                    identities: upsert.identities.clone(),
                    change: upsert.change.clone(),
                    company: None,
                    seen: None,
                },
            )
            .await
            .map(|written| applied(written.created, written.changed));
        self.results.push((line_no, outcome));
    }
}

impl Applier {
    /// An edit that may not create a profile: applied to the one its identities lead to.
    async fn edit_existing(&self, upsert: &BatchUpsert) -> Result<Outcome> {
        for identity in &upsert.identities {
            match self.service.profile_by_identity(self.ws, identity).await {
                Ok(profile) => {
                    let before = profile.version;
                    let after = self
                        .service
                        .change(self.ws, &self.ctx, &profile.id, upsert.change.clone(), None)
                        .await?;
                    return Ok(applied(false, after.version != before));
                }
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Outcome::Skipped)
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

fn change(properties: serde_json::Map<String, Value>, mode: Mode) -> Change {
    match mode {
        Mode::Merge => Change::MergePatch(Value::Object(properties)),
        Mode::Replace => Change::Replace(properties),
    }
}

fn from_batch(outcome: BatchOutcome) -> Result<Outcome> {
    match outcome {
        BatchOutcome::Applied {
            created, changed, ..
        } => Ok(applied(created, changed)),
        BatchOutcome::Skipped => Ok(Outcome::Skipped),
        BatchOutcome::Failed(e) => Err(e),
    }
}

fn applied(created: bool, changed: bool) -> Outcome {
    match (created, changed) {
        (true, _) => Outcome::Created,
        (false, true) => Outcome::Updated,
        (false, false) => Outcome::Unchanged,
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

    /// Records a batch that a vendor's batch endpoint applied itself as a completed import
    /// job of that `format`, so `GET /v1/imports/{id}` reports it like any other; failures
    /// name the 1-based position of the item in the batch.
    pub async fn record_batch(
        &self,
        ws: WorkspaceId,
        ctx: &WriteContext,
        format: &str,
        started_at: Timestamp,
        counts: ImportCounts,
        mut failures: Vec<ImportFailure>,
    ) -> Result<ImportRecord> {
        failures.truncate(KEPT_FAILURES);
        let finished = now();
        let record = ImportRecord {
            id: uuid::Uuid::now_v7().to_string(),
            status: "completed".into(),
            format: format.into(),
            requested_by: ctx.actor.clone(),
            started_at: profiled_core::profile::to_micros(started_at),
            updated_at: finished,
            finished_at: Some(finished),
            counts,
            failures,
            error: None,
        };
        self.store.save_import(ws, &record).await?;
        Ok(record)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: &str, age: Duration) -> ImportRecord {
        let at = Timestamp::now() - jiff::SignedDuration::try_from(age).unwrap();
        ImportRecord {
            id: "i".into(),
            status: status.into(),
            format: "ndjson".into(),
            requested_by: "test".into(),
            started_at: at,
            updated_at: at,
            finished_at: None,
            counts: ImportCounts::default(),
            failures: Vec::new(),
            error: None,
        }
    }

    #[test]
    fn a_running_job_that_stopped_saving_reads_interrupted() {
        let minute = Duration::from_secs(60);
        assert_eq!(
            interrupted_if_stale(record("running", minute)).status,
            "interrupted"
        );
        assert_eq!(
            interrupted_if_stale(record("running", Duration::ZERO)).status,
            "running"
        );
        assert_eq!(
            interrupted_if_stale(record("completed", minute)).status,
            "completed"
        );
    }

    #[test]
    fn csv_cells_follow_quoting_on_one_line() {
        assert_eq!(
            csv_cells(r#"a@x.io,"Oslo, Norway","say ""hi""""#).unwrap(),
            vec!["a@x.io", "Oslo, Norway", "say \"hi\""]
        );
    }
}
