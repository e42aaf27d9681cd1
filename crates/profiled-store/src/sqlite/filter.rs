//! SQLite's half of the filter compiler ([`crate::sql::filter`] walks the filter): predicates
//! on JSON paths with `json_extract`, `json_type` and `json_each`, and the canonical timestamp
//! form declared indexes are built on.
//!
//! Only validated paths (keys without `"`, `\` or control characters, single quotes doubled)
//! are written into the SQL, so that expression indexes match; every value is bound.

use jiff::Timestamp;
use profiled_core::WorkspaceId;
use profiled_core::filter::{CompareOp, Filter, JsonColumn, Literal, Segment, format_canonical};
use serde_json::Number;

use crate::sql::filter::Dialect;
use crate::sql::quote_literal;
pub(crate) use crate::sql::{Bind, Sql};

/// `json_extract(p.<column>, '$."a"[0]')`: the expression declared indexes are built on.
pub(crate) fn json_value(table: &str, column: JsonColumn, path: &[Segment]) -> String {
    format!(
        "json_extract({table}{}, '{}')",
        column.name(),
        json_path(path)
    )
}

/// The SQLite JSON path of a filter path, quoted for a SQL string literal.
fn json_path(path: &[Segment]) -> String {
    let mut out = String::from("$");
    for segment in path {
        match segment {
            Segment::Key(k) => {
                out.push_str(".\"");
                out.push_str(&quote_literal(k));
                out.push('"');
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn json_type(table: &str, column: JsonColumn, path: &[Segment]) -> String {
    format!("json_type({table}{}, '{}')", column.name(), json_path(path))
}

/// A text expression padded to the canonical timestamp form when it has one of the accepted
/// shapes, else NULL — the SQL twin of `profiled_core::filter::canonical_timestamp`.
pub(crate) fn canonical_time(expr: &str) -> String {
    const D: &str = "[0-9]";
    let head = format!("{D}{D}{D}{D}-{D}{D}-{D}{D}T{D}{D}:{D}{D}:{D}{D}");
    format!(
        "(CASE WHEN typeof({expr}) != 'text' THEN NULL \
         WHEN {expr} GLOB '{head}Z' THEN substr({expr}, 1, 19) || '.000000Z' \
         WHEN {expr} GLOB '{head}.{D}{D}{D}Z' THEN substr({expr}, 1, 23) || '000Z' \
         WHEN {expr} GLOB '{head}.{D}{D}{D}{D}{D}{D}Z' THEN {expr} END)"
    )
}

fn number_bind(n: &Number) -> Bind {
    match n.as_i64() {
        Some(i) => Bind::Int(i),
        None => Bind::Real(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// Whether `json_extract(...) = literal` alone already implies the JSON type the evaluator
/// requires: SQLite reads booleans back as 0 and 1, and arrays and objects as JSON text.
fn unambiguous(literal: &Literal) -> bool {
    match literal {
        Literal::String(s) => !(s.starts_with('[') || s.starts_with('{')),
        Literal::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && f != 1.0),
        _ => false,
    }
}

/// Compiles a filter into a boolean SQL expression over the profiles table aliased `p`, whose
/// rows are those of workspace `ws`.
pub(crate) fn compile(ws: WorkspaceId, filter: &Filter, now: Timestamp, sql: &mut Sql) {
    crate::sql::filter::compile(&SqliteDialect { workspace: ws }, filter, now, sql);
}

const TABLE: &str = "p.";

/// SQLite's JSON functions: `json_extract`, `json_type`, `json_each`.
struct SqliteDialect {
    workspace: WorkspaceId,
}

impl Dialect for SqliteDialect {
    const TRUE: &'static str = "1";
    const FALSE: &'static str = "0";
    const POSITION: &'static str = "instr";
    const IDENTITY_VALUE: &'static str = "i.value";

    /// The profiles that the workspace's matching identities point at, found once per
    /// statement through the identities' key (the table has no way from a profile to its
    /// identities: `0012_identities_by_key_only.sql`). An equality drives the search from
    /// there.
    fn identities_of_kind(&self, kind: &str, sql: &mut Sql) {
        sql.push(&format!(
            "{TABLE}id IN (SELECT i.profile_id FROM identities AS i WHERE i.workspace_id = "
        ));
        sql.bind(Bind::Int(self.workspace.0));
        sql.push(" AND i.kind = ");
        sql.bind(Bind::Text(kind.to_owned()));
    }

    fn json_predicate(
        &self,
        column: JsonColumn,
        path: &[Segment],
        predicate: &Filter,
        now: Timestamp,
        sql: &mut Sql,
    ) {
        let value = json_value(TABLE, column, path);
        let kind = json_type(TABLE, column, path);
        match predicate {
            Filter::Compare {
                op, value: literal, ..
            } => json_compare(&value, &kind, *op, literal, now, sql),
            Filter::Exists { .. } => sql.push(&format!("({value} IS NOT NULL)")),
            Filter::Contains { value: literal, .. } => {
                let each = format!(
                    "json_each({}{}, '{}')",
                    TABLE,
                    column.name(),
                    json_path(path)
                );
                sql.push(&format!(
                    "(({kind} = 'array' AND EXISTS (SELECT 1 FROM {each} AS e WHERE "
                ));
                element_equals(literal, now, sql);
                sql.push("))");
                if let Literal::String(needle) = literal {
                    sql.push(&format!(" OR ({kind} = 'text' AND instr({value}, "));
                    sql.bind(Bind::Text(needle.clone()));
                    sql.push(") > 0)");
                }
                sql.push(")");
            }
            Filter::StartsWith { prefix, .. } => {
                sql.push(&format!("({kind} = 'text' AND instr({value}, "));
                sql.bind(Bind::Text(prefix.clone()));
                sql.push(") = 1)");
            }
            _ => unreachable!("only predicates reach here"),
        }
    }
}

fn json_compare(
    value: &str,
    kind: &str,
    op: CompareOp,
    literal: &Literal,
    now: Timestamp,
    sql: &mut Sql,
) {
    let op_sql = op.as_str();
    match literal {
        Literal::Null => sql.push(&format!("({value} IS NULL)")),
        Literal::Bool(b) => sql.push(&format!("({kind} = '{b}')")),
        Literal::Number(n) => {
            sql.push(&format!("({value} {op_sql} "));
            sql.bind(number_bind(n));
            if op.is_ordering() || !unambiguous(literal) {
                sql.push(&format!(" AND {kind} IN ('integer', 'real')"));
            }
            sql.push(")");
        }
        Literal::String(s) => {
            sql.push(&format!("({value} {op_sql} "));
            sql.bind(Bind::Text(s.clone()));
            if op.is_ordering() || !unambiguous(literal) {
                sql.push(&format!(" AND {kind} = 'text'"));
            }
            sql.push(")");
        }
        Literal::Time(t) => {
            sql.push(&format!("({} {op_sql} ", canonical_time(value)));
            sql.bind(Bind::Text(format_canonical(t.resolve(now))));
            sql.push(")");
        }
    }
}

/// The condition that a `json_each` row `e` equals a literal, typed as the evaluator is.
fn element_equals(literal: &Literal, now: Timestamp, sql: &mut Sql) {
    match literal {
        Literal::Null => sql.push("e.type = 'null'"),
        Literal::Bool(b) => sql.push(&format!("e.type = '{b}'")),
        Literal::Number(n) => {
            sql.push("e.type IN ('integer', 'real') AND e.value = ");
            sql.bind(number_bind(n));
        }
        Literal::String(s) => {
            sql.push("e.type = 'text' AND e.value = ");
            sql.bind(Bind::Text(s.clone()));
        }
        Literal::Time(t) => {
            sql.push(&format!("{} = ", canonical_time("e.value")));
            sql.bind(Bind::Text(format_canonical(t.resolve(now))));
        }
    }
}
