//! TraceQL, the part Grafana's search editor writes: one spanset filter
//! `{ ... }` of comparisons joined by `&&` and `||` (one precedence level, left
//! to right, as Tempo's grammar has them), parentheses, scoped (`span.`,
//! `resource.`) and unscoped (`.`) attributes, the intrinsics `name`, `status`,
//! `statusMessage`, `kind`, `duration`, `traceDuration`, `rootName`,
//! `rootServiceName` (and their `span:`/`trace:` spellings), the operators
//! `= != =~ !~ > >= < <=`, and string, number, duration, boolean, status, kind
//! and `nil` literals.
//!
//! Semantics follow Tempo's: a comparison with a missing attribute or a value of
//! another type is false (for `!=` too); numbers compare across integer, float
//! and duration; regular expressions are fully anchored and `.` matches a
//! newline; an unscoped attribute is the span's if the span has it, else the
//! resource's; `!= nil` means present and `= nil` absent. Pipelines, spanset
//! operators and aggregates are refused with a message naming them.

use std::fmt;

/// A parsed query: one spanset filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The filter's condition (`Expr::True` for `{}`).
    pub filter: Expr,
}

/// A condition on a span.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Matches every span.
    True,
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
    /// A comparison.
    Cmp(Field, Op, Literal),
}

/// What a comparison reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// An intrinsic of the span or its trace.
    Intrinsic(Intrinsic),
    /// An attribute.
    Attr(Scope, String),
}

/// Intrinsics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    /// Span name.
    Name,
    /// Span status.
    Status,
    /// Status message.
    StatusMessage,
    /// Span kind.
    Kind,
    /// Span duration.
    Duration,
    /// Trace duration (first start to last end).
    TraceDuration,
    /// The root span's name.
    RootName,
    /// The root span's service.
    RootServiceName,
}

impl Intrinsic {
    /// Whether it is a property of the trace rather than the span.
    pub fn is_trace_level(self) -> bool {
        matches!(
            self,
            Intrinsic::TraceDuration | Intrinsic::RootName | Intrinsic::RootServiceName
        )
    }

    /// Its name in queries and in search results.
    pub fn name(self) -> &'static str {
        match self {
            Intrinsic::Name => "name",
            Intrinsic::Status => "status",
            Intrinsic::StatusMessage => "statusMessage",
            Intrinsic::Kind => "kind",
            Intrinsic::Duration => "duration",
            Intrinsic::TraceDuration => "traceDuration",
            Intrinsic::RootName => "rootName",
            Intrinsic::RootServiceName => "rootServiceName",
        }
    }
}

/// Where an attribute is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The span's attributes.
    Span,
    /// The resource's attributes.
    Resource,
    /// The span's, else the resource's.
    Unscoped,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
    Re,
    /// `!~`
    NotRe,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl Op {
    /// The SQL operator for ordered comparisons and equality.
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Re | Op::NotRe => "",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::NotRe => "!~",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        })
    }
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A duration, ns.
    Duration(i64),
    /// `true` or `false`.
    Bool(bool),
    /// A status code (OTLP numbering).
    Status(i8),
    /// A span kind (OTLP numbering).
    Kind(i8),
    /// `nil`.
    Nil,
}

impl Literal {
    /// Its value as a number, for numeric comparisons.
    pub fn number(&self) -> Option<f64> {
        match self {
            Literal::Int(i) => Some(*i as f64),
            Literal::Float(f) => Some(*f),
            Literal::Duration(d) => Some(*d as f64),
            _ => None,
        }
    }
}

/// A parse error, with the position (1-based column) it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What was wrong.
    pub message: String,
    /// 1-based column.
    pub col: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "parse error at line 1, col {}: {}", self.col, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    And,
    Or,
    Op(Op),
    Minus,
    Field(Field),
    Lit(Literal),
    /// Something TraceQL has that this subset does not evaluate.
    Unsupported(String),
}

fn err<T>(col: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        message: message.into(),
        col,
    })
}

/// A rune that ends an attribute name (Tempo's `isAttributeRune`).
fn ends_attribute(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '{' | '}' | '(' | ')' | '=' | '~' | '!' | '<' | '>' | '&' | '|' | '^' | ','
        )
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let two = |a: char, b: char| c == a && next == Some(b);
        let tok = if c == '{' {
            i += 1;
            Tok::LBrace
        } else if c == '}' {
            i += 1;
            Tok::RBrace
        } else if c == '(' {
            i += 1;
            Tok::LParen
        } else if c == ')' {
            i += 1;
            Tok::RParen
        } else if two('&', '&') {
            i += 2;
            Tok::And
        } else if two('|', '|') {
            i += 2;
            Tok::Or
        } else if two('!', '=') {
            i += 2;
            Tok::Op(Op::Ne)
        } else if two('=', '~') {
            i += 2;
            Tok::Op(Op::Re)
        } else if two('!', '~') {
            i += 2;
            Tok::Op(Op::NotRe)
        } else if two('>', '=') {
            i += 2;
            Tok::Op(Op::Ge)
        } else if two('<', '=') {
            i += 2;
            Tok::Op(Op::Le)
        } else if c == '=' {
            i += 1;
            Tok::Op(Op::Eq)
        } else if c == '>' || c == '<' {
            i += 1;
            Tok::Op(if c == '>' { Op::Gt } else { Op::Lt })
        } else if c == '-' {
            i += 1;
            Tok::Minus
        } else if c == '|' {
            i += 1;
            Tok::Unsupported("pipelines (`|`)".into())
        } else if c == '&' || c == '~' || c == '!' {
            i += 1;
            Tok::Unsupported(format!("the operator `{c}`"))
        } else if c == '"' {
            let (s, n) = string_literal(&chars[i..], col)?;
            i += n;
            Tok::Lit(Literal::Str(s))
        } else if c == '`' {
            let end = chars[i + 1..].iter().position(|x| *x == '`').ok_or(ParseError {
                message: "unterminated raw string".into(),
                col,
            })?;
            let s: String = chars[i + 1..i + 1 + end].iter().collect();
            i += end + 2;
            Tok::Lit(Literal::Str(s))
        } else if c.is_ascii_digit() || (c == '.' && next.is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && !ends_attribute(chars[i]) && chars[i] != '}' {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            Tok::Lit(number_or_duration(&word, col)?)
        } else if c == '.' {
            let (name, n) = attribute_name(&chars[i + 1..], col)?;
            i += 1 + n;
            Tok::Field(Field::Attr(Scope::Unscoped, name))
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if chars.get(i) == Some(&'.') && (word == "span" || word == "resource") {
                let (name, n) = attribute_name(&chars[i + 1..], col)?;
                i += 1 + n;
                let scope = if word == "span" { Scope::Span } else { Scope::Resource };
                Tok::Field(Field::Attr(scope, name))
            } else if chars.get(i) == Some(&'.')
                && matches!(word.as_str(), "parent" | "event" | "link" | "instrumentation")
            {
                Tok::Unsupported(format!("`{word}.` attributes"))
            } else if chars.get(i) == Some(&':') {
                let s = i + 1;
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let name: String = chars[s..i].iter().collect();
                match (word.as_str(), name.as_str()) {
                    ("span", "name") => Tok::Field(Field::Intrinsic(Intrinsic::Name)),
                    ("span", "status") => Tok::Field(Field::Intrinsic(Intrinsic::Status)),
                    ("span", "statusMessage") => Tok::Field(Field::Intrinsic(Intrinsic::StatusMessage)),
                    ("span", "kind") => Tok::Field(Field::Intrinsic(Intrinsic::Kind)),
                    ("span", "duration") => Tok::Field(Field::Intrinsic(Intrinsic::Duration)),
                    ("trace", "duration") => Tok::Field(Field::Intrinsic(Intrinsic::TraceDuration)),
                    ("trace", "rootName") => Tok::Field(Field::Intrinsic(Intrinsic::RootName)),
                    ("trace", "rootService") => Tok::Field(Field::Intrinsic(Intrinsic::RootServiceName)),
                    _ => Tok::Unsupported(format!("the intrinsic `{word}:{name}`")),
                }
            } else {
                keyword(&word, col)?
            }
        } else {
            return err(col, format!("unexpected character {c:?}"));
        };
        out.push((tok, col));
    }
    Ok(out)
}

fn keyword(word: &str, col: usize) -> Result<Tok, ParseError> {
    use Intrinsic::*;
    Ok(match word {
        "name" => Tok::Field(Field::Intrinsic(Name)),
        "status" => Tok::Field(Field::Intrinsic(Status)),
        "statusMessage" => Tok::Field(Field::Intrinsic(StatusMessage)),
        "kind" => Tok::Field(Field::Intrinsic(Kind)),
        "duration" => Tok::Field(Field::Intrinsic(Duration)),
        "traceDuration" => Tok::Field(Field::Intrinsic(TraceDuration)),
        "rootName" => Tok::Field(Field::Intrinsic(RootName)),
        "rootServiceName" | "rootService" => Tok::Field(Field::Intrinsic(RootServiceName)),
        "true" => Tok::Lit(Literal::Bool(true)),
        "false" => Tok::Lit(Literal::Bool(false)),
        "nil" => Tok::Lit(Literal::Nil),
        "unset" => Tok::Lit(Literal::Status(0)),
        "ok" => Tok::Lit(Literal::Status(1)),
        "error" => Tok::Lit(Literal::Status(2)),
        "unspecified" => Tok::Lit(Literal::Kind(0)),
        "internal" => Tok::Lit(Literal::Kind(1)),
        "server" => Tok::Lit(Literal::Kind(2)),
        "client" => Tok::Lit(Literal::Kind(3)),
        "producer" => Tok::Lit(Literal::Kind(4)),
        "consumer" => Tok::Lit(Literal::Kind(5)),
        "childCount" | "nestedSetLeft" | "nestedSetRight" | "nestedSetParent" | "parent" | "id" | "traceID"
        | "spanID" | "parentID" | "timeSinceStart" | "version" => Tok::Unsupported(format!("the intrinsic `{word}`")),
        "count"
        | "avg"
        | "min"
        | "max"
        | "sum"
        | "by"
        | "select"
        | "coalesce"
        | "rate"
        | "count_over_time"
        | "quantile_over_time"
        | "histogram_over_time" => Tok::Unsupported(format!("`{word}`")),
        _ => return err(col, format!("unknown identifier: {word}")),
    })
}

/// A double-quoted string with Go's escapes; returns it and the characters used.
fn string_literal(chars: &[char], col: usize) -> Result<(String, usize), ParseError> {
    let mut s = String::new();
    let mut i = 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return err(col, "literal not terminated");
        };
        i += 1;
        match c {
            '"' => return Ok((s, i)),
            '\\' => {
                let Some(&e) = chars.get(i) else {
                    return err(col, "literal not terminated");
                };
                i += 1;
                match e {
                    '"' => s.push('"'),
                    '\\' => s.push('\\'),
                    '\'' => s.push('\''),
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    'a' => s.push('\x07'),
                    'b' => s.push('\x08'),
                    'f' => s.push('\x0c'),
                    'v' => s.push('\x0b'),
                    'u' | 'U' | 'x' => {
                        let n = match e {
                            'u' => 4,
                            'U' => 8,
                            _ => 2,
                        };
                        let hex: String = chars.get(i..i + n).map(|h| h.iter().collect()).unwrap_or_default();
                        let v = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or(ParseError {
                                message: format!("invalid escape \\{e}{hex}"),
                                col,
                            })?;
                        s.push(v);
                        i += n;
                    }
                    other => return err(col, format!("invalid escape sequence \\{other}")),
                }
            }
            c => s.push(c),
        }
    }
}

/// An attribute name after its scope: up to a rune that ends it, with quoted
/// parts (`"a b"`, escapes `\"` and `\\` only) taken literally.
fn attribute_name(chars: &[char], col: usize) -> Result<(String, usize), ParseError> {
    let mut name = String::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c == '"' {
            i += 1;
            loop {
                let Some(&q) = chars.get(i) else {
                    return err(col, "unexpected EOF, expecting \"");
                };
                i += 1;
                match q {
                    '"' => break,
                    '\\' => {
                        match chars.get(i) {
                            Some('"') => name.push('"'),
                            Some('\\') => name.push('\\'),
                            _ => return err(col, "invalid escape sequence"),
                        }
                        i += 1;
                    }
                    q => name.push(q),
                }
            }
            continue;
        }
        if ends_attribute(c) {
            break;
        }
        name.push(c);
        i += 1;
    }
    if name.is_empty() {
        return err(col, "an attribute needs a name");
    }
    Ok((name, i))
}

/// A number, or a duration such as `1h15m30.5s` (units ns, us, µs, ms, s, m, h,
/// d, w, y).
fn number_or_duration(word: &str, col: usize) -> Result<Literal, ParseError> {
    if let Ok(i) = word.parse::<i64>() {
        return Ok(Literal::Int(i));
    }
    if word
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && let Ok(f) = word.parse::<f64>()
    {
        return Ok(Literal::Float(f));
    }
    parse_duration(word).map(Literal::Duration).ok_or(ParseError {
        message: format!("invalid number or duration {word:?}"),
        col,
    })
}

/// A duration in ns from Go/Prometheus notation.
pub fn parse_duration(s: &str) -> Option<i64> {
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            "w" => 7.0 * 86400e9,
            "y" => 365.0 * 86400e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += v * unit;
    }
    (total.is_finite() && total.abs() < i64::MAX as f64).then_some(total.round() as i64)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end_col: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end_col, |t| t.1)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.0.clone());
        self.pos += 1;
        t
    }

    fn unsupported<T>(&self, what: &str) -> Result<T, ParseError> {
        err(
            self.col(),
            format!(
                "{what} is not supported: Sextant evaluates one spanset filter {{ ... }} of attribute and intrinsic comparisons"
            ),
        )
    }

    /// expr := term ((&& | ||) term)*, left to right at one level.
    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.term()?;
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.pos += 1;
                    let right = self.term()?;
                    left = Expr::And(Box::new(left), Box::new(right));
                }
                Some(Tok::Or) => {
                    self.pos += 1;
                    let right = self.term()?;
                    left = Expr::Or(Box::new(left), Box::new(right));
                }
                _ => return Ok(left),
            }
        }
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let col = self.col();
        match self.next() {
            Some(Tok::LParen) => {
                let e = self.expr()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => err(self.col(), "syntax error: expecting )"),
                }
            }
            Some(Tok::Field(f)) => {
                let op = match self.peek() {
                    Some(Tok::Op(op)) => *op,
                    // A bare attribute is true when it is the boolean true.
                    Some(Tok::And | Tok::Or | Tok::RParen | Tok::RBrace) if matches!(f, Field::Attr(..)) => {
                        return Ok(Expr::Cmp(f, Op::Eq, Literal::Bool(true)));
                    }
                    Some(Tok::Unsupported(w)) => {
                        let w = w.clone();
                        return self.unsupported(&w);
                    }
                    _ => return err(self.col(), "syntax error: expecting a comparison operator"),
                };
                self.pos += 1;
                let lcol = self.col();
                let lit = match self.next() {
                    Some(Tok::Lit(l)) => l,
                    Some(Tok::Minus) => match self.next() {
                        Some(Tok::Lit(Literal::Int(i))) => Literal::Int(-i),
                        Some(Tok::Lit(Literal::Float(x))) => Literal::Float(-x),
                        Some(Tok::Lit(Literal::Duration(d))) => Literal::Duration(-d),
                        _ => return err(lcol, "syntax error: expecting a number after -"),
                    },
                    Some(Tok::Field(_)) => {
                        return err(
                            lcol,
                            "comparing two attributes is not supported: compare an attribute with a literal",
                        );
                    }
                    Some(Tok::Unsupported(w)) => return self.unsupported(&w),
                    _ => return err(lcol, "syntax error: expecting a value"),
                };
                validate(&f, op, &lit, col)?;
                Ok(Expr::Cmp(f, op, lit))
            }
            Some(Tok::Lit(Literal::Bool(true))) => Ok(Expr::True),
            Some(Tok::Unsupported(w)) => {
                self.pos -= 1;
                self.unsupported(&w)
            }
            _ => err(col, "syntax error: expecting an attribute, an intrinsic or ("),
        }
    }
}

/// Tempo's static checks: an intrinsic compared with a literal of another type
/// is an error; operators a type does not have are errors; a regex must compile.
fn validate(f: &Field, op: Op, lit: &Literal, col: usize) -> Result<(), ParseError> {
    let mismatch = || {
        err(
            col,
            format!("binary operations must operate on the same type: {op} {}", describe(f)),
        )
    };
    if matches!(op, Op::Re | Op::NotRe) {
        let Literal::Str(re) = lit else {
            return err(col, format!("{op} needs a string (a regular expression)"));
        };
        if let Err(e) = regex::Regex::new(&format!("^(?s:{re})$")) {
            return err(col, format!("invalid regular expression {re:?}: {e}"));
        }
    }
    if *lit == Literal::Nil {
        if matches!(f, Field::Intrinsic(_)) {
            return err(col, "intrinsics cannot be compared with nil");
        }
        if !matches!(op, Op::Eq | Op::Ne) {
            return err(col, format!("nil compares only with = and !=, not {op}"));
        }
        return Ok(());
    }
    let Field::Intrinsic(i) = f else {
        if matches!(lit, Literal::Status(_) | Literal::Kind(_) | Literal::Bool(_)) && !matches!(op, Op::Eq | Op::Ne) {
            return err(col, format!("{op} is not defined for this literal"));
        }
        return Ok(());
    };
    use Intrinsic::*;
    let ok = match i {
        Name | StatusMessage | RootName | RootServiceName => matches!(lit, Literal::Str(_)),
        Duration | TraceDuration => lit.number().is_some() && !matches!(op, Op::Re | Op::NotRe),
        Status => matches!(lit, Literal::Status(_) | Literal::Int(_)) && matches!(op, Op::Eq | Op::Ne),
        Kind => matches!(lit, Literal::Kind(_)) && matches!(op, Op::Eq | Op::Ne),
    };
    if ok { Ok(()) } else { mismatch() }
}

fn describe(f: &Field) -> String {
    match f {
        Field::Intrinsic(i) => i.name().into(),
        Field::Attr(Scope::Span, n) => format!("span.{n}"),
        Field::Attr(Scope::Resource, n) => format!("resource.{n}"),
        Field::Attr(Scope::Unscoped, n) => format!(".{n}"),
    }
}

/// Parses a query.
pub fn parse(src: &str) -> Result<Query, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        end_col: src.chars().count() + 1,
        toks,
        pos: 0,
    };
    match p.next() {
        Some(Tok::LBrace) => {}
        Some(Tok::Unsupported(w)) => {
            p.pos -= 1;
            return p.unsupported(&w);
        }
        None => return err(1, "syntax error: empty query, expecting {"),
        _ => {
            return err(
                1,
                "syntax error: a query is a spanset filter in braces, e.g. { .http.status_code = 500 }",
            );
        }
    }
    let filter = if p.peek() == Some(&Tok::RBrace) {
        Expr::True
    } else {
        p.expr()?
    };
    match p.next() {
        Some(Tok::RBrace) => {}
        Some(Tok::Unsupported(w)) => {
            p.pos -= 1;
            return p.unsupported(&w);
        }
        _ => {
            p.pos = p.pos.saturating_sub(1);
            return err(p.col(), "syntax error: expecting }");
        }
    }
    match p.peek() {
        None => Ok(Query { filter }),
        Some(Tok::Unsupported(w)) => {
            let w = w.clone();
            p.unsupported(&w)
        }
        Some(Tok::And | Tok::Or) => p.unsupported("combining spansets (`{ } && { }`)"),
        _ => err(p.col(), "syntax error: unexpected input after }"),
    }
}

/// Parses one attribute or intrinsic name (`span.x`, `resource.x`, `.x`,
/// `name`, `span:status`, ...).
pub fn parse_field(src: &str) -> Result<Field, ParseError> {
    match lex(src)?.as_slice() {
        [(Tok::Field(f), _)] => Ok(f.clone()),
        _ => err(1, format!("not an attribute or intrinsic: {src}")),
    }
}

impl Expr {
    /// Every field the condition reads, in order of first use.
    pub fn fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<Field>) {
        match self {
            Expr::True => {}
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.collect(out);
                b.collect(out);
            }
            Expr::Cmp(f, _, _) => {
                if !out.contains(f) {
                    out.push(f.clone());
                }
            }
        }
    }

    /// Whether a condition reads a property of the trace.
    pub fn reads_trace(&self) -> bool {
        self.fields()
            .iter()
            .any(|f| matches!(f, Field::Intrinsic(i) if i.is_trace_level()))
    }

    /// Both conditions.
    pub fn and(self, other: Expr) -> Expr {
        match (self, other) {
            (Expr::True, e) | (e, Expr::True) => e,
            (a, b) => Expr::And(Box::new(a), Box::new(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(f: Field, op: Op, l: Literal) -> Expr {
        Expr::Cmp(f, op, l)
    }

    #[test]
    fn grafana_search_editor_queries_parse() {
        let q = parse(r#"{resource.service.name="frontend" && name="GET /api" && duration>100ms && status=error}"#)
            .unwrap();
        assert_eq!(
            q.filter.fields(),
            vec![
                Field::Attr(Scope::Resource, "service.name".into()),
                Field::Intrinsic(Intrinsic::Name),
                Field::Intrinsic(Intrinsic::Duration),
                Field::Intrinsic(Intrinsic::Status),
            ]
        );
        assert_eq!(parse("{}").unwrap().filter, Expr::True);
        assert_eq!(parse("{ }").unwrap().filter, Expr::True);
        let q = parse(r#"{ span.http.status_code >= 500 || .db.system =~ "post.*" }"#).unwrap();
        assert_eq!(
            q.filter,
            Expr::Or(
                Box::new(cmp(
                    Field::Attr(Scope::Span, "http.status_code".into()),
                    Op::Ge,
                    Literal::Int(500)
                )),
                Box::new(cmp(
                    Field::Attr(Scope::Unscoped, "db.system".into()),
                    Op::Re,
                    Literal::Str("post.*".into())
                )),
            )
        );
        assert_eq!(
            parse("{ kind = server && span:name = `a\\b` }").unwrap().filter,
            Expr::And(
                Box::new(cmp(Field::Intrinsic(Intrinsic::Kind), Op::Eq, Literal::Kind(2))),
                Box::new(cmp(
                    Field::Intrinsic(Intrinsic::Name),
                    Op::Eq,
                    Literal::Str("a\\b".into())
                )),
            )
        );
    }

    #[test]
    fn and_and_or_share_one_level_left_to_right() {
        let q = parse("{ .a = 1 || .b = 2 && .c = 3 }").unwrap();
        let a = cmp(Field::Attr(Scope::Unscoped, "a".into()), Op::Eq, Literal::Int(1));
        let b = cmp(Field::Attr(Scope::Unscoped, "b".into()), Op::Eq, Literal::Int(2));
        let c = cmp(Field::Attr(Scope::Unscoped, "c".into()), Op::Eq, Literal::Int(3));
        assert_eq!(
            q.filter,
            Expr::And(Box::new(Expr::Or(Box::new(a), Box::new(b))), Box::new(c))
        );
    }

    #[test]
    fn literals_and_names_lex_as_tempo_lexes_them() {
        assert_eq!(parse_duration("1h15m30.5s"), Some(4_530_500_000_000));
        assert_eq!(parse_duration("250us"), Some(250_000));
        assert_eq!(parse_duration("2d"), Some(172_800_000_000_000));
        assert_eq!(parse_duration("5x"), None);
        let q = parse(r#"{ span."foo bar".baz = "x\"y" && .foo-bar = -1.5 && traceDuration > 1.5s }"#).unwrap();
        let f = q.filter.fields();
        assert_eq!(f[0], Field::Attr(Scope::Span, "foo bar.baz".into()));
        assert_eq!(f[1], Field::Attr(Scope::Unscoped, "foo-bar".into()));
        assert!(matches!(
            q.filter,
            Expr::And(ref l, ref r) if matches!(**r, Expr::Cmp(_, Op::Gt, Literal::Duration(1_500_000_000)))
                && matches!(**l, Expr::And(ref x, ref y)
                    if matches!(**x, Expr::Cmp(_, Op::Eq, Literal::Str(ref s)) if s == "x\"y")
                    && matches!(**y, Expr::Cmp(_, Op::Eq, Literal::Float(v)) if v == -1.5))
        ));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert!(parse("{ name = 1 }").unwrap_err().message.contains("same type"));
        assert!(parse("{ status = server }").unwrap_err().message.contains("same type"));
        assert!(
            parse(r#"{ .a =~ "(" }"#)
                .unwrap_err()
                .message
                .contains("regular expression")
        );
        assert!(
            parse("{ .a = 1 } | count() > 2")
                .unwrap_err()
                .message
                .contains("not supported")
        );
        assert!(
            parse("{ .a = 1 } && { .b = 2 }")
                .unwrap_err()
                .message
                .contains("not supported")
        );
        assert!(parse("{ .a = 1 ").unwrap_err().message.contains("expecting }"));
        assert!(
            parse("{ foo = 1 }")
                .unwrap_err()
                .message
                .contains("unknown identifier: foo")
        );
        assert!(parse("").is_err());
        assert!(parse(r#"{ .a = "x }"#).unwrap_err().message.contains("not terminated"));
        assert_eq!(parse("{ .a = 1 }x").unwrap_err().col, 11);
    }
}
