//! The string form.
//!
//! ```text
//! filter    := or
//! or        := and ("or" and)*
//! and       := unary ("and" unary)*
//! unary     := "not" unary | "(" or ")" | predicate
//! predicate := field ( cmp literal | ["not"] "in" list | ["not"] "exists"
//!                    | ["not"] "contains" literal | ["not"] "starts_with" string )
//! cmp       := "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
//! list      := ("[" | "(") [literal ("," literal)*] ("]" | ")")
//! literal   := "string" | number | true | false | null | 2026-01-02T03:04:05Z | now | now-7d
//! ```
//! Keywords are case-insensitive.

use serde_json::Number;

use super::{CompareOp, Field, Filter, Literal, TimeLiteral};

/// A filter that does not parse: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Character offset (0-based) in the string form.
    pub position: Option<usize>,
    /// JSON pointer in the JSON form.
    pub pointer: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.position, &self.pointer) {
            (Some(p), _) => write!(f, "{} (at position {p})", self.message),
            (_, Some(p)) => write!(f, "{} (at {p})", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

/// Most nesting of parentheses and `not`: deep enough for any real filter, shallow enough
/// that no input can exhaust the stack.
const MAX_NESTING: usize = 64;
/// Most predicates in one filter.
pub(super) const MAX_PREDICATES: usize = 500;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Op(CompareOp),
    Str(String),
    Word(String),
}

struct Token {
    tok: Tok,
    pos: usize,
}

fn error(pos: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        position: Some(pos),
        pointer: None,
        message: message.into(),
    }
}

fn lex(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            _ => None,
        };
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if let Some(tok) = single {
            tokens.push(Token { tok, pos: start });
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let op = match (c, next) {
            ('=', Some('=')) => Some((CompareOp::Eq, 2)),
            ('=', _) => Some((CompareOp::Eq, 1)),
            ('!', Some('=')) => Some((CompareOp::Ne, 2)),
            ('<', Some('=')) => Some((CompareOp::Le, 2)),
            ('<', Some('>')) => Some((CompareOp::Ne, 2)),
            ('<', _) => Some((CompareOp::Lt, 1)),
            ('>', Some('=')) => Some((CompareOp::Ge, 2)),
            ('>', _) => Some((CompareOp::Gt, 1)),
            ('!', _) => return Err(error(start, "`!` must be followed by `=`")),
            _ => None,
        };
        if let Some((op, len)) = op {
            tokens.push(Token {
                tok: Tok::Op(op),
                pos: start,
            });
            i += len;
            continue;
        }
        if c == '"' {
            let end = string_end(&chars, i).ok_or_else(|| error(start, "unterminated string"))?;
            let raw: String = chars[i..=end].iter().collect();
            let value: String = serde_json::from_str(&raw)
                .map_err(|e| error(start, format!("invalid string: {e}")))?;
            tokens.push(Token {
                tok: Tok::Str(value),
                pos: start,
            });
            i = end + 1;
            continue;
        }
        let mut word = String::new();
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() || "(),=!<>]".contains(c) {
                break;
            }
            if c == '[' {
                // `tags[0]` continues a field; a lone `[` opens a list.
                let close = chars[i + 1..]
                    .iter()
                    .position(|c| *c == ']')
                    .map(|p| i + 1 + p);
                match close {
                    Some(end)
                        if !word.is_empty()
                            && end > i + 1
                            && chars[i + 1..end].iter().all(char::is_ascii_digit) =>
                    {
                        word.extend(&chars[i..=end]);
                        i = end + 1;
                        continue;
                    }
                    _ => break,
                }
            }
            if c == '"' {
                // `properties."odd key"` continues a field.
                if !word.ends_with('.') {
                    break;
                }
                let end =
                    string_end(&chars, i).ok_or_else(|| error(i, "unterminated quoted key"))?;
                word.extend(&chars[i..=end]);
                i = end + 1;
                continue;
            }
            word.push(c);
            i += 1;
        }
        if word.is_empty() {
            return Err(error(start, format!("unexpected `{c}`")));
        }
        tokens.push(Token {
            tok: Tok::Word(word),
            pos: start,
        });
    }
    Ok(tokens)
}

/// The index of the quote closing the JSON string that opens at `start`.
fn string_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    end: usize,
    depth: usize,
    predicates: usize,
}

pub(super) fn parse(text: &str) -> Result<Filter, ParseError> {
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return Ok(Filter::And(Vec::new()));
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        end: text.chars().count(),
        depth: 0,
        predicates: 0,
    };
    let filter = parser.or()?;
    if let Some(token) = parser.tokens.get(parser.at) {
        return Err(error(
            token.pos,
            "expected `and`, `or` or the end of the filter",
        ));
    }
    Ok(filter)
}

fn is_keyword(tok: &Tok, keyword: &str) -> bool {
    matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|t| &t.tok)
    }

    fn pos(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |t| t.pos)
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        if self.peek().is_some_and(|t| is_keyword(t, keyword)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Filter, ParseError> {
        let mut terms = vec![self.and()?];
        while self.eat_keyword("or") {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap()
        } else {
            Filter::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Filter, ParseError> {
        let mut terms = vec![self.unary()?];
        while self.eat_keyword("and") {
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap()
        } else {
            Filter::And(terms)
        })
    }

    fn unary(&mut self) -> Result<Filter, ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(error(
                self.pos(),
                format!("filters nest at most {MAX_NESTING} levels deep"),
            ));
        }
        let result = if self.eat_keyword("not") {
            self.unary().map(|f| Filter::Not(Box::new(f)))
        } else if self.peek() == Some(&Tok::LParen) {
            self.at += 1;
            let inner = self.or()?;
            if self.peek() != Some(&Tok::RParen) {
                return Err(error(self.pos(), "expected `)`"));
            }
            self.at += 1;
            Ok(inner)
        } else {
            self.predicate()
        };
        self.depth -= 1;
        result
    }

    fn predicate(&mut self) -> Result<Filter, ParseError> {
        let pos = self.pos();
        let field = match self.peek() {
            Some(Tok::Word(w)) if !KEYWORDS.iter().any(|k| w.eq_ignore_ascii_case(k)) => {
                Field::parse(&w.clone()).map_err(|m| error(pos, m))?
            }
            _ => {
                return Err(error(
                    pos,
                    "expected a field such as properties.plan, or `not` or `(`",
                ));
            }
        };
        self.at += 1;
        self.predicates += 1;
        if self.predicates > MAX_PREDICATES {
            return Err(error(
                pos,
                format!("a filter has at most {MAX_PREDICATES} conditions"),
            ));
        }
        let op_pos = self.pos();
        let negated = self.eat_keyword("not");
        let op = match self.peek().cloned() {
            Some(Tok::Op(op)) if !negated => {
                self.at += 1;
                let literal = self.literal()?;
                Op::Compare(op, literal)
            }
            Some(t) if is_keyword(&t, "in") => {
                self.at += 1;
                Op::In(self.list()?)
            }
            Some(t) if is_keyword(&t, "exists") => {
                self.at += 1;
                Op::Exists
            }
            Some(t) if is_keyword(&t, "contains") => {
                self.at += 1;
                Op::Contains(self.literal()?)
            }
            Some(t) if is_keyword(&t, "starts_with") => {
                self.at += 1;
                Op::StartsWith(self.literal()?)
            }
            _ => {
                return Err(error(
                    op_pos,
                    "expected an operator: = != < <= > >= in, not in, exists, not exists, contains, starts_with",
                ));
            }
        };
        let predicate = build(field, op).map_err(|m| error(op_pos, m))?;
        Ok(if negated {
            Filter::Not(Box::new(predicate))
        } else {
            predicate
        })
    }

    fn list(&mut self) -> Result<Vec<Literal>, ParseError> {
        let close = match self.peek() {
            Some(Tok::LBracket) => Tok::RBracket,
            Some(Tok::LParen) => Tok::RParen,
            _ => return Err(error(self.pos(), "expected a list: [\"a\", \"b\"]")),
        };
        self.at += 1;
        let mut values = Vec::new();
        if self.peek() == Some(&close) {
            self.at += 1;
            return Ok(values);
        }
        loop {
            values.push(self.literal()?);
            if values.len() > MAX_PREDICATES {
                return Err(error(
                    self.pos(),
                    format!("a list has at most {MAX_PREDICATES} values"),
                ));
            }
            match self.peek() {
                Some(Tok::Comma) => self.at += 1,
                Some(t) if *t == close => {
                    self.at += 1;
                    return Ok(values);
                }
                _ => return Err(error(self.pos(), "expected `,` or the end of the list")),
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, ParseError> {
        let pos = self.pos();
        let literal = match self.peek() {
            Some(Tok::Str(s)) => Literal::String(s.clone()),
            Some(Tok::Word(w)) => word_literal(w).ok_or_else(|| {
                error(pos, format!("`{w}` is not a value: use \"a string\", a number, true, false, null, a timestamp or now-7d"))
            })?,
            _ => return Err(error(pos, "expected a value")),
        };
        self.at += 1;
        Ok(literal)
    }
}

const KEYWORDS: [&str; 9] = [
    "and",
    "or",
    "not",
    "in",
    "exists",
    "contains",
    "starts_with",
    "true",
    "false",
];

fn word_literal(word: &str) -> Option<Literal> {
    match word.to_ascii_lowercase().as_str() {
        "true" => return Some(Literal::Bool(true)),
        "false" => return Some(Literal::Bool(false)),
        "null" => return Some(Literal::Null),
        _ => {}
    }
    if let Ok(n) = serde_json::from_str::<Number>(word) {
        return Some(Literal::Number(n));
    }
    TimeLiteral::parse(word).map(Literal::Time)
}

/// An operator with its operand(s), before validation against the field.
pub(super) enum Op {
    Compare(CompareOp, Literal),
    In(Vec<Literal>),
    Exists,
    Contains(Literal),
    StartsWith(Literal),
}

/// Validates an operator and its literals against the field, shared by both forms.
pub(super) fn build(field: Field, op: Op) -> Result<Filter, String> {
    let fits = |literal: Literal, ordering: bool| -> Result<Literal, String> {
        literal_for(&field, literal, ordering)
    };
    Ok(match op {
        Op::Compare(op, value) => {
            let value = fits(value, op.is_ordering())?;
            Filter::Compare { field, op, value }
        }
        Op::In(values) => {
            let values = values
                .into_iter()
                .map(|v| fits(v, false))
                .collect::<Result<_, _>>()?;
            Filter::In { field, values }
        }
        Op::Exists => Filter::Exists { field },
        Op::Contains(value) => {
            if matches!(field, Field::CreatedAt | Field::UpdatedAt) {
                return Err(format!("`contains` does not apply to {field}"));
            }
            let value = match (&field, value) {
                (f, v) if f.json_path().is_some() => v,
                (_, Literal::String(s)) => Literal::String(s),
                _ => return Err(format!("`contains` on {field} takes a string")),
            };
            Filter::Contains { field, value }
        }
        Op::StartsWith(value) => match (&field, value) {
            (Field::CreatedAt | Field::UpdatedAt, _) => {
                return Err(format!("`starts_with` does not apply to {field}"));
            }
            (_, Literal::String(prefix)) => Filter::StartsWith { field, prefix },
            _ => return Err("`starts_with` takes a string".into()),
        },
    })
}

fn literal_for(field: &Field, literal: Literal, ordering: bool) -> Result<Literal, String> {
    if ordering && matches!(literal, Literal::Null | Literal::Bool(_)) {
        return Err("`<`, `<=`, `>`, `>=` compare numbers, strings or timestamps".into());
    }
    match field {
        Field::CreatedAt | Field::UpdatedAt => match literal {
            Literal::Time(t) => Ok(Literal::Time(t)),
            Literal::String(s) => TimeLiteral::parse(&s).map(Literal::Time).ok_or_else(|| {
                format!("{field} compares with a timestamp such as 2026-01-02T03:04:05Z or now-7d")
            }),
            Literal::Null if !ordering => Ok(Literal::Null),
            _ => Err(format!(
                "{field} compares with a timestamp such as 2026-01-02T03:04:05Z or now-7d"
            )),
        },
        Field::Id | Field::Identity(_) | Field::Segments => match literal {
            Literal::String(_) | Literal::Null => Ok(literal),
            _ => Err(format!("{field} compares with a string")),
        },
        Field::Property(_) | Field::Computed(_) | Field::Location(_) | Field::Device(_) => {
            Ok(literal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Segment;

    fn prop(k: &str) -> Field {
        Field::Property(vec![Segment::Key(k.into())])
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let f =
            parse(r#"properties.a = 1 or properties.b = "x" and not properties.c exists"#).unwrap();
        let a = Filter::Compare {
            field: prop("a"),
            op: CompareOp::Eq,
            value: Literal::Number(1.into()),
        };
        let b = Filter::Compare {
            field: prop("b"),
            op: CompareOp::Eq,
            value: Literal::String("x".into()),
        };
        let c = Filter::Not(Box::new(Filter::Exists { field: prop("c") }));
        assert_eq!(f, Filter::Or(vec![a, Filter::And(vec![b, c])]));
    }

    #[test]
    fn every_operator_and_literal_parses() {
        for text in [
            "properties.plan = \"pro\"",
            "properties.plan == \"pro\"",
            "properties.age >= 18 AND properties.age < 65.5",
            "properties.tags contains \"beta\"",
            "properties.tags not contains \"beta\"",
            "properties.name starts_with \"Ad\"",
            "properties.plan in [\"pro\", \"team\"]",
            "properties.plan not in (\"free\")",
            "properties.plan in []",
            "properties.x exists and properties.y not exists",
            "properties.flag = true or properties.flag = null",
            "created_at > 2026-01-02T03:04:05Z and updated_at >= now-7d",
            "created_at > \"2026-01-02T03:04:05Z\"",
            "properties.seen_at < now+1h",
            "identities.email = \"a@b.c\" and id != \"x\"",
            "properties.items[0].sku = \"A\" and properties.\"odd key\" = 1",
            "not (properties.a = 1 or (properties.b = 2))",
            "",
        ] {
            assert!(parse(text).is_ok(), "{text}: {:?}", parse(text));
        }
    }

    #[test]
    fn errors_point_at_the_position() {
        let cases: [(&str, usize); 9] = [
            ("properties.plan = ", 18),
            ("properties.plan pro", 16),
            ("plan = 1", 0),
            ("properties.a = 1 and", 20),
            ("(properties.a = 1", 17),
            ("properties.a = 1 properties.b = 2", 17),
            ("properties.a = \"x", 15),
            ("properties.a < true", 13),
            ("created_at > 5", 11),
        ];
        for (text, position) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.position, Some(position), "{text}: {}", err.message);
        }
    }

    #[test]
    fn nesting_and_size_are_bounded() {
        let deep = format!("{}properties.a = 1{}", "(".repeat(200), ")".repeat(200));
        assert!(parse(&deep).is_err());
        let nots = format!("{}properties.a = 1", "not ".repeat(200));
        assert!(parse(&nots).is_err());
        let many = vec!["properties.a = 1"; 600].join(" or ");
        assert!(parse(&many).is_err());
    }
}
