//! The filter language compiled to SQLite SQL.
//!
//! Works on the negation normal form: `Not` wraps only predicates, and a negated predicate
//! compiles to `(…) IS NOT TRUE`, so SQL's NULLs never leak into the result. Un-negated
//! predicates may yield NULL where the evaluator says false; under AND/OR without NOT above
//! them, NULL and false select the same rows.
//!
//! Every value is bound; only validated paths (keys without `"`, `\` or control characters,
//! single quotes doubled) are written into the SQL, so that expression indexes match.

use jiff::Timestamp;
use profiled_core::filter::{
    CompareOp, Field, Filter, JsonColumn, Literal, Segment, format_canonical,
};
use serde_json::Number;

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

/// Compiles a filter into a boolean SQL expression over the profiles table aliased `p`.
pub(crate) fn compile(filter: &Filter, now: Timestamp, sql: &mut Sql) {
    let normalized = filter.clone().normalized();
    Compiler { now, table: "p." }.node(&normalized, sql);
}

struct Compiler {
    now: Timestamp,
    table: &'static str,
}

impl Compiler {
    fn node(&self, filter: &Filter, sql: &mut Sql) {
        match filter {
            Filter::And(terms) | Filter::Or(terms) if terms.is_empty() => {
                sql.push(if matches!(filter, Filter::And(_)) {
                    "1"
                } else {
                    "0"
                })
            }
            Filter::And(terms) | Filter::Or(terms) => {
                let joiner = if matches!(filter, Filter::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                sql.push("(");
                for (i, term) in terms.iter().enumerate() {
                    if i > 0 {
                        sql.push(joiner);
                    }
                    self.node(term, sql);
                }
                sql.push(")");
            }
            Filter::Not(inner) => {
                sql.push("((");
                self.node(inner, sql);
                sql.push(") IS NOT TRUE)");
            }
            Filter::Compare {
                field,
                op: CompareOp::Ne,
                value,
            } => {
                let eq = Filter::Compare {
                    field: field.clone(),
                    op: CompareOp::Eq,
                    value: value.clone(),
                };
                self.node(&Filter::Not(Box::new(eq)), sql);
            }
            Filter::In { values, .. } if values.is_empty() => sql.push("0"),
            Filter::In { field, values } => {
                sql.push("(");
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        sql.push(" OR ");
                    }
                    self.predicate(
                        field,
                        &Filter::Compare {
                            field: field.clone(),
                            op: CompareOp::Eq,
                            value: value.clone(),
                        },
                        sql,
                    );
                }
                sql.push(")");
            }
            predicate => self.predicate(predicate_field(predicate), predicate, sql),
        }
    }

    fn predicate(&self, field: &Field, predicate: &Filter, sql: &mut Sql) {
        match field {
            Field::Property(path) => {
                self.json_predicate(JsonColumn::Properties, path, predicate, sql)
            }
            Field::Computed(path) => {
                self.json_predicate(JsonColumn::Computed, path, predicate, sql)
            }
            Field::Identity(kind) => self.identity_predicate(kind, predicate, sql),
            Field::Id => self.scalar_predicate(&format!("{}id", self.table), predicate, sql, false),
            Field::CreatedAt => {
                self.scalar_predicate(&format!("{}created_at", self.table), predicate, sql, true)
            }
            Field::UpdatedAt => {
                self.scalar_predicate(&format!("{}updated_at", self.table), predicate, sql, true)
            }
        }
    }

    fn json_predicate(
        &self,
        column: JsonColumn,
        path: &[Segment],
        predicate: &Filter,
        sql: &mut Sql,
    ) {
        let value = json_value(self.table, column, path);
        let kind = json_type(self.table, column, path);
        match predicate {
            Filter::Compare {
                op, value: literal, ..
            } => self.json_compare(&value, &kind, *op, literal, sql),
            Filter::Exists { .. } => sql.push(&format!("({value} IS NOT NULL)")),
            Filter::Contains { value: literal, .. } => {
                let each = format!(
                    "json_each({}{}, '{}')",
                    self.table,
                    column.name(),
                    json_path(path)
                );
                sql.push(&format!(
                    "(({kind} = 'array' AND EXISTS (SELECT 1 FROM {each} AS e WHERE "
                ));
                element_equals(literal, self.now, sql);
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

    fn json_compare(
        &self,
        value: &str,
        kind: &str,
        op: CompareOp,
        literal: &Literal,
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
                sql.bind(Bind::Text(format_canonical(t.resolve(self.now))));
                sql.push(")");
            }
        }
    }

    fn identity_predicate(&self, kind: &str, predicate: &Filter, sql: &mut Sql) {
        let exists = |sql: &mut Sql| {
            sql.push(&format!(
                "EXISTS (SELECT 1 FROM identities AS i WHERE i.workspace_id = {t}workspace_id AND i.profile_id = {t}id AND i.kind = ",
                t = self.table
            ));
            sql.bind(Bind::Text(kind.to_owned()));
        };
        match predicate {
            Filter::Compare {
                value: Literal::Null,
                ..
            } => {
                sql.push("(NOT ");
                exists(sql);
                sql.push("))");
            }
            Filter::Exists { .. } => {
                sql.push("(");
                exists(sql);
                sql.push("))");
            }
            _ => {
                sql.push("(");
                exists(sql);
                sql.push(" AND ");
                self.text_condition("i.value", predicate, sql);
                sql.push("))");
            }
        }
    }

    /// `id`, `created_at`, `updated_at`: columns that always have a value.
    fn scalar_predicate(&self, column: &str, predicate: &Filter, sql: &mut Sql, is_time: bool) {
        match predicate {
            Filter::Exists { .. } => sql.push("1"),
            Filter::Compare {
                value: Literal::Null,
                ..
            } => sql.push("0"),
            Filter::Compare {
                op,
                value: Literal::Time(t),
                ..
            } if is_time => {
                sql.push(&format!("({column} {} ", op.as_str()));
                sql.bind(Bind::Int(t.resolve(self.now).as_microsecond()));
                sql.push(")");
            }
            _ if is_time => sql.push("0"),
            _ => self.text_condition(column, predicate, sql),
        }
    }

    /// A condition on a text column (an id or an identity value) with a string literal.
    fn text_condition(&self, column: &str, predicate: &Filter, sql: &mut Sql) {
        match predicate {
            Filter::Compare {
                op,
                value: Literal::String(s),
                ..
            } => {
                sql.push(&format!("{column} {} ", op.as_str()));
                sql.bind(Bind::Text(s.clone()));
            }
            Filter::Contains {
                value: Literal::String(s),
                ..
            } => {
                sql.push(&format!("instr({column}, "));
                sql.bind(Bind::Text(s.clone()));
                sql.push(") > 0");
            }
            Filter::StartsWith { prefix, .. } => {
                sql.push(&format!("instr({column}, "));
                sql.bind(Bind::Text(prefix.clone()));
                sql.push(") = 1");
            }
            _ => sql.push("0"),
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

fn predicate_field(filter: &Filter) -> &Field {
    match filter {
        Filter::Compare { field, .. }
        | Filter::In { field, .. }
        | Filter::Exists { field }
        | Filter::Contains { field, .. }
        | Filter::StartsWith { field, .. } => field,
        Filter::Not(inner) => predicate_field(inner),
        Filter::And(_) | Filter::Or(_) => unreachable!("groups are compiled by `node`"),
    }
}
