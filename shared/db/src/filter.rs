//! AIP-160 filters, parsed into an expression tree and compiled to parameterised SQL
//! against a per-resource whitelist of fields.
//!
//! Grammar (the subset `API.md` promises), loosest binding first:
//!
//! ```text
//! expression := sequence { "AND" sequence }
//! sequence   := factor { factor }            juxtaposition is AND
//! factor     := term { "OR" term }           OR binds tighter than AND (AIP-160)
//! term       := [ "NOT" | "-" ] simple
//! simple     := "(" expression ")" | field comparator value
//! comparator := "=" | "!=" | "<" | "<=" | ">" | ">=" | ":"
//! field      := name { "." name }            e.g. `status`, `custom_fields.budget`
//! value      := "string" | 'string' | number | true | false | bare-word
//! ```
//!
//! Values only ever reach SQL through `push_bind`; column names only from the
//! whitelist. Errors carry the character position they were found at.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{Postgres, QueryBuilder};

use crate::values;

/// Longest filter accepted, in characters.
pub const MAX_FILTER_LEN: usize = 2000;
/// Deepest nesting of parentheses and NOTs accepted.
pub const MAX_DEPTH: usize = 32;
/// Most comparisons one filter may make: each becomes a condition (a custom field's a
/// subquery) that every candidate row is tested against.
pub const MAX_TERMS: usize = 50;

/// How a whitelisted field is stored and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// `varchar`/`text`: `=`, `!=`, ordering, `:` (case-insensitive contains).
    Text,
    /// `bigint`/`integer`.
    Int,
    /// `numeric`, compared exactly.
    Decimal,
    /// `boolean`: `=` and `!=` with `true`/`false`.
    Bool,
    /// `timestamptz`, written as an RFC 3339 string.
    Timestamp,
    /// `date`, written as `"YYYY-MM-DD"`.
    Date,
    /// A `jsonb` array of strings: `tags:"vip"` (membership).
    Tags,
    /// The seed's custom-fields document: `custom_fields.<name> <op> value`.
    CustomFields,
}

impl FieldKind {
    /// The SQL type a value of this kind is cast to.
    pub fn sql_type(self) -> &'static str {
        match self {
            FieldKind::Text | FieldKind::Tags | FieldKind::CustomFields => "text",
            FieldKind::Int => "bigint",
            FieldKind::Decimal => "numeric",
            FieldKind::Bool => "boolean",
            FieldKind::Timestamp => "timestamptz",
            FieldKind::Date => "date",
        }
    }
}

/// One filterable field: its name in the API and its SQL column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// The field as named in the proto (`create_time`).
    pub name: &'static str,
    /// The SQL column (`created_at`); a trusted constant, never input.
    pub column: &'static str,
    /// How values compare.
    pub kind: FieldKind,
}

impl FieldSpec {
    /// Shorthand for building whitelists.
    pub const fn new(name: &'static str, column: &'static str, kind: FieldKind) -> Self {
        Self { name, column, kind }
    }
}

/// Finds a field of a whitelist by its API name.
pub fn find_field<'a>(fields: &'a [FieldSpec], name: &str) -> Option<&'a FieldSpec> {
    fields.iter().find(|f| f.name == name)
}

/// A filter that could not be parsed or does not fit the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// Character offset (0-based) where the problem is.
    pub position: usize,
    /// What is wrong, for the caller.
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at position {})", self.message, self.position)
    }
}

impl std::error::Error for FilterError {}

fn err<T>(position: usize, message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError {
        position,
        message: message.into(),
    })
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `:` (has)
    Has,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "IS DISTINCT FROM",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Has => "ILIKE",
        }
    }
}

/// A literal value as written.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A quoted string.
    String(String),
    /// An unquoted word or number, interpreted by the field's kind.
    Bare(String),
}

impl Value {
    fn text(&self) -> &str {
        match self {
            Value::String(s) | Value::Bare(s) => s,
        }
    }
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// All must hold.
    And(Vec<Expr>),
    /// Any must hold.
    Or(Vec<Expr>),
    /// Must not hold.
    Not(Box<Expr>),
    /// `field op value`.
    Compare {
        /// Dotted field path.
        field: String,
        /// Where the field starts.
        position: usize,
        /// The comparator.
        op: Op,
        /// The value.
        value: Value,
        /// Where the value starts.
        value_position: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Op(Op),
    Minus,
    Dot,
    Str(String),
    Word(String),
}

fn lex(input: &str) -> Result<Vec<(Tok, usize)>, FilterError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((Tok::LParen, start));
                i += 1;
            }
            ')' => {
                out.push((Tok::RParen, start));
                i += 1;
            }
            '.' => {
                out.push((Tok::Dot, start));
                i += 1;
            }
            ':' => {
                out.push((Tok::Op(Op::Has), start));
                i += 1;
            }
            '=' => {
                out.push((Tok::Op(Op::Eq), start));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push((Tok::Op(Op::Ne), start));
                i += 2;
            }
            '<' | '>' => {
                let or_equal = chars.get(i + 1) == Some(&'=');
                let op = match (c, or_equal) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    _ => Op::Ge,
                };
                out.push((Tok::Op(op), start));
                i += if or_equal { 2 } else { 1 };
            }
            '-' if chars.get(i + 1).is_some_and(|n| n.is_ascii_digit())
                && matches!(out.last(), Some((Tok::Op(_), _))) =>
            {
                // A negative number right after a comparator, not a NOT.
                i += 1;
                let mut word = String::from("-");
                while i < chars.len() && is_word_char(chars[i]) {
                    word.push(chars[i]);
                    i += 1;
                }
                out.push((Tok::Word(word), start));
            }
            '-' => {
                out.push((Tok::Minus, start));
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return err(start, "unterminated string"),
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some(&escaped) => s.push(escaped),
                                None => return err(i, "dangling escape"),
                            }
                            i += 2;
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            s.push(other);
                            i += 1;
                        }
                    }
                }
                out.push((Tok::Str(s), start));
            }
            c if is_word_char(c) => {
                let mut word = String::new();
                while i < chars.len() && is_word_char(chars[i]) {
                    word.push(chars[i]);
                    i += 1;
                }
                out.push((Tok::Word(word), start));
            }
            other => return err(start, format!("unexpected character {other:?}")),
        }
    }
    Ok(out)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '@' | '+' | '*') || (c == '-')
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
    end: usize,
    depth: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |(_, p)| *p)
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w == kw)
    }

    fn expression(&mut self) -> Result<Expr, FilterError> {
        let mut parts = vec![self.sequence()?];
        while self.is_keyword("AND") {
            self.at += 1;
            parts.push(self.sequence()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn sequence(&mut self) -> Result<Expr, FilterError> {
        let mut parts = vec![self.factor()?];
        while matches!(self.peek(), Some(Tok::Word(_) | Tok::LParen | Tok::Minus))
            && !self.is_keyword("AND")
            && !self.is_keyword("OR")
        {
            parts.push(self.factor()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn factor(&mut self) -> Result<Expr, FilterError> {
        let mut parts = vec![self.term()?];
        while self.is_keyword("OR") {
            self.at += 1;
            parts.push(self.term()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn term(&mut self) -> Result<Expr, FilterError> {
        if self.is_keyword("NOT") || matches!(self.peek(), Some(Tok::Minus)) {
            self.at += 1;
            self.descend()?;
            let inner = self.simple()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.simple()
    }

    fn descend(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                self.pos(),
                format!("filter nests deeper than {MAX_DEPTH} levels"),
            );
        }
        Ok(())
    }

    fn simple(&mut self) -> Result<Expr, FilterError> {
        let position = self.pos();
        match self.peek().cloned() {
            Some(Tok::LParen) => {
                self.at += 1;
                self.descend()?;
                let inner = self.expression()?;
                self.depth -= 1;
                if self.peek() != Some(&Tok::RParen) {
                    return err(self.pos(), "expected ')'");
                }
                self.at += 1;
                Ok(inner)
            }
            Some(Tok::Word(first)) if !matches!(first.as_str(), "AND" | "OR" | "NOT") => {
                self.terms += 1;
                if self.terms > MAX_TERMS {
                    return err(
                        position,
                        format!("filter makes more than {MAX_TERMS} comparisons"),
                    );
                }
                self.at += 1;
                let mut field = first;
                while self.peek() == Some(&Tok::Dot) {
                    self.at += 1;
                    match self.peek().cloned() {
                        Some(Tok::Word(part)) => {
                            field.push('.');
                            field.push_str(&part);
                            self.at += 1;
                        }
                        _ => return err(self.pos(), "expected a field name after '.'"),
                    }
                }
                let op = match self.peek() {
                    Some(Tok::Op(op)) => *op,
                    _ => {
                        return err(
                            self.pos(),
                            format!(
                                "expected a comparator after {field:?} (=, !=, <, <=, >, >=, :)"
                            ),
                        );
                    }
                };
                self.at += 1;
                let value_position = self.pos();
                let value = match self.peek().cloned() {
                    Some(Tok::Str(s)) => Value::String(s),
                    Some(Tok::Word(w)) => {
                        // Bare values may be dotted numbers (`1.5`).
                        let mut w = w;
                        if self.toks.get(self.at + 1).map(|(t, _)| t) == Some(&Tok::Dot)
                            && let Some((Tok::Word(frac), _)) = self.toks.get(self.at + 2)
                        {
                            w = format!("{w}.{frac}");
                            self.at += 2;
                        }
                        Value::Bare(w)
                    }
                    _ => return err(value_position, "expected a value"),
                };
                self.at += 1;
                Ok(Expr::Compare {
                    field,
                    position,
                    op,
                    value,
                    value_position,
                })
            }
            Some(_) => err(position, "expected a field, '(' or NOT"),
            None => err(position, "unexpected end of filter"),
        }
    }
}

/// Parses an AIP-160 filter; `Ok(None)` for an empty one.
pub fn parse(input: &str) -> Result<Option<Expr>, FilterError> {
    if input.chars().count() > MAX_FILTER_LEN {
        return err(
            MAX_FILTER_LEN,
            format!("filter is longer than {MAX_FILTER_LEN} characters"),
        );
    }
    let toks = lex(input)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser {
        toks,
        at: 0,
        end: input.chars().count(),
        depth: 0,
        terms: 0,
    };
    let expr = parser.expression()?;
    if parser.at < parser.toks.len() {
        return err(parser.pos(), "unexpected input");
    }
    Ok(Some(expr))
}

/// A value bound for a comparison, typed by the field's kind.
enum Bound {
    Text(String),
    Int(i64),
    Decimal(Decimal),
    Bool(bool),
    Timestamp(DateTime<Utc>),
    Date(NaiveDate),
}

fn typed(kind: FieldKind, value: &Value, position: usize) -> Result<Bound, FilterError> {
    let text = value.text();
    let mismatch = |what: &str| err(position, format!("{text:?} is not {what}"));
    match kind {
        FieldKind::Text | FieldKind::Tags | FieldKind::CustomFields => {
            Ok(Bound::Text(text.to_owned()))
        }
        FieldKind::Int => text
            .parse()
            .map(Bound::Int)
            .or_else(|_| mismatch("an integer")),
        FieldKind::Decimal => text
            .parse()
            .map(Bound::Decimal)
            .or_else(|_| mismatch("a decimal number")),
        FieldKind::Bool => match text {
            "true" => Ok(Bound::Bool(true)),
            "false" => Ok(Bound::Bool(false)),
            _ => mismatch("true or false"),
        },
        // Within the years the store accepts (`values`), like a time or date a client
        // writes; chrono would read a date of 5000 BC that PostgreSQL then refuses.
        FieldKind::Timestamp => DateTime::parse_from_rfc3339(text)
            .ok()
            .and_then(|t| values::time(t.with_timezone(&Utc)).ok())
            .map(Bound::Timestamp)
            .map_or_else(
                || mismatch("an RFC 3339 timestamp in the years 0001 to 9999"),
                Ok,
            ),
        FieldKind::Date => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| values::date(d).ok())
            .map(Bound::Date)
            .map_or_else(
                || mismatch("a date (YYYY-MM-DD) in the years 0001 to 9999"),
                Ok,
            ),
    }
}

fn push_bound(qb: &mut QueryBuilder<Postgres>, value: Bound) {
    match value {
        Bound::Text(v) => qb.push_bind(v),
        Bound::Int(v) => qb.push_bind(v),
        Bound::Decimal(v) => qb.push_bind(v),
        Bound::Bool(v) => qb.push_bind(v),
        Bound::Timestamp(v) => qb.push_bind(v),
        Bound::Date(v) => qb.push_bind(v),
    };
}

/// `%`, `_` and `\` are literal in a `:` (contains) match.
fn like_contains(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    escaped.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

/// Checks `expr` against `fields` without producing SQL (fails the same way
/// [`push_sql`] would).
pub fn validate(expr: &Expr, fields: &[FieldSpec]) -> Result<(), FilterError> {
    let mut scratch = QueryBuilder::<Postgres>::new("");
    push_sql(&mut scratch, expr, fields)
}

/// Appends `expr` as a parenthesised SQL condition, binding every value.
pub fn push_sql(
    qb: &mut QueryBuilder<Postgres>,
    expr: &Expr,
    fields: &[FieldSpec],
) -> Result<(), FilterError> {
    match expr {
        Expr::And(parts) | Expr::Or(parts) => {
            let joiner = if matches!(expr, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            qb.push("(");
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    qb.push(joiner);
                }
                push_sql(qb, part, fields)?;
            }
            qb.push(")");
        }
        Expr::Not(inner) => {
            // COALESCE keeps NOT total over NULL comparisons: NOT (NULL) is "no match".
            qb.push("(NOT COALESCE(");
            push_sql(qb, inner, fields)?;
            qb.push(", false))");
        }
        Expr::Compare {
            field,
            position,
            op,
            value,
            value_position,
        } => {
            let (root, rest) = match field.split_once('.') {
                Some((root, rest)) => (root, Some(rest)),
                None => (field.as_str(), None),
            };
            let Some(spec) = find_field(fields, root) else {
                return err(*position, format!("unknown field {field:?}"));
            };
            match (spec.kind, rest) {
                (FieldKind::CustomFields, Some(name)) => {
                    if name.contains('.') {
                        return err(*position, "custom fields are one level deep");
                    }
                    qb.push("EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(");
                    qb.push(spec.column);
                    qb.push("->'fields') = 'array' THEN ");
                    qb.push(spec.column);
                    qb.push("->'fields' ELSE '[]'::jsonb END) AS cf WHERE cf->>'name' = ");
                    qb.push_bind(name.to_owned());
                    qb.push(" AND cf->>'value' ");
                    qb.push(op.sql());
                    qb.push(" ");
                    let text = value.text().to_owned();
                    qb.push_bind(if *op == Op::Has {
                        like_contains(&text)
                    } else {
                        text
                    });
                    qb.push(")");
                }
                (FieldKind::CustomFields, None) => {
                    return err(*position, format!("name a custom field: {root}.<name>"));
                }
                (_, Some(_)) => return err(*position, format!("{root:?} has no sub-fields")),
                (FieldKind::Tags, None) => {
                    if *op != Op::Has {
                        return err(*position, format!("{root} supports only ':' (has)"));
                    }
                    qb.push("(");
                    qb.push(spec.column);
                    qb.push(" ? ");
                    qb.push_bind(value.text().to_owned());
                    qb.push(")");
                }
                (kind, None) => {
                    if *op == Op::Has && kind != FieldKind::Text {
                        return err(*position, format!("':' applies to text fields, not {root}"));
                    }
                    if kind == FieldKind::Bool && !matches!(op, Op::Eq | Op::Ne) {
                        return err(*position, format!("{root} supports only = and !="));
                    }
                    qb.push("(");
                    qb.push(spec.column);
                    qb.push(" ");
                    qb.push(op.sql());
                    qb.push(" ");
                    if *op == Op::Has {
                        qb.push_bind(like_contains(value.text()));
                    } else {
                        push_bound(qb, typed(kind, value, *value_position)?);
                    }
                    qb.push(")");
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[FieldSpec] = &[
        FieldSpec::new("status", "status", FieldKind::Text),
        FieldSpec::new("score", "score", FieldKind::Int),
        FieldSpec::new("price", "price", FieldKind::Decimal),
        FieldSpec::new("active", "active", FieldKind::Bool),
        FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
        FieldSpec::new("tags", "tags", FieldKind::Tags),
        FieldSpec::new("custom_fields", "custom_fields", FieldKind::CustomFields),
    ];

    fn sql(filter: &str) -> Result<String, FilterError> {
        let Some(expr) = parse(filter)? else {
            return Ok(String::new());
        };
        let mut qb = QueryBuilder::<Postgres>::new("");
        push_sql(&mut qb, &expr, FIELDS)?;
        Ok(qb.sql().as_str().to_owned())
    }

    #[test]
    fn or_binds_tighter_than_and() {
        let expr = parse("a = 1 AND b = 2 OR c = 3").unwrap().unwrap();
        let Expr::And(parts) = expr else {
            panic!("AND at the top")
        };
        assert!(matches!(parts[1], Expr::Or(_)));
    }

    #[test]
    fn values_are_bound_never_inlined() {
        let s = sql(r#"status = "x'; DROP TABLE leads; --" AND score >= 5"#).unwrap();
        assert_eq!(s, "((status = $1) AND (score >= $2))");
    }

    #[test]
    fn tags_and_custom_fields_compile() {
        assert_eq!(sql(r#"tags:"vip""#).unwrap(), "(tags ? $1)");
        assert!(
            sql(r#"custom_fields.budget = "300k+""#)
                .unwrap()
                .contains("cf->>'name' = $1")
        );
    }

    #[test]
    fn negation_and_negative_numbers() {
        assert_eq!(
            sql("-status = new").unwrap(),
            "(NOT COALESCE((status = $1), false))"
        );
        assert_eq!(sql("score > -5").unwrap(), "(score > $1)");
    }

    #[test]
    fn unknown_fields_and_type_mismatches_carry_positions() {
        assert_eq!(sql("status = a AND colour = red").unwrap_err().position, 15);
        let e = sql("score = high").unwrap_err();
        assert_eq!(e.position, 8);
        assert!(e.message.contains("integer"));
        assert!(sql("create_time > yesterday").is_err());
        assert!(sql("active > true").is_err());
        assert!(sql("tags = vip").is_err());
    }

    #[test]
    fn malformed_filters_are_errors() {
        for bad in [
            "status =",
            "(status = a",
            "status a",
            "AND",
            "status = \"open",
            "status == a",
        ] {
            assert!(sql(bad).is_err(), "{bad} should fail");
        }
        assert_eq!(parse("   ").unwrap(), None);
    }

    #[test]
    fn depth_and_length_are_bounded() {
        let deep = format!("{}status = a{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&deep).unwrap_err().message.contains("deeper"));
        let long = format!("status = \"{}\"", "a".repeat(MAX_FILTER_LEN));
        assert!(parse(&long).is_err());
    }

    proptest::proptest! {
        #[test]
        fn no_input_panics(input in "\\PC{0,200}") {
            let _ = sql(&input);
        }

        #[test]
        fn no_literal_reaches_sql(value in "[a-zA-Z0-9 ;'%_-]{0,40}") {
            // The marker cannot occur in any SQL the compiler writes itself.
            let value = format!("zq{value}");
            let filter = format!("status = \"{value}\" OR custom_fields.x : \"{value}\" OR score != {value}");
            if let Ok(s) = sql(&filter) {
                proptest::prop_assert!(!s.contains("zq"), "{s}");
            }
            let s = sql(&format!("status = \"{value}\" OR custom_fields.x : \"{value}\"")).unwrap();
            proptest::prop_assert!(!s.contains("zq"), "{s}");
        }

        #[test]
        fn no_value_of_any_characters_reaches_sql(value in "\\PC{0,60}") {
            // Any text, quotes and backslashes escaped as the grammar wants them.
            let quoted: String = format!("zq{value}")
                .chars()
                .flat_map(|c| match c {
                    '"' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            let filter = format!(
                "status = \"{quoted}\" OR tags:\"{quoted}\" OR custom_fields.budget >= \"{quoted}\""
            );
            let s = sql(&filter).unwrap();
            proptest::prop_assert!(!s.contains("zq"), "{s}");
        }

        #[test]
        fn the_number_of_comparisons_is_bounded(n in 1usize..120, or in proptest::bool::ANY) {
            let joiner = if or { " OR " } else { " AND " };
            let filter = vec!["score > 1"; n].join(joiner);
            match parse(&filter) {
                Ok(_) => proptest::prop_assert!(n <= MAX_TERMS),
                Err(e) => {
                    proptest::prop_assert!(n > MAX_TERMS);
                    proptest::prop_assert!(e.message.contains("comparisons"), "{e}");
                }
            }
        }

        #[test]
        fn structured_filters_compile(field in "(status|score|active|tags)", op in "(=|!=|<|>|:)", v in "[a-z0-9]{1,8}") {
            let _ = sql(&format!("{field} {op} {v} AND NOT ({field} {op} \"{v}\")"));
        }
    }
}
