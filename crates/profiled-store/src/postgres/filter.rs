//! PostgreSQL's half of the filter compiler ([`crate::sql::filter`] walks the filter), held to
//! the same property test as SQLite's (SQL selects exactly what the reference evaluator
//! matches). JSON values are read with `->` one step at a time
//! (`-> 'key'` on an object, `-> 0` on an array; the wrong kind of container yields NULL, as
//! the evaluator says), compared as JSONB for numbers and booleans and as text in the "C"
//! collation for strings, always behind a `jsonb_typeof` guard so no type is mistaken for
//! another. Only validated paths are written into the SQL, so expression indexes match.

use jiff::Timestamp;
use profiled_core::filter::{CompareOp, Filter, JsonColumn, Literal, Segment, format_canonical};

use crate::sql::filter::Dialect;
use crate::sql::{Bind, Placeholders, Sql, quote_literal};

/// A new statement in PostgreSQL's placeholder style.
pub(crate) fn statement() -> Sql {
    Sql::new(Placeholders::Numbered)
}

fn step(segment: &Segment, arrow: &str) -> String {
    match segment {
        Segment::Key(k) => format!(" {arrow} '{}'", quote_literal(k)),
        Segment::Index(i) => format!(" {arrow} {i}"),
    }
}

/// The JSONB value at a path: `p.properties -> 'a' -> 0`.
///
/// `-> 0` on a scalar yields the scalar itself (a quirk of JSONB's raw scalars), so a path
/// with array steps is guarded: it has a value only if every step before an index is an array.
pub(crate) fn json_value(table: &str, column: JsonColumn, path: &[Segment]) -> String {
    guarded(table, column, path, raw_value(table, column, path))
}

fn raw_value(table: &str, column: JsonColumn, path: &[Segment]) -> String {
    let mut out = format!("{table}{}", column.name());
    for segment in path {
        out.push_str(&step(segment, "->"));
    }
    out
}

fn guarded(table: &str, column: JsonColumn, path: &[Segment], expr: String) -> String {
    let arrays: Vec<String> = path
        .iter()
        .enumerate()
        .filter(|(_, segment)| matches!(segment, Segment::Index(_)))
        .map(|(i, _)| {
            format!(
                "jsonb_typeof({}) = 'array'",
                raw_value(table, column, &path[..i])
            )
        })
        .collect();
    if arrays.is_empty() {
        expr
    } else {
        format!("(CASE WHEN {} THEN {expr} END)", arrays.join(" AND "))
    }
}

/// The text of the value at a path (a string's contents): `(p.properties -> 'a' ->> 'b')`.
pub(crate) fn json_text(table: &str, column: JsonColumn, path: &[Segment]) -> String {
    let raw = match path.split_last() {
        Some((last, init)) => format!("({}{})", raw_value(table, column, init), step(last, "->>")),
        None => format!("({table}{} #>> '{{}}')", column.name()),
    };
    guarded(table, column, path, raw)
}

fn json_type(value: &str) -> String {
    format!("jsonb_typeof({value})")
}

/// The string at a path, compared byte by byte; NULL when the value is not a string. The type
/// check lives inside the expression so that a `string` index answers a comparison alone,
/// without visiting the table.
pub(crate) fn string_key(table: &str, column: JsonColumn, path: &[Segment]) -> String {
    format!(
        "((CASE WHEN {} = 'string' THEN {} END) COLLATE \"C\")",
        json_type(&json_value(table, column, path)),
        json_text(table, column, path)
    )
}

/// The number at a path as JSONB (JSONB orders numbers by value); NULL when it is not a
/// number. What a `number` index is built on.
pub(crate) fn number_key(table: &str, column: JsonColumn, path: &[Segment]) -> String {
    let value = json_value(table, column, path);
    format!(
        "(CASE WHEN {} = 'number' THEN {value} END)",
        json_type(&value)
    )
}

/// A string value padded to the canonical timestamp form when it has one of the accepted
/// shapes, else NULL: the twin of `profiled_core::filter::canonical_timestamp`, and what a
/// `timestamp` index is built on.
pub(crate) fn canonical_time(json_type: &str, text: &str) -> String {
    const D: &str = "[0-9]";
    let head = format!("^{D}{{4}}-{D}{{2}}-{D}{{2}}T{D}{{2}}:{D}{{2}}:{D}{{2}}");
    format!(
        "((CASE WHEN {json_type} = 'string' THEN CASE \
         WHEN {text} ~ '{head}Z$' THEN substr({text}, 1, 19) || '.000000Z' \
         WHEN {text} ~ '{head}\\.{D}{{3}}Z$' THEN substr({text}, 1, 23) || '000Z' \
         WHEN {text} ~ '{head}\\.{D}{{6}}Z$' THEN {text} END END) COLLATE \"C\")"
    )
}

/// A JSON path's timestamp key, for filters and indexes.
pub(crate) fn time_key(table: &str, column: JsonColumn, path: &[Segment]) -> String {
    canonical_time(
        &json_type(&json_value(table, column, path)),
        &json_text(table, column, path),
    )
}

/// Compiles a filter into a boolean SQL expression over the profiles table aliased `p`.
pub(crate) fn compile(filter: &Filter, now: Timestamp, sql: &mut Sql) {
    crate::sql::filter::compile(&PostgresDialect, filter, now, sql);
}

const TABLE: &str = "p.";

/// PostgreSQL's JSONB operators.
struct PostgresDialect;

impl Dialect for PostgresDialect {
    const TRUE: &'static str = "TRUE";
    const FALSE: &'static str = "FALSE";
    const POSITION: &'static str = "strpos";
    const IDENTITY_VALUE: &'static str = "i.value";

    fn identities_of_kind(&self, kind: &str, sql: &mut Sql) {
        sql.push(&format!(
            "EXISTS (SELECT 1 FROM identities AS i WHERE i.workspace_id = {t}workspace_id AND i.profile_id = {t}id AND i.kind = ",
            t = TABLE
        ));
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
        let kind = json_type(&value);
        let text = json_text(TABLE, column, path);
        match predicate {
            Filter::Compare {
                op, value: literal, ..
            } => json_compare(column, path, *op, literal, now, sql),
            Filter::Exists { .. } => sql.push(&format!("({kind} <> 'null')")),
            Filter::Contains { value: literal, .. } => {
                // The CASE keeps jsonb_array_elements from ever seeing a non-array.
                sql.push(&format!(
                    "(({kind} = 'array' AND EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN {kind} = 'array' THEN {value} END) AS e (v) WHERE "
                ));
                element_equals(literal, now, sql);
                sql.push("))");
                if let Literal::String(needle) = literal {
                    sql.push(&format!(" OR ({kind} = 'string' AND strpos({text}, "));
                    sql.bind(Bind::Text(needle.clone()));
                    sql.push(") > 0)");
                }
                sql.push(")");
            }
            Filter::StartsWith { prefix, .. } => {
                sql.push(&format!("({kind} = 'string' AND strpos({text}, "));
                sql.bind(Bind::Text(prefix.clone()));
                sql.push(") = 1)");
            }
            _ => unreachable!("only predicates reach here"),
        }
    }
}

fn json_compare(
    column: JsonColumn,
    path: &[Segment],
    op: CompareOp,
    literal: &Literal,
    now: Timestamp,
    sql: &mut Sql,
) {
    let value = json_value(TABLE, column, path);
    let kind = json_type(&value);
    let op_sql = op.as_str();
    match literal {
        Literal::Null => sql.push(&format!("({value} IS NULL OR {kind} = 'null')")),
        Literal::Bool(b) => sql.push(&format!("({value} = '{b}'::jsonb)")),
        Literal::Number(n) => {
            sql.push(&format!(
                "({} {op_sql} CAST(",
                number_key(TABLE, column, path)
            ));
            sql.bind(Bind::Text(n.to_string()));
            sql.push(" AS jsonb))");
        }
        Literal::String(s) => {
            sql.push(&format!("({} {op_sql} ", string_key(TABLE, column, path)));
            sql.bind(Bind::Text(s.clone()));
            sql.push(")");
        }
        Literal::Time(t) => {
            sql.push(&format!("({} {op_sql} ", time_key(TABLE, column, path)));
            sql.bind(Bind::Text(format_canonical(t.resolve(now))));
            sql.push(")");
        }
    }
}

/// The condition that an array element `e.v` equals a literal, typed as the evaluator is.
fn element_equals(literal: &Literal, now: Timestamp, sql: &mut Sql) {
    match literal {
        Literal::Null => sql.push("jsonb_typeof(e.v) = 'null'"),
        Literal::Bool(b) => sql.push(&format!("e.v = '{b}'::jsonb")),
        Literal::Number(n) => {
            sql.push("jsonb_typeof(e.v) = 'number' AND e.v = CAST(");
            sql.bind(Bind::Text(n.to_string()));
            sql.push(" AS jsonb)");
        }
        Literal::String(s) => {
            sql.push("jsonb_typeof(e.v) = 'string' AND (e.v #>> '{}') = ");
            sql.bind(Bind::Text(s.clone()));
        }
        Literal::Time(t) => {
            sql.push(&format!(
                "{} = ",
                canonical_time("jsonb_typeof(e.v)", "(e.v #>> '{}')")
            ));
            sql.bind(Bind::Text(format_canonical(t.resolve(now))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_step_by_key_and_index() {
        let path = [Segment::Key("it's".into()), Segment::Index(2)];
        assert_eq!(
            json_value("p.", JsonColumn::Properties, &path[..1]),
            "p.properties -> 'it''s'"
        );
        assert_eq!(
            json_value("p.", JsonColumn::Properties, &path),
            "(CASE WHEN jsonb_typeof(p.properties -> 'it''s') = 'array' THEN p.properties -> 'it''s' -> 2 END)"
        );
        assert_eq!(
            json_text("", JsonColumn::Computed, &path),
            "(CASE WHEN jsonb_typeof(computed -> 'it''s') = 'array' THEN (computed -> 'it''s' ->> 2) END)"
        );
    }

    #[test]
    fn values_are_bound_never_inlined() {
        let mut sql = statement();
        compile(
            &Filter::parse(r#"properties.plan = "x' OR 1=1" and properties.n > 3"#).unwrap(),
            Timestamp::UNIX_EPOCH,
            &mut sql,
        );
        assert!(!sql.text.contains("OR 1=1"), "{}", sql.text);
        assert!(
            sql.text.contains("$1") && sql.text.contains("$2"),
            "{}",
            sql.text
        );
        assert_eq!(sql.binds.len(), 2);
    }
}
