//! Building SQL with bound values, for the backends' filter compilers and searches.

pub(crate) mod filter;

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Int(i64),
    Real(f64),
    Text(String),
}

/// How a dialect writes placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Placeholders {
    /// `?`, in order (SQLite).
    #[default]
    Question,
    /// `$1`, `$2`, … (PostgreSQL).
    Numbered,
}

/// SQL text and the values of its placeholders, in order.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
    placeholders: Placeholders,
}

impl Sql {
    pub fn new(placeholders: Placeholders) -> Self {
        Self {
            placeholders,
            ..Self::default()
        }
    }

    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    pub fn bind(&mut self, value: Bind) {
        self.binds.push(value);
        match self.placeholders {
            Placeholders::Question => self.text.push('?'),
            Placeholders::Numbered => {
                self.text.push('$');
                self.text.push_str(&self.binds.len().to_string());
            }
        }
    }
}

/// A key or index of a JSON path, written as a SQL string literal's content (single quotes
/// doubled). Paths are validated before they get here: no `"`, `\` or control characters.
pub(crate) fn quote_literal(text: &str) -> String {
    text.replace('\'', "''")
}

/// The name of the expression index on `expression`: a digest, so every workspace declaring
/// the same path and type shares one index, and no client text reaches DDL.
pub(crate) fn index_name(expression: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(expression.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("profiles_by_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_dialect() {
        let mut sqlite = Sql::default();
        let mut postgres = Sql::new(Placeholders::Numbered);
        for sql in [&mut sqlite, &mut postgres] {
            sql.push("a = ");
            sql.bind(Bind::Int(1));
            sql.push(" AND b = ");
            sql.bind(Bind::Text("x".into()));
        }
        assert_eq!(sqlite.text, "a = ? AND b = ?");
        assert_eq!(postgres.text, "a = $1 AND b = $2");
        assert_eq!(postgres.binds, vec![Bind::Int(1), Bind::Text("x".into())]);
    }
}
