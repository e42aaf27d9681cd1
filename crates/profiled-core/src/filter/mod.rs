//! The filter language: one way to choose a set of profiles, used by search, count, export,
//! segments and bulk deletion.
//!
//! A filter has a string form (`properties.plan = "pro" and computed.session_count > 3`) and
//! an equivalent JSON tree; both parse to [`Filter`]. [`Filter::matches`] is the reference
//! semantics; each storage backend compiles the same tree to SQL, and tests hold the two equal.
//!
//! Semantics, in short (the full rules are in `docs/filters.md`):
//! - every predicate is either true or false for a profile, never "unknown";
//! - comparisons are type-strict: a string never equals a number, a boolean is not a number;
//! - `= null` holds when the field is missing or null; `!=` is exactly the negation of `=`;
//! - `<`, `<=`, `>`, `>=` compare numbers with numbers, strings with strings (byte order), and
//!   timestamps with timestamps;
//! - a field that names several values (an identity kind) holds when any value does.

mod eval;
mod field;
mod json;
mod parse;
mod time;

use jiff::Timestamp;
use serde_json::Number;

pub use eval::lookup;
pub use field::{Field, JsonColumn, Segment};
pub use parse::ParseError;
pub use time::{TimeLiteral, canonical_timestamp, format_canonical};

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All terms hold; the empty `And` matches every profile.
    And(Vec<Filter>),
    /// Some term holds; the empty `Or` matches none.
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `field op value`.
    Compare {
        field: Field,
        op: CompareOp,
        value: Literal,
    },
    /// `field in [values]`.
    In {
        field: Field,
        values: Vec<Literal>,
    },
    /// The field is present and not null.
    Exists {
        field: Field,
    },
    /// An array field holds an element equal to the value, or a string field contains the
    /// string value.
    Contains {
        field: Field,
        value: Literal,
    },
    /// A string field starts with the prefix.
    StartsWith {
        field: Field,
        prefix: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }

    pub fn is_ordering(self) -> bool {
        !matches!(self, CompareOp::Eq | CompareOp::Ne)
    }
}

/// A typed literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Time(TimeLiteral),
}

/// Everything a filter's meaning depends on besides the profile: the time `now` that
/// relative times (`now-7d`) count from.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub now: Timestamp,
}

impl Filter {
    /// The filter that matches every profile.
    pub fn all() -> Filter {
        Filter::And(Vec::new())
    }

    /// Parses the string form; `now-7d` and friends stay relative until evaluated.
    pub fn parse(text: &str) -> Result<Filter, ParseError> {
        parse::parse(text)
    }

    /// Parses the JSON form.
    pub fn from_json(value: &serde_json::Value) -> Result<Filter, ParseError> {
        json::from_json(value)
    }

    /// Whether some predicate names a field `wanted` accepts.
    pub fn names_field(&self, wanted: &impl Fn(&Field) -> bool) -> bool {
        self.any_predicate(&|p| match p {
            Filter::Compare { field, .. }
            | Filter::In { field, .. }
            | Filter::Exists { field }
            | Filter::Contains { field, .. }
            | Filter::StartsWith { field, .. } => wanted(field),
            _ => false,
        })
    }

    /// Whether the filter's answer can change with the clock alone (it compares with
    /// `now-7d` or the like), for a profile that did not change.
    pub fn depends_on_now(&self) -> bool {
        let relative = |l: &Literal| matches!(l, Literal::Time(TimeLiteral::Relative(_)));
        self.any_predicate(&|p| match p {
            Filter::Compare { value, .. } | Filter::Contains { value, .. } => relative(value),
            Filter::In { values, .. } => values.iter().any(relative),
            _ => false,
        })
    }

    fn any_predicate(&self, test: &impl Fn(&Filter) -> bool) -> bool {
        match self {
            Filter::And(terms) | Filter::Or(terms) => terms.iter().any(|t| t.any_predicate(test)),
            Filter::Not(inner) => inner.any_predicate(test),
            predicate => test(predicate),
        }
    }

    /// The filter with negations pushed down to the predicates (negation normal form):
    /// `Not` then only ever wraps a predicate. Backends compile this form.
    pub fn normalized(self) -> Filter {
        eval::push_not(self, false)
    }
}

/// The type of values a declared index serves.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    String,
    Number,
    Boolean,
    /// RFC 3339 UTC strings, compared as times.
    Timestamp,
}

impl ValueType {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Number => "number",
            ValueType::Boolean => "boolean",
            ValueType::Timestamp => "timestamp",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            ValueType::String,
            ValueType::Number,
            ValueType::Boolean,
            ValueType::Timestamp,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}
