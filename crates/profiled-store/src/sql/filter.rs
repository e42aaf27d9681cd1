//! The filter language compiled to SQL, shared by the backends: the walk over the negation
//! normal form, identities, ids and times. Each backend's [`Dialect`] compiles predicates on
//! JSON paths, where SQLite and PostgreSQL differ.
//!
//! A negated predicate compiles to `(…) IS NOT TRUE`, so SQL's NULLs never leak into the
//! result. Un-negated predicates may yield NULL where the evaluator says false; under AND/OR
//! without NOT above them, NULL and false select the same rows. Every value is bound.

use jiff::Timestamp;
use profiled_core::filter::{CompareOp, Field, Filter, JsonColumn, Literal, Segment};

use super::{Bind, Sql};

/// The profiles table's alias in every compiled filter.
const TABLE: &str = "p.";

/// What differs between SQL dialects in a compiled filter.
pub(crate) trait Dialect {
    const TRUE: &'static str;
    const FALSE: &'static str;
    /// The function giving the 1-based position of a needle in a text (0 when absent).
    const POSITION: &'static str;
    /// An identity's value in the rows [`Dialect::identities_of_kind`] opens.
    const IDENTITY_VALUE: &'static str;

    /// Opens a condition that holds when the profile `p` carries an identity of kind `kind`:
    /// `EXISTS (SELECT … WHERE …` or `p.id IN (SELECT … WHERE …`, to be continued with
    /// `AND` a condition on [`Dialect::IDENTITY_VALUE`] and closed by one parenthesis.
    fn identities_of_kind(&self, kind: &str, sql: &mut Sql);

    /// A predicate (compare, exists, contains, starts with) on a path of `p.<column>`.
    fn json_predicate(
        &self,
        column: JsonColumn,
        path: &[Segment],
        predicate: &Filter,
        now: Timestamp,
        sql: &mut Sql,
    );
}

/// Compiles a filter into a boolean SQL expression over the profiles table aliased `p`.
pub(crate) fn compile<D: Dialect>(dialect: &D, filter: &Filter, now: Timestamp, sql: &mut Sql) {
    let normalized = filter.clone().normalized();
    Compiler { dialect, now }.node(&normalized, sql);
}

struct Compiler<'a, D> {
    dialect: &'a D,
    now: Timestamp,
}

impl<D: Dialect> Compiler<'_, D> {
    fn node(&self, filter: &Filter, sql: &mut Sql) {
        match filter {
            Filter::And(terms) | Filter::Or(terms) if terms.is_empty() => {
                sql.push(if matches!(filter, Filter::And(_)) {
                    D::TRUE
                } else {
                    D::FALSE
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
            Filter::In { values, .. } if values.is_empty() => sql.push(D::FALSE),
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
            Field::Property(_) | Field::Computed(_) | Field::Location(_) | Field::Device(_) => {
                let (column, path) = field.json_path().expect("a JSON field");
                self.dialect
                    .json_predicate(column, path, predicate, self.now, sql)
            }
            Field::Identity(kind) => self.identity_predicate(kind, predicate, sql),
            Field::Segments => self.segments_predicate(predicate, sql),
            Field::Id => self.scalar_predicate(&format!("{}id", TABLE), predicate, sql, false),
            Field::CreatedAt => {
                self.scalar_predicate(&format!("{}created_at", TABLE), predicate, sql, true)
            }
            Field::UpdatedAt => {
                self.scalar_predicate(&format!("{}updated_at", TABLE), predicate, sql, true)
            }
        }
    }

    fn identity_predicate(&self, kind: &str, predicate: &Filter, sql: &mut Sql) {
        let exists = |sql: &mut Sql| self.dialect.identities_of_kind(kind, sql);
        self.any_value_predicate(exists, D::IDENTITY_VALUE, predicate, sql);
    }

    /// A predicate on a field with any number of text values, kept in rows that `exists`
    /// opens a condition over (`EXISTS (SELECT … WHERE …`, or `p.id IN (SELECT … WHERE …`,
    /// closed by one parenthesis): it holds when some row's `column` satisfies it; `= null`
    /// when there is no row.
    fn any_value_predicate(
        &self,
        exists: impl Fn(&mut Sql),
        column: &str,
        predicate: &Filter,
        sql: &mut Sql,
    ) {
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
                self.text_condition(column, predicate, sql);
                sql.push("))");
            }
        }
    }

    /// `segments`: the keys in `segment_members`; `contains` holds a key whole.
    fn segments_predicate(&self, predicate: &Filter, sql: &mut Sql) {
        let exists = |sql: &mut Sql| {
            sql.push(&format!(
                "EXISTS (SELECT 1 FROM segment_members AS s WHERE s.workspace_id = {t}workspace_id AND s.profile_id = {t}id",
                t = TABLE
            ));
        };
        match predicate {
            Filter::Contains {
                field,
                value: Literal::String(key),
            } => self.segments_predicate(
                &Filter::Compare {
                    field: field.clone(),
                    op: CompareOp::Eq,
                    value: Literal::String(key.clone()),
                },
                sql,
            ),
            _ => self.any_value_predicate(exists, "s.segment_key", predicate, sql),
        }
    }

    /// `id`, `created_at`, `updated_at`: columns that always have a value.
    fn scalar_predicate(&self, column: &str, predicate: &Filter, sql: &mut Sql, is_time: bool) {
        match predicate {
            Filter::Exists { .. } => sql.push(D::TRUE),
            Filter::Compare {
                value: Literal::Null,
                ..
            } => sql.push(D::FALSE),
            Filter::Compare {
                op,
                value: Literal::Time(t),
                ..
            } if is_time => {
                sql.push(&format!("({column} {} ", op.as_str()));
                sql.bind(Bind::Int(t.resolve(self.now).as_microsecond()));
                sql.push(")");
            }
            _ if is_time => sql.push(D::FALSE),
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
                sql.push(&format!("{}({column}, ", D::POSITION));
                sql.bind(Bind::Text(s.clone()));
                sql.push(") > 0");
            }
            Filter::StartsWith { prefix, .. } => {
                sql.push(&format!("{}({column}, ", D::POSITION));
                sql.bind(Bind::Text(prefix.clone()));
                sql.push(") = 1");
            }
            _ => sql.push(D::FALSE),
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
