//! Exporting profiles: every match of a filter, one page at a time, so memory stays flat
//! whatever the size. Rendered as NDJSON (one profile per line, as the API shows it) or as
//! CSV with chosen columns.

use profiled_core::filter::{Field, Filter, JsonColumn, lookup};
use profiled_core::{RawProfile, StoredObject, WorkspaceId};
use serde_json::{Value, json};

use super::search::Search;
use super::{Result, Service, ServiceError};
use profiled_core::Violation;

/// Profiles read per page while exporting.
pub const EXPORT_PAGE: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ndjson" => Some(Self::Ndjson),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// One CSV column.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    /// `id`, `created_at`, `updated_at`, a `properties.<path>`, `computed.<path>` or
    /// `identities.<kind>`.
    Field(Field),
    Version,
    /// Whole documents, as JSON.
    Identities,
    Properties,
    Computed,
}

/// How profiles become bytes.
#[derive(Debug, Clone)]
pub struct Renderer {
    format: ExportFormat,
    columns: Vec<(String, Column)>,
}

/// The CSV columns when none are asked for.
pub const DEFAULT_COLUMNS: &str = "id,created_at,updated_at,version,identities,properties,computed";

impl Renderer {
    /// A renderer; `columns` (comma-separated) applies to CSV.
    pub fn new(format: ExportFormat, columns: Option<&str>) -> Result<Self> {
        let mut parsed = Vec::new();
        if format == ExportFormat::Csv {
            for name in columns.unwrap_or(DEFAULT_COLUMNS).split(',').map(str::trim) {
                let column = match name {
                    "version" => Column::Version,
                    "identities" => Column::Identities,
                    "properties" => Column::Properties,
                    "computed" => Column::Computed,
                    other => Column::Field(Field::parse(other).map_err(|message| {
                        ServiceError::Invalid(vec![Violation::new("/columns", message)])
                    })?),
                };
                parsed.push((name.to_owned(), column));
            }
        }
        Ok(Self {
            format,
            columns: parsed,
        })
    }

    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// What comes before the first profile: the CSV header.
    pub fn header(&self) -> Vec<u8> {
        match self.format {
            ExportFormat::Ndjson => Vec::new(),
            ExportFormat::Csv => {
                let mut writer = csv::Writer::from_writer(Vec::new());
                writer
                    .write_record(self.columns.iter().map(|(name, _)| name))
                    .expect("writing to memory");
                writer.into_inner().expect("writing to memory")
            }
        }
    }

    /// The profiles of one page.
    pub fn page(&self, profiles: &[RawProfile]) -> Vec<u8> {
        match self.format {
            ExportFormat::Ndjson => {
                let mut out = Vec::with_capacity(profiles.len() * 512);
                for profile in profiles {
                    serde_json::to_writer(&mut out, &ProfileOut::from(profile))
                        .expect("a profile serialises");
                    out.push(b'\n');
                }
                out
            }
            ExportFormat::Csv => {
                let mut writer = csv::Writer::from_writer(Vec::with_capacity(profiles.len() * 256));
                for profile in profiles {
                    let mut documents = Documents::new(profile);
                    let cells: Vec<String> = self
                        .columns
                        .iter()
                        .map(|(_, c)| cell(profile, &mut documents, c))
                        .collect();
                    writer.write_record(cells).expect("writing to memory");
                }
                writer.into_inner().expect("writing to memory")
            }
        }
    }
}

/// A profile as the native API shows it, its documents written as stored.
#[derive(serde::Serialize)]
struct ProfileOut<'a> {
    id: &'a str,
    identities: &'a [profiled_core::Identity],
    properties: &'a StoredObject,
    computed: &'a StoredObject,
    #[serde(skip_serializing_if = "is_empty_object")]
    location: &'a StoredObject,
    #[serde(skip_serializing_if = "is_empty_object")]
    device: &'a StoredObject,
    created_at: String,
    updated_at: String,
    version: i64,
}

fn is_empty_object(document: &&StoredObject) -> bool {
    document.get() == "{}"
}

impl<'a> From<&'a RawProfile> for ProfileOut<'a> {
    fn from(p: &'a RawProfile) -> Self {
        Self {
            id: &p.id.0,
            identities: &p.identities,
            properties: &p.properties,
            computed: &p.computed,
            location: &p.location,
            device: &p.device,
            created_at: p.created_at.to_string(),
            updated_at: p.updated_at.to_string(),
            version: p.version,
        }
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A row's documents, each decoded when a column first needs a value inside it.
struct Documents<'a> {
    profile: &'a RawProfile,
    decoded: [Option<Value>; 4],
}

impl<'a> Documents<'a> {
    fn new(profile: &'a RawProfile) -> Self {
        Self {
            profile,
            decoded: Default::default(),
        }
    }

    fn get(&mut self, column: JsonColumn) -> &Value {
        let (slot, raw) = match column {
            JsonColumn::Properties => (0, &self.profile.properties),
            JsonColumn::Computed => (1, &self.profile.computed),
            JsonColumn::Location => (2, &self.profile.location),
            JsonColumn::Device => (3, &self.profile.device),
        };
        self.decoded[slot]
            .get_or_insert_with(|| serde_json::from_str(raw.get()).unwrap_or(Value::Null))
    }
}

fn cell(profile: &RawProfile, documents: &mut Documents<'_>, column: &Column) -> String {
    match column {
        Column::Version => profile.version.to_string(),
        Column::Identities => serde_json::to_string(&profile.identities).expect("serialises"),
        Column::Properties => profile.properties.get().to_owned(),
        Column::Computed => profile.computed.get().to_owned(),
        Column::Field(Field::Id) => profile.id.0.clone(),
        Column::Field(Field::CreatedAt) => profile.created_at.to_string(),
        Column::Field(Field::UpdatedAt) => profile.updated_at.to_string(),
        Column::Field(
            field @ (Field::Property(_)
            | Field::Computed(_)
            | Field::Location(_)
            | Field::Device(_)),
        ) => field
            .json_path()
            .and_then(|(column, path)| match documents.get(column) {
                Value::Object(document) => lookup(document, path).map(text),
                _ => None,
            })
            .unwrap_or_default(),
        Column::Field(Field::Identity(kind)) => {
            let values: Vec<&str> = profile
                .identities
                .iter()
                .filter(|i| i.kind.as_str() == kind)
                .map(|i| i.value.as_str())
                .collect();
            match values.as_slice() {
                [one] => (*one).to_owned(),
                _ if values.is_empty() => String::new(),
                many => json!(many).to_string(),
            }
        }
        Column::Field(Field::Segments) => json!(profile.segments).to_string(),
    }
}

/// Where an export stands: the cursor of the next page.
#[derive(Debug, Clone)]
pub struct ExportCursor {
    filter: Filter,
    next: Option<String>,
    done: bool,
}

impl ExportCursor {
    pub fn new(filter: Filter) -> Self {
        Self {
            filter,
            next: None,
            done: false,
        }
    }
}

impl Service {
    /// The next page of an export, in id order; `None` when it is over. Pages are read one
    /// at a time, each a consistent read of its own.
    pub async fn export_page(
        &self,
        ws: WorkspaceId,
        cursor: &mut ExportCursor,
    ) -> Result<Option<Vec<RawProfile>>> {
        if cursor.done {
            return Ok(None);
        }
        let page = self
            .search_raw(
                ws,
                Search {
                    filter: cursor.filter.clone(),
                    sort: Vec::new(),
                    limit: EXPORT_PAGE,
                    cursor: cursor.next.take(),
                },
            )
            .await?;
        cursor.done = page.next_cursor.is_none();
        cursor.next = page.next_cursor;
        Ok((!page.profiles.is_empty()).then_some(page.profiles))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use profiled_core::{Identity, Profile, ProfileId};

    fn profile() -> Profile {
        let mut p = Profile::new(ProfileId("p1".into()), Timestamp::UNIX_EPOCH, 5.0);
        p.identities = vec![
            Identity::new_unchecked("email", "a@x.io"),
            Identity::new_unchecked("email", "b@x.io"),
            Identity::new_unchecked("user_id", "u1"),
        ];
        p.properties = json!({"plan": "pro", "n": 3, "a": {"b": [1, "x, \"y\""]}})
            .as_object()
            .unwrap()
            .clone();
        p
    }

    #[test]
    fn csv_cells_follow_the_columns_and_quote_what_needs_it() {
        let renderer = Renderer::new(
            ExportFormat::Csv,
            Some("id,identities.user_id,identities.email,identities.phone,properties.plan,properties.n,properties.a.b[1],properties.a,properties.missing"),
        )
        .unwrap();
        let mut bytes = renderer.header();
        bytes.extend(renderer.page(&[profile().into()]));
        let text = String::from_utf8(bytes).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        let cells: Vec<&str> = row.iter().collect();
        assert_eq!(
            cells,
            vec![
                "p1",
                "u1",
                r#"["a@x.io","b@x.io"]"#,
                "",
                "pro",
                "3",
                "x, \"y\"",
                r#"{"b":[1,"x, \"y\""]}"#,
                ""
            ]
        );
    }

    #[test]
    fn ndjson_is_one_profile_per_line_and_unknown_columns_are_refused() {
        let renderer = Renderer::new(ExportFormat::Ndjson, None).unwrap();
        let bytes = renderer.page(&[profile().into(), profile().into()]);
        let lines: Vec<Value> = String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["properties"]["plan"], "pro");
        assert!(Renderer::new(ExportFormat::Csv, Some("id,nonsense")).is_err());
    }
}
