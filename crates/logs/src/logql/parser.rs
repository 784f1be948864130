//! LogQL's parser: a scanner and a recursive-descent parser for the grammar of
//! Loki 3 (`syntax.y`), with Loki's error texts where queries commonly go wrong
//! (`parse error at line L, col C: syntax error: unexpected X`).

use regex::Regex;
use sextant_model::{MatchOp, Matcher};

use super::ast::*;
use super::parsers::{Pattern, parse_bytes, parse_go_duration, parse_json_path, parse_prom_duration};
use super::template::compile as compile_template;

/// A query that does not parse, with Loki's text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    /// A number, duration or byte size, as written.
    Num(String),
    /// `[...]` content.
    Range(String),
    Flag(String),
    Op(&'static str),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    col: usize,
}

const OPS: &[&str] = &[
    "|=", "|~", "|>", "!=", "!~", "!>", "=~", "==", ">=", "<=", "{", "}", "(", ")", ",", "|", "=", ">", "<", "+", "-",
    "*", "/", "%", "^",
];

fn lex(input: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let b = input.as_bytes();
    let mut i = 0;
    let (mut line, mut line_start) = (1usize, 0usize);
    let pos_err =
        |line: usize, col: usize, msg: &str| ParseError(format!("parse error at line {line}, col {col}: {msg}"));
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
            line_start = i;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let col = input[line_start..i].chars().count() + 1;
        let start = i;
        let tok = if c == b'"' {
            i += 1;
            let mut s = String::new();
            loop {
                if i >= b.len() || b[i] == b'\n' {
                    return Err(pos_err(line, col, "literal not terminated"));
                }
                let ch = input[i..].chars().next().expect("in bounds");
                if ch == '"' {
                    i += 1;
                    break;
                }
                if ch == '\\' {
                    i += 1;
                    let Some(e) = input[i..].chars().next() else {
                        return Err(pos_err(line, col, "literal not terminated"));
                    };
                    i += e.len_utf8();
                    match e {
                        'a' => s.push('\x07'),
                        'b' => s.push('\x08'),
                        'f' => s.push('\x0c'),
                        'n' => s.push('\n'),
                        'r' => s.push('\r'),
                        't' => s.push('\t'),
                        'v' => s.push('\x0b'),
                        '\\' => s.push('\\'),
                        '"' => s.push('"'),
                        'x' | 'u' | 'U' => {
                            let n = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let hex = input
                                .get(i..i + n)
                                .ok_or_else(|| pos_err(line, col, "invalid char escape"))?;
                            let v =
                                u32::from_str_radix(hex, 16).map_err(|_| pos_err(line, col, "invalid char escape"))?;
                            s.push(char::from_u32(v).ok_or_else(|| pos_err(line, col, "invalid char escape"))?);
                            i += n;
                        }
                        '0'..='7' => {
                            let oct = input
                                .get(i - 1..i + 2)
                                .ok_or_else(|| pos_err(line, col, "invalid char escape"))?;
                            let v =
                                u32::from_str_radix(oct, 8).map_err(|_| pos_err(line, col, "invalid char escape"))?;
                            s.push(char::from_u32(v).ok_or_else(|| pos_err(line, col, "invalid char escape"))?);
                            i += 2;
                        }
                        _ => return Err(pos_err(line, col, "invalid char escape")),
                    }
                    continue;
                }
                s.push(ch);
                i += ch.len_utf8();
            }
            Tok::Str(s)
        } else if c == b'`' {
            let end = input[i + 1..]
                .find('`')
                .ok_or_else(|| pos_err(line, col, "literal not terminated"))?;
            let s = input[i + 1..i + 1 + end].to_owned();
            line += s.matches('\n').count();
            i += end + 2;
            Tok::Str(s)
        } else if c == b'[' {
            let end = input[i..]
                .find(']')
                .ok_or_else(|| pos_err(line, col, "missing closing ']' in duration"))?;
            let s = input[i + 1..i + end].trim().to_owned();
            i += end + 1;
            Tok::Range(s)
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < b.len() {
                let ch = input[i..].chars().next().expect("in bounds");
                if ch.is_ascii_alphanumeric() || ch == '.' || ch == 'µ' {
                    i += ch.len_utf8();
                } else if (ch == '+' || ch == '-')
                    && matches!(b[i - 1], b'e' | b'E')
                    && !input[start..i].contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
                {
                    i += 1;
                } else {
                    break;
                }
            }
            Tok::Num(input[start..i].to_owned())
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') && b.get(i + 2).is_some_and(u8::is_ascii_alphabetic) {
            i += 2;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-' || b[i] == b'_') {
                i += 1;
            }
            Tok::Flag(input[start..i].to_owned())
        } else if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 {
            while i < b.len() {
                let ch = input[i..].chars().next().expect("in bounds");
                if ch == '_' || ch.is_alphanumeric() {
                    i += ch.len_utf8();
                } else {
                    break;
                }
            }
            Tok::Ident(input[start..i].to_owned())
        } else if let Some(op) = OPS.iter().find(|op| input[i..].starts_with(**op)) {
            i += op.len();
            Tok::Op(op)
        } else {
            let ch = input[i..].chars().next().expect("in bounds");
            return Err(pos_err(line, col, &format!("syntax error: unexpected {ch:?}")));
        };
        out.push(Token { tok, line, col });
    }
    let col = input[line_start..].chars().count() + 1;
    out.push(Token {
        tok: Tok::End,
        line,
        col,
    });
    Ok(out)
}

fn tok_name(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => {
            let l = s.to_ascii_lowercase();
            if KEYWORDS.contains(&l.as_str()) {
                l
            } else {
                "IDENTIFIER".into()
            }
        }
        Tok::Str(_) => "STRING".into(),
        Tok::Num(_) => "NUMBER".into(),
        Tok::Range(_) => "RANGE".into(),
        Tok::Flag(_) => "FUNCTION_FLAG".into(),
        Tok::Op(o) => (*o).into(),
        Tok::End => "$end".into(),
    }
}

const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "or",
    "and",
    "unless",
    "json",
    "regexp",
    "logfmt",
    "unpack",
    "pattern",
    "line_format",
    "label_format",
    "decolorize",
    "drop",
    "keep",
    "unwrap",
];

struct Parser {
    toks: Vec<Token>,
    pos: usize,
}

/// Parses a LogQL query.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    if input.len() >= 131_072 {
        return Err(ParseError(format!("input size too long ({} > 131072)", input.len())));
    }
    let mut p = Parser {
        toks: lex(input)?,
        pos: 0,
    };
    let e = p.expr(0)?;
    if p.peek() != &Tok::End {
        return Err(p.unexpected());
    }
    let expr = match e {
        Node::Log(l) => Expr::Log(l),
        Node::Metric(m) => Expr::Metric(m),
    };
    validate(&expr)?;
    Ok(expr)
}

const EMPTY_MATCHER: &str = "parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

fn validate(e: &Expr) -> Result<(), ParseError> {
    fn check(m: &[Matcher]) -> Result<(), ParseError> {
        if m.iter().all(|m| m.matches("")) {
            return Err(ParseError(EMPTY_MATCHER.into()));
        }
        Ok(())
    }
    fn metric(m: &MetricExpr) -> Result<(), ParseError> {
        match m {
            MetricExpr::Range { log, .. } => check(&log.matchers),
            MetricExpr::Agg { inner, .. } | MetricExpr::LabelReplace { inner, .. } => metric(inner),
            MetricExpr::Binary { lhs, rhs, .. } => {
                metric(lhs)?;
                metric(rhs)
            }
            MetricExpr::Literal(_) | MetricExpr::Vector(_) => Ok(()),
        }
    }
    match e {
        Expr::Log(l) => check(&l.matchers),
        Expr::Metric(m) => metric(m),
    }
}

enum Node {
    Log(LogExpr),
    Metric(MetricExpr),
}

fn binop(t: &Tok) -> Option<(BinOp, u8)> {
    Some(match t {
        Tok::Ident(s) => match s.to_ascii_lowercase().as_str() {
            "or" => (BinOp::Or, 1),
            "and" => (BinOp::And, 2),
            "unless" => (BinOp::Unless, 2),
            _ => return None,
        },
        Tok::Op("==") => (BinOp::Eq, 3),
        Tok::Op("!=") => (BinOp::Ne, 3),
        Tok::Op(">") => (BinOp::Gt, 3),
        Tok::Op(">=") => (BinOp::Ge, 3),
        Tok::Op("<") => (BinOp::Lt, 3),
        Tok::Op("<=") => (BinOp::Le, 3),
        Tok::Op("+") => (BinOp::Add, 4),
        Tok::Op("-") => (BinOp::Sub, 4),
        Tok::Op("*") => (BinOp::Mul, 5),
        Tok::Op("/") => (BinOp::Div, 5),
        Tok::Op("%") => (BinOp::Mod, 5),
        Tok::Op("^") => (BinOp::Pow, 6),
        _ => return None,
    })
}

fn op_text(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Pow => "^",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::And => "and",
        BinOp::Or => "or",
        BinOp::Unless => "unless",
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.pos].tok.clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err_here(&self, msg: &str) -> ParseError {
        let t = &self.toks[self.pos];
        ParseError(format!("parse error at line {}, col {}: {msg}", t.line, t.col))
    }

    fn unexpected(&self) -> ParseError {
        self.err_here(&format!("syntax error: unexpected {}", tok_name(self.peek())))
    }

    fn expecting(&self, what: &str) -> ParseError {
        self.err_here(&format!(
            "syntax error: unexpected {}, expecting {what}",
            tok_name(self.peek())
        ))
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Tok::Op(o) if *o == op) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ParseError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.expecting(op))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.expecting("IDENTIFIER")),
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.expecting("STRING")),
        }
    }

    fn number(&mut self) -> Result<f64, ParseError> {
        let neg = self.eat_op("-");
        if !neg {
            self.eat_op("+");
        }
        match self.peek().clone() {
            Tok::Num(s) => {
                let v: f64 = s
                    .parse()
                    .map_err(|_| ParseError(format!("parse error : unable to parse literal as a float: {s}")))?;
                self.next();
                Ok(if neg { -v } else { v })
            }
            _ => Err(self.expecting("NUMBER")),
        }
    }

    /// A function keyword: an identifier followed by `(` or `by (`/`without (`.
    fn is_function(&self) -> Option<String> {
        let Tok::Ident(s) = self.peek() else { return None };
        let l = s.to_ascii_lowercase();
        let next = self.peek_at(1);
        let call = matches!(next, Tok::Op("("))
            || matches!(next, Tok::Ident(g) if (g.eq_ignore_ascii_case("by") || g.eq_ignore_ascii_case("without")) && matches!(self.peek_at(2), Tok::Op("(")));
        call.then_some(l)
    }

    fn expr(&mut self, min_prec: u8) -> Result<Node, ParseError> {
        let mut lhs = self.unary()?;
        while let Some((op, prec)) = binop(self.peek()) {
            if prec < min_prec {
                break;
            }
            self.next();
            let mut matching = VectorMatching::default();
            let mut return_bool = false;
            if self.is_kw("bool") {
                self.next();
                return_bool = true;
            }
            if self.is_kw("on") || self.is_kw("ignoring") {
                matching.on = Some(self.is_kw("on"));
                self.next();
                matching.labels = self.label_list()?;
                if self.is_kw("group_left") || self.is_kw("group_right") {
                    matching.group_left = Some(self.is_kw("group_left"));
                    self.next();
                    if matches!(self.peek(), Tok::Op("(")) {
                        matching.include = self.label_list()?;
                    }
                }
            }
            // `^` is right-associative; the others left.
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.expr(next_min)?;
            let lhs_m = match lhs {
                Node::Metric(m) => m,
                Node::Log(_) => {
                    return Err(ParseError(format!(
                        "parse error : unexpected type for left leg of binary operation ({}): *syntax.MatchersExpr",
                        op_text(op)
                    )));
                }
            };
            let rhs_m = match rhs {
                Node::Metric(m) => m,
                Node::Log(_) => {
                    return Err(ParseError(format!(
                        "parse error : unexpected type for right leg of binary operation ({}): *syntax.MatchersExpr",
                        op_text(op)
                    )));
                }
            };
            if op.is_set() {
                for (side, m) in [("left", &lhs_m), ("right", &rhs_m)] {
                    if let MetricExpr::Literal(v) = m {
                        return Err(ParseError(format!(
                            "parse error : unexpected literal for {side} leg of logical/set binary operation ({}): {v:.6}",
                            op_text(op)
                        )));
                    }
                }
            }
            if op.is_comparison()
                && !return_bool
                && matches!(lhs_m, MetricExpr::Literal(_))
                && matches!(rhs_m, MetricExpr::Literal(_))
            {
                return Err(ParseError(
                    "parse error : comparisons between scalars must use BOOL modifier".into(),
                ));
            }
            lhs = Node::Metric(MetricExpr::Binary {
                op,
                return_bool,
                matching,
                lhs: Box::new(lhs_m),
                rhs: Box::new(rhs_m),
            });
        }
        Ok(lhs)
    }

    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect_op("(")?;
        let mut out = Vec::new();
        if self.eat_op(")") {
            return Ok(out);
        }
        loop {
            out.push(self.ident()?);
            if self.eat_op(")") {
                return Ok(out);
            }
            if !self.eat_op(",") {
                return Err(self.expecting(") or ,"));
            }
        }
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        if self.is_kw("by") || self.is_kw("without") {
            let without = self.is_kw("without");
            self.next();
            return Ok(Some(Grouping {
                without,
                labels: self.label_list()?,
            }));
        }
        Ok(None)
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        match self.peek().clone() {
            Tok::Op("-") | Tok::Op("+") if matches!(self.peek_at(1), Tok::Num(_)) => {
                Ok(Node::Metric(MetricExpr::Literal(self.number()?)))
            }
            Tok::Num(_) => Ok(Node::Metric(MetricExpr::Literal(self.number()?))),
            Tok::Op("(") => {
                self.next();
                let inner = self.expr(0)?;
                self.expect_op(")")?;
                Ok(inner)
            }
            Tok::Op("{") => {
                let log = self.log_expr()?;
                Ok(Node::Log(log))
            }
            Tok::Ident(_) => {
                let Some(f) = self.is_function() else {
                    return Err(self.unexpected());
                };
                if f == "vector" {
                    self.next();
                    self.expect_op("(")?;
                    let v = self.number()?;
                    self.expect_op(")")?;
                    return Ok(Node::Metric(MetricExpr::Vector(v)));
                }
                if f == "label_replace" {
                    return self.label_replace();
                }
                if let Some(func) = RangeFn::from_name(&f) {
                    return self.range_agg(func, &f);
                }
                if let Some(op) = AggOp::from_name(&f) {
                    return self.vector_agg(op, &f);
                }
                Err(self.unexpected())
            }
            _ => Err(self.unexpected()),
        }
    }

    fn label_replace(&mut self) -> Result<Node, ParseError> {
        self.next();
        self.expect_op("(")?;
        let inner = match self.expr(0)? {
            Node::Metric(m) => m,
            Node::Log(_) => return Err(self.unexpected()),
        };
        self.expect_op(",")?;
        let dst = self.string()?;
        self.expect_op(",")?;
        let replacement = self.string()?;
        self.expect_op(",")?;
        let src = self.string()?;
        self.expect_op(",")?;
        let re = self.string()?;
        self.expect_op(")")?;
        let regex = Regex::new(&format!("^(?s:{re})$")).map_err(|e| {
            ParseError(format!(
                "parse error : invalid regex in label_replace: error parsing regexp: {e}"
            ))
        })?;
        Ok(Node::Metric(MetricExpr::LabelReplace {
            inner: Box::new(inner),
            dst,
            replacement,
            src,
            regex,
        }))
    }

    fn vector_agg(&mut self, op: AggOp, name: &str) -> Result<Node, ParseError> {
        self.next();
        let mut grouping = self.grouping()?;
        self.expect_op("(")?;
        let mut param = None;
        if matches!(self.peek(), Tok::Num(_)) && matches!(self.peek_at(1), Tok::Op(",")) {
            let text = match self.peek() {
                Tok::Num(s) => s.clone(),
                _ => unreachable!("checked"),
            };
            let v = self.number()?;
            self.next();
            match op {
                AggOp::Topk | AggOp::Bottomk => {
                    if v.fract() != 0.0 {
                        return Err(ParseError(format!("parse error : invalid parameter {name}({text},")));
                    }
                    if v <= 0.0 {
                        return Err(ParseError(format!(
                            "parse error : invalid parameter (must be greater than 0) {name}({text}"
                        )));
                    }
                    param = Some(v);
                }
                _ => {
                    return Err(ParseError(format!(
                        "parse error : unsupported parameter for operation {name}({text},"
                    )));
                }
            }
        }
        if matches!(op, AggOp::Topk | AggOp::Bottomk) && param.is_none() {
            return Err(ParseError(format!(
                "parse error : parameter required for operation {name}"
            )));
        }
        let inner = match self.expr(0)? {
            Node::Metric(m) => m,
            Node::Log(_) => return Err(self.unexpected()),
        };
        self.expect_op(")")?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        if matches!(op, AggOp::Sort | AggOp::SortDesc) && grouping.is_some() {
            return Err(ParseError(
                "parse error : sort and sort_desc doesn't allow grouping by ".into(),
            ));
        }
        Ok(Node::Metric(MetricExpr::Agg {
            op,
            grouping,
            param,
            inner: Box::new(inner),
        }))
    }

    fn range_agg(&mut self, func: RangeFn, name: &str) -> Result<Node, ParseError> {
        self.next();
        self.expect_op("(")?;
        let mut param = None;
        if !matches!(self.peek(), Tok::Op("{") | Tok::Op("(")) {
            if !matches!(self.peek(), Tok::Num(_)) {
                return Err(self.expecting("NUMBER or { or ("));
            }
            let text = match self.peek() {
                Tok::Num(s) => s.clone(),
                _ => unreachable!("checked"),
            };
            let v = self.number()?;
            self.expect_op(",")?;
            if func != RangeFn::QuantileOverTime {
                return Err(ParseError(format!(
                    "parse error : parameter {text} not supported for operation {name}"
                )));
            }
            param = Some(v);
        }
        if func == RangeFn::QuantileOverTime && param.is_none() {
            return Err(ParseError(format!(
                "parse error : parameter required for operation {name}"
            )));
        }
        // The log range: `{..} [pipeline] [range] [pipeline] [unwrap]`, or
        // parenthesised `( {..} pipeline )[range]`.
        let paren = self.eat_op("(");
        let mut log = self.selector_only()?;
        let mut range: Option<i64> = None;
        if let Tok::Range(r) = self.peek().clone() {
            range = Some(self.range_value(&r)?);
            self.next();
        }
        let mut unwrap = self.pipeline(&mut log.stages, true)?;
        if paren {
            self.expect_op(")")?;
        }
        if range.is_none() {
            match self.peek().clone() {
                Tok::Range(r) => {
                    range = Some(self.range_value(&r)?);
                    self.next();
                }
                _ => return Err(self.unexpected()),
            }
            if unwrap.is_none() {
                unwrap = self.pipeline(&mut log.stages, true)?;
            }
        }
        let mut offset = 0;
        if self.is_kw("offset") {
            self.next();
            offset = match self.peek().clone() {
                Tok::Num(s) => {
                    self.next();
                    (parse_go_duration(&s).map_err(|e| self.err_here(&e))? * 1e9) as i64
                }
                _ => return Err(self.expecting("DURATION")),
            };
        }
        self.expect_op(")")?;
        let grouping = self.grouping()?;
        if func.needs_unwrap() && unwrap.is_none() {
            return Err(ParseError(format!(
                "parse error : invalid aggregation {name} without unwrap"
            )));
        }
        if !func.needs_unwrap() && unwrap.is_some() && func != RangeFn::Rate && func != RangeFn::AbsentOverTime {
            return Err(ParseError(format!(
                "parse error : invalid aggregation {name} with unwrap"
            )));
        }
        if grouping.is_some() {
            if func == RangeFn::AbsentOverTime {
                return Err(ParseError(
                    "parse error : grouping not allowed for absent_over_time aggregation".into(),
                ));
            }
            if unwrap.is_none() {
                return Err(ParseError(format!(
                    "parse error : grouping not allowed for {name} aggregation"
                )));
            }
        }
        Ok(Node::Metric(MetricExpr::Range {
            func,
            log,
            range: range.expect("set above"),
            offset,
            unwrap,
            grouping,
            param,
        }))
    }

    fn range_value(&self, r: &str) -> Result<i64, ParseError> {
        parse_prom_duration(r).map_err(|e| self.err_here(&e))
    }

    fn selector_only(&mut self) -> Result<LogExpr, ParseError> {
        if !matches!(self.peek(), Tok::Op("{")) {
            return Err(self.unexpected());
        }
        self.next();
        let mut matchers = Vec::new();
        if !self.eat_op("}") {
            loop {
                let name = self.ident()?;
                let op = match self.next() {
                    Tok::Op("=") => MatchOp::Equal,
                    Tok::Op("!=") => MatchOp::NotEqual,
                    Tok::Op("=~") => MatchOp::Regex,
                    Tok::Op("!~") => MatchOp::NotRegex,
                    _ => {
                        self.pos -= 1;
                        return Err(self.expecting("= or != or =~ or !~"));
                    }
                };
                let value = self.string()?;
                matchers.push(Matcher::new(op, name, value).map_err(|e| ParseError(format!("parse error : {e}")))?);
                if self.eat_op("}") {
                    break;
                }
                if !self.eat_op(",") {
                    return Err(self.expecting("} or ,"));
                }
            }
        }
        Ok(LogExpr {
            matchers,
            stages: Vec::new(),
        })
    }

    fn log_expr(&mut self) -> Result<LogExpr, ParseError> {
        let mut log = self.selector_only()?;
        if self.pipeline(&mut log.stages, false)?.is_some() {
            return Err(self.unexpected());
        }
        Ok(log)
    }

    /// Parses stages into `stages`; returns the `unwrap` (only allowed when
    /// `allow_unwrap`).
    fn pipeline(&mut self, stages: &mut Vec<Stage>, allow_unwrap: bool) -> Result<Option<Unwrap>, ParseError> {
        loop {
            let line_op = match self.peek() {
                Tok::Op("|=") => Some(LineOp::Contains),
                Tok::Op("!=") => Some(LineOp::NotContains),
                Tok::Op("|~") => Some(LineOp::Match),
                Tok::Op("!~") => Some(LineOp::NotMatch),
                Tok::Op("|>") => Some(LineOp::Pattern),
                Tok::Op("!>") => Some(LineOp::NotPattern),
                _ => None,
            };
            if let Some(op) = line_op {
                self.next();
                let mut values = Vec::new();
                loop {
                    let s = match self.peek() {
                        Tok::Str(_) => self.string()?,
                        _ => return Err(self.expecting("STRING or ip")),
                    };
                    values.push(match op {
                        LineOp::Contains | LineOp::NotContains => LineValue::Text(s),
                        LineOp::Match | LineOp::NotMatch => LineValue::Regex(
                            Regex::new(&super::translate_go_regex(&s))
                                .map_err(|e| ParseError(format!("parse error : error parsing regexp: {e}")))?,
                        ),
                        LineOp::Pattern | LineOp::NotPattern => LineValue::Pattern(
                            Pattern::parse(&s, false).map_err(|e| ParseError(format!("parse error : {e}")))?,
                        ),
                    });
                    if self.is_kw("or") && matches!(self.peek_at(1), Tok::Str(_)) {
                        self.next();
                        continue;
                    }
                    break;
                }
                stages.push(Stage::Line { op, values });
                continue;
            }
            if !matches!(self.peek(), Tok::Op("|")) {
                return Ok(None);
            }
            self.next();
            let kw = match self.peek() {
                Tok::Ident(s) => s.to_ascii_lowercase(),
                Tok::Op("(") => String::new(),
                _ => return Err(self.unexpected()),
            };
            match kw.as_str() {
                "json" => {
                    self.next();
                    let params = self.extractions()?;
                    let mut out = Vec::new();
                    for (label, path) in params {
                        let path = parse_json_path(&path).map_err(|e| ParseError(format!("parse error : {e}")))?;
                        out.push((label, path));
                    }
                    stages.push(Stage::Json(out));
                }
                "logfmt" => {
                    self.next();
                    let (mut strict, mut keep_empty) = (false, false);
                    while let Tok::Flag(f) = self.peek().clone() {
                        match f.as_str() {
                            "--strict" => strict = true,
                            "--keep-empty" => keep_empty = true,
                            _ => return Err(self.unexpected()),
                        }
                        self.next();
                    }
                    let params = self.extractions()?;
                    stages.push(Stage::Logfmt {
                        strict,
                        keep_empty,
                        params,
                    });
                }
                "regexp" => {
                    self.next();
                    let s = self.string()?;
                    let re = Regex::new(&super::translate_go_regex(&s))
                        .map_err(|e| ParseError(format!("parse error : invalid regexp parser: {e}")))?;
                    if !re.capture_names().flatten().any(|_| true) {
                        return Err(ParseError(
                            "parse error : invalid regexp parser: at least one named capture must be supplied".into(),
                        ));
                    }
                    stages.push(Stage::Regexp(re));
                }
                "pattern" => {
                    self.next();
                    let s = self.string()?;
                    let p = Pattern::parse(&s, true)
                        .map_err(|e| ParseError(format!("parse error : invalid pattern parser: {e}")))?;
                    stages.push(Stage::Pattern(p));
                }
                "unpack" => {
                    self.next();
                    stages.push(Stage::Unpack);
                }
                "decolorize" => {
                    self.next();
                    stages.push(Stage::Decolorize);
                }
                "line_format" => {
                    self.next();
                    let s = self.string()?;
                    let t = compile_template("line", &s)
                        .map_err(|e| ParseError(format!("parse error : stage '| line_format {s:?}' : {e}")))?;
                    stages.push(Stage::LineFormat(t));
                }
                "label_format" => {
                    self.next();
                    let mut fmts = Vec::new();
                    let mut seen = std::collections::HashSet::new();
                    loop {
                        let dst = self.ident()?;
                        self.expect_op("=")?;
                        if dst == "__error__" {
                            return Err(ParseError("parse error : __error__ cannot be formatted".into()));
                        }
                        if !seen.insert(dst.clone()) {
                            return Err(ParseError(format!(
                                "parse error : multiple label name '{dst}' not allowed in a single format operation"
                            )));
                        }
                        match self.peek().clone() {
                            Tok::Str(s) => {
                                self.next();
                                let tmpl = compile_template("label", &s).map_err(|e| {
                                    ParseError(format!("parse error : stage '| label_format {dst}={s:?}' : {e}"))
                                })?;
                                fmts.push(LabelFmt::Template { dst, tmpl });
                            }
                            Tok::Ident(src) => {
                                self.next();
                                fmts.push(LabelFmt::Rename { dst, src });
                            }
                            _ => return Err(self.expecting("STRING or IDENTIFIER")),
                        }
                        if !self.eat_op(",") {
                            break;
                        }
                    }
                    stages.push(Stage::LabelFormat(fmts));
                }
                "drop" | "keep" => {
                    self.next();
                    let mut list = Vec::new();
                    loop {
                        let name = self.ident()?;
                        let matcher = match self.peek() {
                            Tok::Op(op @ ("=" | "!=" | "=~" | "!~")) => {
                                let op = match *op {
                                    "=" => MatchOp::Equal,
                                    "!=" => MatchOp::NotEqual,
                                    "=~" => MatchOp::Regex,
                                    _ => MatchOp::NotRegex,
                                };
                                self.next();
                                let v = self.string()?;
                                Some(
                                    Matcher::new(op, name.clone(), v)
                                        .map_err(|e| ParseError(format!("parse error : {e}")))?,
                                )
                            }
                            _ => None,
                        };
                        list.push(NamedMatcher { name, matcher });
                        if !self.eat_op(",") {
                            break;
                        }
                    }
                    stages.push(if kw == "drop" {
                        Stage::Drop(list)
                    } else {
                        Stage::Keep(list)
                    });
                }
                "unwrap" => {
                    if !allow_unwrap {
                        return Err(self.unexpected());
                    }
                    self.next();
                    let (name, conv) = match self.peek().clone() {
                        Tok::Ident(f)
                            if matches!(self.peek_at(1), Tok::Op("("))
                                && matches!(
                                    f.to_ascii_lowercase().as_str(),
                                    "bytes" | "duration" | "duration_seconds"
                                ) =>
                        {
                            self.next();
                            self.next();
                            let n = self.ident()?;
                            self.expect_op(")")?;
                            let conv = if f.eq_ignore_ascii_case("bytes") {
                                Conversion::Bytes
                            } else {
                                Conversion::Duration
                            };
                            (n, conv)
                        }
                        Tok::Ident(_) => (self.ident()?, Conversion::Number),
                        _ => return Err(self.expecting("IDENTIFIER")),
                    };
                    let mut post_filters = Vec::new();
                    while matches!(self.peek(), Tok::Op("|")) && !matches!(self.peek_at(1), Tok::Op(_)) {
                        self.next();
                        post_filters.push(self.label_filter()?);
                    }
                    return Ok(Some(Unwrap {
                        name,
                        conv,
                        post_filters,
                    }));
                }
                _ => {
                    stages.push(Stage::Filter(self.label_filter()?));
                }
            }
        }
    }

    fn extractions(&mut self) -> Result<Vec<(String, String)>, ParseError> {
        let mut out = Vec::new();
        while let Tok::Ident(name) = self.peek().clone() {
            if KEYWORDS.contains(&name.to_ascii_lowercase().as_str()) {
                break;
            }
            self.next();
            if self.eat_op("=") {
                out.push((name, self.string()?));
            } else {
                out.push((name.clone(), name));
            }
            if !self.eat_op(",") {
                break;
            }
        }
        Ok(out)
    }

    fn label_filter(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.label_filter_and()?;
        while self.is_kw("or") {
            self.next();
            let rhs = self.label_filter_and()?;
            lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_and(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.label_filter_atom()?;
        loop {
            if self.is_kw("and") || matches!(self.peek(), Tok::Op(",")) {
                self.next();
            } else if !(matches!(self.peek(), Tok::Op("("))
                || (matches!(self.peek(), Tok::Ident(s) if !KEYWORDS.contains(&s.to_ascii_lowercase().as_str()))))
            {
                break;
            }
            let rhs = self.label_filter_atom()?;
            lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_atom(&mut self) -> Result<LabelFilter, ParseError> {
        if self.eat_op("(") {
            let f = self.label_filter()?;
            self.expect_op(")")?;
            return Ok(f);
        }
        let name = match self.peek().clone() {
            Tok::Ident(s) if !KEYWORDS.contains(&s.to_ascii_lowercase().as_str()) || s == "__error__" => {
                self.next();
                s
            }
            _ => return Err(self.unexpected()),
        };
        let op = match self.peek() {
            Tok::Op(o @ ("=" | "!=" | "=~" | "!~" | "==" | ">" | ">=" | "<" | "<=")) => *o,
            _ => return Err(self.unexpected()),
        };
        self.next();
        match self.peek().clone() {
            Tok::Str(s) => {
                self.next();
                let mop = match op {
                    "=" => MatchOp::Equal,
                    "!=" => MatchOp::NotEqual,
                    "=~" => MatchOp::Regex,
                    "!~" => MatchOp::NotRegex,
                    _ => {
                        self.pos -= 1;
                        return Err(self.unexpected());
                    }
                };
                Ok(LabelFilter::Str(
                    Matcher::new(mop, name, s).map_err(|e| ParseError(format!("parse error : {e}")))?,
                ))
            }
            Tok::Num(_) | Tok::Op("-") if op != "=~" && op != "!~" => {
                let neg = self.eat_op("-");
                let n = match self.peek().clone() {
                    Tok::Num(n) => n,
                    _ => return Err(self.expecting("NUMBER")),
                };
                let _ = n.len();
                self.next();
                let cmp = match op {
                    "=" | "==" => CmpOp::Eq,
                    "!=" => CmpOp::Ne,
                    ">" => CmpOp::Gt,
                    ">=" => CmpOp::Ge,
                    "<" => CmpOp::Lt,
                    _ => CmpOp::Le,
                };
                let sign = if neg { -1.0 } else { 1.0 };
                let (value, conv) = if let Ok(v) = n.parse::<f64>() {
                    (v, Conversion::Number)
                } else if let Ok(ns) = parse_prom_duration(&n) {
                    (ns as f64 / 1e9, Conversion::Duration)
                } else if let Ok(secs) = parse_go_duration(&n) {
                    (secs, Conversion::Duration)
                } else if n.ends_with(['B', 'b']) || n.ends_with("iB") {
                    (
                        parse_bytes(&n).map_err(|e| ParseError(format!("parse error : {e}")))?,
                        Conversion::Bytes,
                    )
                } else {
                    return Err(ParseError(format!(
                        "parse error : unable to parse literal as a float: {n}"
                    )));
                };
                Ok(LabelFilter::Num {
                    name,
                    op: cmp,
                    value: sign * value,
                    conv,
                })
            }
            _ => Err(self.unexpected()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &str) -> Expr {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn err(q: &str) -> String {
        match parse(q) {
            Ok(e) => panic!("{q} parsed: {e:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn queries_grafana_sends_parse() {
        ok(r#"{app="x"}"#);
        ok(
            r#"{app="x", env=~"prod|dev"} |= "error" != `timeout` |~ "(?i)fail" | json | status >= 500 and duration > 1s | line_format "{{.msg}}""#,
        );
        ok(r#"sum by (level, detected_level) (count_over_time({app="x"} | drop __error__ [1m]))"#);
        ok(r#"sum(rate({app="x"} |= "err" [5m])) / sum(rate({app="x"}[5m]))"#);
        ok(r#"quantile_over_time(0.99, {app="x"} | logfmt | unwrap duration(took) | __error__="" [5m]) by (route)"#);
        ok(r#"topk(3, sum by (path) (count_over_time({app="x"} | pattern "<_> <path> <_>" [1h])))"#);
        ok(r#"count_over_time({app="x"}[5m] offset 1h) > bool 10"#);
        ok(r#"vector(1)+vector(1)"#);
        ok(r#"{app="x"} | logfmt --strict level, msg="message" | keep level | drop msg="x""#);
        ok(r#"{app="x"} | label_format lvl=level, m="{{.msg | ToUpper}}" | size > 10KB"#);
        ok(r#"sum without (pod) (bytes_rate({app="x"}[1m]))"#);
        ok(r#"label_replace(rate({app="x"}[1m]), "dst", "$1", "app", "(.*)")"#);
        ok(r#"{app="x"} |= "a" or "b" | regexp "(?P<n>\\d+)""#);
    }

    #[test]
    fn errors_as_loki_words_them() {
        assert_eq!(err(r#"{app=~".*"}"#), EMPTY_MATCHER);
        assert_eq!(
            err(r#"{foo="bar""#),
            "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,"
        );
        assert_eq!(
            err(r#"{foo="bar}"#),
            "parse error at line 1, col 6: literal not terminated"
        );
        assert_eq!(
            err(r#"{foo="bar"} "foo""#),
            "parse error at line 1, col 13: syntax error: unexpected STRING"
        );
        assert_eq!(
            err(r#"sum_over_time({app="a"}[5m])"#),
            "parse error : invalid aggregation sum_over_time without unwrap"
        );
        assert_eq!(
            err(r#"rate({app="a"}[1m]) by (x)"#),
            "parse error : grouping not allowed for rate aggregation"
        );
        assert_eq!(
            err(r#"topk(count_over_time({foo="bar"}[5h]))"#),
            "parse error : parameter required for operation topk"
        );
        assert_eq!(
            err(r#"quantile_over_time({a="b"} | unwrap x [5m])"#),
            "parse error : parameter required for operation quantile_over_time"
        );
        assert_eq!(
            err(r#"unk({foo="bar"}[5m])"#),
            "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER"
        );
        assert!(err(r#"rate({foo="bar"}[5minutes])"#).contains("unknown unit \"minutes\" in duration \"5minutes\""));
        assert!(err(r#"{a="b"} |~ "(""#).contains("error parsing regexp"));
        assert_eq!(
            err(r#"{a="b"} | regexp "nocapture""#),
            "parse error : invalid regexp parser: at least one named capture must be supplied"
        );
        assert_eq!(
            err(r#"count_over_time({a="b"}[1m]) or 0"#),
            "parse error : unexpected literal for right leg of logical/set binary operation (or): 0.000000"
        );
    }
}
