//! Document imports of user profiles: an import is created once, and each execution streams
//! an NDJSON body of commands through the native import engine (a job with counts and
//! per-line errors; a bad line fails alone).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use profiled_core::import::ImportCommand;
use profiled_core::{Identity, Limits};
use profiled_store::ImportRecord;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::user_profiles::{self, Slot, Strategy, integer};
use super::{Datamart, MicsError, ok};
use crate::http::AppState;
use crate::http::extract::{OriginTag, content_type_is, parse_json};
use crate::service::compat_settings::{DocumentImport, MediarithmicsSettings};
use crate::service::imports::Importer;

type Reply = Result<Response, MicsError>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewImport {
    document_type: String,
    mime_type: String,
    #[serde(default)]
    encoding: Option<String>,
    name: String,
    /// Accepted and ignored: profiled runs an execution as soon as its body arrives.
    #[serde(default)]
    #[allow(dead_code)]
    priority: Option<Value>,
}

fn import_view(import: &DocumentImport, dm: &str) -> Value {
    json!({
        "id": import.id,
        "datamart_id": dm,
        "document_type": import.document_type,
        "mime_type": import.mime_type,
        "encoding": import.encoding,
        "name": import.name,
        "creation_ts": import.created_at,
    })
}

/// `POST /v1/datamarts/{dm}/document_imports`: `{document_type: "USER_PROFILE", mime_type:
/// "APPLICATION_X_NDJSON", encoding, name}`.
pub async fn create(State(state): State<AppState>, dm: Datamart, request: Request) -> Reply {
    let ws = dm.write()?;
    let bytes = crate::http::extract::read_body(request, &state).await?;
    let body: NewImport = parse_json(&bytes)?;
    if body.document_type != "USER_PROFILE" {
        return Err(MicsError::bad(
            "only `USER_PROFILE` documents are imported here",
        ));
    }
    if body.mime_type != "APPLICATION_X_NDJSON" {
        return Err(MicsError::bad(
            "user profiles are imported as `APPLICATION_X_NDJSON`",
        ));
    }
    let encoding = body.encoding.unwrap_or_else(|| "utf-8".into());
    if !encoding.eq_ignore_ascii_case("utf-8") && !encoding.eq_ignore_ascii_case("utf8") {
        return Err(MicsError::bad("the encoding is `utf-8`"));
    }
    if body.name.trim().is_empty() || body.name.len() > 255 {
        return Err(MicsError::bad("a name is 1 to 255 bytes"));
    }
    let import = DocumentImport {
        id: uuid::Uuid::now_v7().to_string(),
        name: body.name,
        document_type: body.document_type,
        mime_type: body.mime_type,
        encoding,
        created_at: jiff::Timestamp::now().as_millisecond(),
    };
    state.service.save_document_import(ws, &import).await?;
    Ok(ok(import_view(&import, &dm.name)))
}

/// `GET /v1/datamarts/{dm}/document_imports/{id}`
pub async fn show(
    State(state): State<AppState>,
    dm: Datamart,
    Path((_, id)): Path<(String, String)>,
) -> Reply {
    let ws = dm.read()?;
    let import = state.service.document_import(ws, &id).await?;
    Ok(ok(import_view(&import, &dm.name)))
}

/// The job format an execution of this import is recorded with.
fn job_format(import_id: &str) -> String {
    format!("mediarithmics:{import_id}")
}

fn execution_view(record: &ImportRecord, import_id: &str) -> Value {
    let counts = record.counts;
    let status = match record.status.as_str() {
        "running" => "RUNNING",
        "completed" => "SUCCEEDED",
        _ => "FAILED",
    };
    let errors: Vec<Value> = record
        .failures
        .iter()
        .map(|f| json!({"line": f.line, "message": f.reason}))
        .collect();
    json!({
        "id": record.id,
        "status": status,
        "job_type": "DOCUMENT_IMPORT",
        "import_id": import_id,
        "creation_date": record.started_at.as_millisecond(),
        "start_date": record.started_at.as_millisecond(),
        "end_date": record.finished_at.map(|t| t.as_millisecond()),
        "result": {
            "total_read": counts.read,
            "total_success": counts.created + counts.updated + counts.unchanged + counts.skipped,
            "total_failure": counts.failed,
            "created": counts.created,
            "updated": counts.updated,
            "unchanged": counts.unchanged,
            "skipped": counts.skipped,
        },
        "errors": errors,
        "error": record.error,
    })
}

/// `POST /v1/datamarts/{dm}/document_imports/{id}/executions` with an `application/x-ndjson`
/// body: runs it, and answers with the execution once every line is applied.
pub async fn execute(
    State(state): State<AppState>,
    dm: Datamart,
    Path((_, id)): Path<(String, String)>,
    request: Request,
) -> Reply {
    let ws = dm.write()?;
    let import = state.service.document_import(ws, &id).await?;
    if !content_type_is(request.headers(), "application/x-ndjson") {
        return Err(MicsError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the commands as `application/x-ndjson`",
        ));
    }
    let settings = state.service.mediarithmics_settings(ws).await?;
    let limits = state.service.limits().clone();
    let parser = Arc::new(move |line: &str| {
        parse_line(
            line,
            &settings,
            &limits,
            jiff::Timestamp::now().as_millisecond(),
        )
    });
    let importer = Importer::start_vendor(
        state.service.clone(),
        ws,
        dm.caller.context(OriginTag(None)),
        &job_format(&import.id),
        parser,
    )
    .await?;
    let record = crate::http::v1::imports::feed_body(importer, request.into_body()).await?;
    Ok(ok(execution_view(&record, &import.id)))
}

/// `GET /v1/datamarts/{dm}/document_imports/{id}/executions/{execution}`
pub async fn execution(
    State(state): State<AppState>,
    dm: Datamart,
    Path((_, id, execution)): Path<(String, String, String)>,
) -> Reply {
    let ws = dm.read()?;
    let record = state.service.import(ws, &execution).await?;
    if record.format != job_format(&id) {
        return Err(MicsError::new(
            StatusCode::NOT_FOUND,
            format!("no execution `{execution}` of import `{id}`"),
        ));
    }
    Ok(ok(execution_view(&record, &id)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    operation: Option<String>,
    compartment_id: Option<Value>,
    user_account_id: Option<String>,
    email_hash: Option<String>,
    user_agent_id: Option<String>,
    force_replace: Option<bool>,
    merge_objects: Option<bool>,
    update_strategy: Option<String>,
    user_profile: Option<Map<String, Value>>,
}

/// One import line: `operation`, exactly one identifier, and for an UPSERT the
/// `user_profile` with its merge options (`force_replace` and `merge_objects`, or
/// `update_strategy`). The error is the line's reason in the execution's report.
pub fn parse_line(
    text: &str,
    settings: &MediarithmicsSettings,
    limits: &Limits,
    now_ms: i64,
) -> Result<ImportCommand, String> {
    let line: Line =
        serde_json::from_str(text).map_err(|e| format!("not an import command: {e}"))?;
    let default = settings.default_compartment();
    let known = |c: i64| {
        if settings.has_compartment(c) {
            Ok(c)
        } else {
            Err(format!("no compartment `{c}` in this datamart"))
        }
    };
    let given = [
        line.user_account_id.is_some(),
        line.email_hash.is_some(),
        line.user_agent_id.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given != 1 {
        return Err(format!(
            "name exactly one identifier (compartment_id + user_account_id, email_hash or user_agent_id); this line names {given}"
        ));
    }
    if line.compartment_id.is_some() && line.user_account_id.is_none() {
        return Err("`compartment_id` goes with `user_account_id`".into());
    }
    let mut account_slot = None;
    let identity = if let Some(account) = &line.user_account_id {
        let compartment = match &line.compartment_id {
            None | Some(Value::Null) => default,
            Some(v) => integer(v).ok_or("`compartment_id` is a compartment's integer id")?,
        };
        let compartment = known(compartment)?;
        account_slot = Some(Slot {
            compartment,
            account: Some(account.clone()),
        });
        Identity::parse(&format!("account:{compartment}"), account, limits)
    } else if let Some(hash) = &line.email_hash {
        Identity::parse("email_hash", hash, limits)
    } else {
        Identity::parse(
            "user_agent_id",
            line.user_agent_id.as_deref().unwrap_or_default(),
            limits,
        )
    }?;
    match line.operation.as_deref() {
        Some("UPSERT") => {
            let profile = line
                .user_profile
                .ok_or("an UPSERT carries its `user_profile`")?;
            let strategy = match (line.update_strategy.as_deref(), line.force_replace) {
                (Some(_), Some(_)) => {
                    return Err("use `force_replace` or `update_strategy`, not both".into());
                }
                (Some("FORCE_REPLACE"), None) | (None, Some(true)) => Strategy::Replace,
                (Some("PARTIAL_UPDATE"), None) | (None, Some(false)) | (None, None) => {
                    Strategy::Merge {
                        deep: line.merge_objects.unwrap_or(false),
                    }
                }
                (Some("PARTIAL_DELETE"), None) => Strategy::PartialDelete,
                (Some(other), None) => {
                    return Err(format!(
                        "`update_strategy` is PARTIAL_UPDATE, PARTIAL_DELETE or FORCE_REPLACE, not `{other}`"
                    ));
                }
            };
            let slot = Slot::named_by(&profile, default)?;
            known(slot.compartment)?;
            Ok(ImportCommand::Edit {
                identities: vec![identity],
                ops: user_profiles::upsert_ops(&slot, strategy, &profile, now_ms),
                create: strategy != Strategy::PartialDelete,
            })
        }
        Some("DELETE") => {
            let slot = match &line.user_profile {
                Some(profile) => Some(Slot::named_by(profile, default)?),
                None => account_slot,
            };
            Ok(ImportCommand::Edit {
                identities: vec![identity],
                ops: user_profiles::delete_ops(slot.as_ref()),
                create: false,
            })
        }
        Some(other) => Err(format!("`operation` is UPSERT or DELETE, not `{other}`")),
        None => Err("name the `operation`: UPSERT or DELETE".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: Value) -> Result<ImportCommand, String> {
        parse_line(
            &line.to_string(),
            &MediarithmicsSettings::default(),
            &Limits::default(),
            1000,
        )
    }

    #[test]
    fn one_identifier_a_line() {
        assert!(
            parse(json!({"operation": "UPSERT", "email_hash": "h", "user_profile": {}})).is_ok()
        );
        let two = parse(
            json!({"operation": "UPSERT", "email_hash": "h", "user_agent_id": "vec:1", "user_profile": {}}),
        );
        assert!(two.unwrap_err().contains("names 2"));
        assert!(
            parse(json!({"operation": "UPSERT", "user_profile": {}}))
                .unwrap_err()
                .contains("names 0")
        );
        assert!(
            parse(json!({"operation": "UPSERT", "compartment_id": 1, "user_profile": {}})).is_err()
        );
    }

    #[test]
    fn accounts_are_identities_of_their_compartment() {
        let Ok(ImportCommand::Edit {
            identities, create, ..
        }) = parse(json!({
            "operation": "UPSERT", "compartment_id": "1", "user_account_id": "acc", "force_replace": true,
            "user_profile": {"firstname": "David"}
        }))
        else {
            panic!("parsed")
        };
        assert_eq!(identities, [Identity::new_unchecked("account:1", "acc")]);
        assert!(create);
        let unknown = parse(
            json!({"operation": "UPSERT", "compartment_id": 99, "user_account_id": "a", "user_profile": {}}),
        );
        assert!(unknown.unwrap_err().contains("compartment `99`"));
    }

    #[test]
    fn merge_options_of_both_generations() {
        let strategy = |extra: Value| {
            let mut line =
                json!({"operation": "UPSERT", "email_hash": "h", "user_profile": {"a": {"b": 1}}});
            line.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            match parse(line) {
                Ok(ImportCommand::Edit { ops, .. }) => Ok(ops),
                Ok(other) => panic!("not an edit: {other:?}"),
                Err(e) => Err(e),
            }
        };
        let replace = strategy(json!({"force_replace": true})).unwrap();
        assert!(replace.set.contains_key("/user_profiles/1/$anonymous"));
        let deep = strategy(json!({"force_replace": false, "merge_objects": true})).unwrap();
        assert!(deep.set.contains_key("/user_profiles/1/$anonymous/a/b"));
        let shallow = strategy(json!({"update_strategy": "PARTIAL_UPDATE"})).unwrap();
        assert!(shallow.set.contains_key("/user_profiles/1/$anonymous/a"));
        let delete = strategy(json!({"update_strategy": "PARTIAL_DELETE"})).unwrap();
        assert_eq!(delete.unset, ["/user_profiles/1/$anonymous/a"]);
        assert!(
            strategy(json!({"update_strategy": "FORCE_REPLACE", "force_replace": true})).is_err()
        );
        assert!(strategy(json!({"update_strategy": "MERGE"})).is_err());
    }

    #[test]
    fn deletes_never_create_and_upserts_need_a_profile() {
        let Ok(ImportCommand::Edit { create, ops, .. }) =
            parse(json!({"operation": "DELETE", "user_account_id": "acc"}))
        else {
            panic!("parsed")
        };
        assert!(!create);
        assert_eq!(
            ops.unset,
            ["/user_profiles/1/acc", "/user_profile_times/1/acc"]
        );
        assert!(parse(json!({"operation": "UPSERT", "email_hash": "h"})).is_err());
        assert!(parse(json!({"operation": "MERGE", "email_hash": "h"})).is_err());
        assert!(parse(json!({"email_hash": "h", "surprise": 1})).is_err());
    }
}
