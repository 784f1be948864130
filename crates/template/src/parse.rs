//! Lexing and parsing of Go's text/template syntax into a tree: text, actions with
//! pipelines, `if`/`with`/`range` with `else`, `define`/`template`/`block`,
//! `break`/`continue`, variables with their scopes, comments and `{{-`/`-}}`
//! trimming. Functions must be known when a template is parsed, as in Go.

use std::collections::HashMap;
use std::fmt;

/// A parse error, rendered as Go renders them: `template: NAME:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The template's name.
    pub name: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template: {}:{}: {}", self.name, self.line, self.message)
    }
}

/// A number literal: Go gives an untyped constant the type int when it has no
/// decimal point or exponent, float64 otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// `int`.
    Int(i64),
    /// `uint64` (an integer literal too large for int).
    Uint(u64),
    /// `float64`.
    Float(f64),
}

/// An operand of a command.
#[derive(Debug, Clone)]
pub enum Arg {
    /// `.`
    Dot,
    /// `nil`
    Nil,
    /// `true`, `false`
    Bool(bool),
    /// A number literal, with its source text.
    Number(Number, String),
    /// A string literal, with its source text.
    String(String, String),
    /// `.A.B`
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the root data).
    Variable(String, Vec<String>),
    /// A function name.
    Function(String),
    /// `(pipeline)`, optionally followed by fields: `(pipeline).A.B`.
    Pipe(Box<Pipe>, Vec<String>),
}

/// An operand with its byte offset in the source.
#[derive(Debug, Clone)]
pub struct Operand {
    /// Byte offset.
    pub pos: usize,
    /// The operand.
    pub arg: Arg,
}

/// A command: operands, the first of which may be a function or method.
#[derive(Debug, Clone)]
pub struct Command {
    /// Operands.
    pub args: Vec<Operand>,
}

/// A pipeline: optional variable declarations, then commands joined by `|`.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// Byte offset.
    pub pos: usize,
    /// Declared or assigned variables (`$x :=`, `$i, $v :=`).
    pub decl: Vec<String>,
    /// `=` rather than `:=`.
    pub assign: bool,
    /// The commands.
    pub cmds: Vec<Command>,
}

/// A node of the tree.
#[derive(Debug, Clone)]
pub enum Node {
    /// Literal text.
    Text(String),
    /// `{{pipeline}}`
    Action(Pipe),
    /// `{{if}}`, `{{with}}`, `{{range}}` with their bodies.
    Control {
        /// Which.
        kind: ControlKind,
        /// The condition or the ranged value.
        pipe: Pipe,
        /// The body.
        list: Vec<Node>,
        /// The `else` body.
        else_list: Option<Vec<Node>>,
    },
    /// `{{template "name" pipeline}}`
    Template {
        /// Byte offset.
        pos: usize,
        /// The template called.
        name: String,
        /// Its data.
        pipe: Option<Pipe>,
    },
    /// `{{break}}`
    Break,
    /// `{{continue}}`
    Continue,
}

/// The kind of a control structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// `if`
    If,
    /// `with`
    With,
    /// `range`
    Range,
}

/// A parsed source: its main tree and the templates it defines.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The main body (text outside `define`s).
    pub root: Vec<Node>,
    /// `{{define "name"}}` and `{{block "name"}}` bodies.
    pub defines: HashMap<String, Vec<Node>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(String),
    Left,
    Right,
    Space,
    Ident(String),
    Field(String),
    Variable(String),
    Dot,
    Str(String, String),
    Char(i64, String),
    Num(Number, String),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Keyword(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    line: usize,
}

const KEYWORDS: [&str; 10] = [
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    tokens: Vec<Token>,
    paren_depth: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Lexer<'a> {
    fn err(&self, msg: impl Into<String>) -> (usize, String) {
        (self.line, msg.into())
    }

    fn push(&mut self, tok: Tok, pos: usize) {
        let line = 1 + self.src[..pos].matches('\n').count();
        self.tokens.push(Token { tok, pos, line });
    }

    fn run(mut self) -> Result<Vec<Token>, (usize, String)> {
        let b = self.src.as_bytes();
        loop {
            // Text up to the next action.
            let rest = &self.src[self.pos..];
            let Some(off) = rest.find("{{") else {
                if !rest.is_empty() {
                    self.push(Tok::Text(rest.to_owned()), self.pos);
                }
                self.pos = self.src.len();
                self.push(Tok::Eof, self.pos);
                return Ok(self.tokens);
            };
            let start = self.pos + off;
            let trim_left = b.len() > start + 3 && b[start + 2] == b'-' && is_space(b[start + 3]);
            let mut text = &self.src[self.pos..start];
            if trim_left {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                self.push(Tok::Text(text.to_owned()), self.pos);
            }
            self.line = 1 + self.src[..start].matches('\n').count();
            self.pos = start + 2;
            if trim_left {
                self.pos += 2;
            }
            // A comment: `{{/* ... */}}`.
            if self.src[self.pos..].starts_with("/*") {
                let Some(end) = self.src[self.pos..].find("*/") else {
                    return Err(self.err("unclosed comment"));
                };
                self.pos += end + 2;
                let (right, trim_right) = self.right_delim();
                if !right {
                    return Err(self.err("comment ends before closing delimiter"));
                }
                self.finish_action(trim_right);
                continue;
            }
            self.push(Tok::Left, start);
            self.inside()?;
        }
    }

    /// At `}}` or ` -}}`: (found, trimming).
    fn right_delim(&self) -> (bool, bool) {
        let r = &self.src[self.pos..];
        let b = r.as_bytes();
        if b.len() >= 3 && is_space(b[0]) && b[1] == b'-' && r[2..].starts_with("}}") {
            return (true, true);
        }
        (r.starts_with("}}"), false)
    }

    fn finish_action(&mut self, trim_right: bool) {
        self.pos += if trim_right { 4 } else { 2 };
        if trim_right {
            let rest = &self.src[self.pos..];
            let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n']);
            self.pos += rest.len() - trimmed.len();
        }
    }

    fn inside(&mut self) -> Result<(), (usize, String)> {
        let b = self.src.as_bytes();
        loop {
            let (right, trim_right) = self.right_delim();
            if right && self.paren_depth == 0 {
                self.push(Tok::Right, self.pos);
                self.finish_action(trim_right);
                return Ok(());
            }
            if self.pos >= b.len() {
                return Err(self.err("unclosed action"));
            }
            let c = b[self.pos];
            let start = self.pos;
            match c {
                b' ' | b'\t' | b'\r' => {
                    while self.pos < b.len() && matches!(b[self.pos], b' ' | b'\t' | b'\r') {
                        if self.right_delim().0 {
                            break;
                        }
                        self.pos += 1;
                    }
                    self.push(Tok::Space, start);
                }
                b'\n' => return Err(self.err("unclosed action")),
                b'}' => return Err(self.err("unexpected right delim in action")),
                b'=' => {
                    self.pos += 1;
                    self.push(Tok::Assign, start);
                }
                b':' => {
                    if b.get(self.pos + 1) != Some(&b'=') {
                        return Err(self.err("expected :="));
                    }
                    self.pos += 2;
                    self.push(Tok::Declare, start);
                }
                b'|' => {
                    self.pos += 1;
                    self.push(Tok::Pipe, start);
                }
                b',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, start);
                }
                b'(' => {
                    self.pos += 1;
                    self.paren_depth += 1;
                    self.push(Tok::LParen, start);
                }
                b')' => {
                    self.pos += 1;
                    if self.paren_depth == 0 {
                        return Err(self.err("unexpected right paren U+0029 ')'"));
                    }
                    self.paren_depth -= 1;
                    self.push(Tok::RParen, start);
                }
                b'"' => {
                    let end = self.scan_quoted(b'"')?;
                    let text = &self.src[start..end];
                    let value = unquote(text).map_err(|e| self.err(e))?;
                    self.pos = end;
                    self.push(Tok::Str(value, text.to_owned()), start);
                }
                b'`' => {
                    let Some(close) = self.src[start + 1..].find('`') else {
                        return Err(self.err("unterminated raw quoted string"));
                    };
                    let end = start + 1 + close + 1;
                    let text = &self.src[start..end];
                    self.pos = end;
                    self.push(Tok::Str(text[1..text.len() - 1].to_owned(), text.to_owned()), start);
                }
                b'\'' => {
                    let end = self.scan_quoted(b'\'')?;
                    let text = &self.src[start..end];
                    let inner = unquote(&format!("\"{}\"", &text[1..text.len() - 1])).map_err(|e| self.err(e))?;
                    let mut chars = inner.chars();
                    let (Some(ch), None) = (chars.next(), chars.next()) else {
                        return Err(self.err(format!("malformed character constant: {text}")));
                    };
                    self.pos = end;
                    self.push(Tok::Char(ch as i64, text.to_owned()), start);
                }
                b'$' => {
                    self.pos += 1;
                    while self.pos < b.len() && is_alnum(b[self.pos]) {
                        self.pos += 1;
                    }
                    let name = self.src[start..self.pos].to_owned();
                    self.push(Tok::Variable(name), start);
                    self.fields()?;
                }
                b'.' => {
                    if b.get(self.pos + 1).is_some_and(u8::is_ascii_digit) {
                        self.number()?;
                    } else if b.get(self.pos + 1).is_some_and(|c| is_alnum(*c)) {
                        self.fields()?;
                    } else {
                        self.pos += 1;
                        self.push(Tok::Dot, start);
                    }
                }
                b'+' | b'-' | b'0'..=b'9' => self.number()?,
                c if is_alnum(c) || (c >= 0x80 && self.src[self.pos..].starts_with(char::is_alphanumeric)) => {
                    while let Some(ch) = self.src[self.pos..].chars().next()
                        && (ch == '_' || ch.is_alphanumeric())
                    {
                        self.pos += ch.len_utf8();
                    }
                    let word = &self.src[start..self.pos];
                    let tok = match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => match KEYWORDS.iter().find(|k| **k == w) {
                            Some(k) => Tok::Keyword(k),
                            None => Tok::Ident(w.to_owned()),
                        },
                    };
                    self.push(tok, start);
                    if matches!(self.tokens.last().map(|t| &t.tok), Some(Tok::Ident(_))) {
                        self.fields()?;
                    }
                }
                _ => {
                    let ch = self.src[self.pos..].chars().next().expect("in bounds");
                    return Err(self.err(format!(
                        "unrecognized character in action: U+{:04X}{}",
                        ch as u32,
                        if ch.is_control() || ch.is_whitespace() {
                            String::new()
                        } else {
                            format!(" '{ch}'")
                        }
                    )));
                }
            }
        }
    }

    /// `.A.B` chains right after an operand.
    fn fields(&mut self) -> Result<(), (usize, String)> {
        let b = self.src.as_bytes();
        while self.pos < b.len() && b[self.pos] == b'.' && b.get(self.pos + 1).is_some_and(|c| is_alnum(*c)) {
            let start = self.pos;
            self.pos += 1;
            while self.pos < b.len() && is_alnum(b[self.pos]) {
                self.pos += 1;
            }
            self.push(Tok::Field(self.src[start + 1..self.pos].to_owned()), start);
        }
        Ok(())
    }

    fn scan_quoted(&self, q: u8) -> Result<usize, (usize, String)> {
        let b = self.src.as_bytes();
        let mut i = self.pos + 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'\n' => break,
                c if c == q => return Ok(i + 1),
                _ => i += 1,
            }
        }
        Err(self.err(if q == b'"' {
            "unterminated quoted string"
        } else {
            "unterminated character constant"
        }))
    }

    fn number(&mut self) -> Result<(), (usize, String)> {
        let b = self.src.as_bytes();
        let start = self.pos;
        if matches!(b[self.pos], b'+' | b'-') {
            self.pos += 1;
        }
        while self.pos < b.len() && (is_alnum(b[self.pos]) || matches!(b[self.pos], b'.' | b'+' | b'-')) {
            // A sign only directly after an exponent marker.
            if matches!(b[self.pos], b'+' | b'-') && !matches!(b[self.pos - 1], b'e' | b'E' | b'p' | b'P') {
                break;
            }
            self.pos += 1;
        }
        let text = &self.src[start..self.pos];
        let num = parse_number(text).ok_or_else(|| self.err(format!("bad number syntax: {text:?}")))?;
        self.push(Tok::Num(num, text.to_owned()), start);
        Ok(())
    }
}

fn is_alnum(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Go's number literal rules for templates: integers (decimal, `0x`, `0o`, `0b`,
/// `_` separators) are int, or uint64 when too large for int; anything with `.`,
/// `e` or `p` is float64.
fn parse_number(text: &str) -> Option<Number> {
    let clean = text.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(r) => (true, r.to_owned()),
        None => (false, clean.trim_start_matches('+').to_owned()),
    };
    let lower = body.to_ascii_lowercase();
    let radix_int = |digits: &str, radix: u32| u64::from_str_radix(digits, radix).ok();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        if h.contains('p') || h.contains('.') {
            None
        } else {
            radix_int(h, 16)
        }
    } else if let Some(o) = lower.strip_prefix("0o") {
        radix_int(o, 8)
    } else if let Some(bn) = lower.strip_prefix("0b") {
        radix_int(bn, 2)
    } else if lower.contains(['.', 'e']) {
        None
    } else if lower.len() > 1 && lower.starts_with('0') {
        radix_int(&lower[1..], 8)
    } else {
        lower.parse::<u64>().ok()
    };
    if let Some(u) = int {
        return Some(if neg {
            if u <= i64::MAX as u64 + 1 {
                Number::Int((-(u as i128)) as i64)
            } else {
                Number::Float(-(u as f64))
            }
        } else if u <= i64::MAX as u64 {
            Number::Int(u as i64)
        } else {
            Number::Uint(u)
        });
    }
    if lower.starts_with("0x") {
        return None; // hexadecimal floats: not needed by any template we run
    }
    let f: f64 = lower.parse().ok()?;
    Some(Number::Float(if neg { -f } else { f }))
}

/// Go's string literal unquoting.
fn unquote(text: &str) -> Result<String, String> {
    let inner = &text[1..text.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("invalid syntax".into());
        };
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| chars.next()).collect();
                let v = u32::from_str_radix(&hex, 16).map_err(|_| "invalid syntax".to_owned())?;
                if e == 'x' {
                    // A byte: only ASCII is representable in a Rust string.
                    out.push(char::from_u32(v).ok_or("invalid syntax")?);
                } else {
                    out.push(char::from_u32(v).ok_or("invalid syntax")?);
                }
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).expect("octal");
                for _ in 0..2 {
                    let d = chars.next().and_then(|c| c.to_digit(8)).ok_or("invalid syntax")?;
                    v = v * 8 + d;
                }
                out.push(char::from_u32(v).ok_or("invalid syntax")?);
            }
            _ => return Err("invalid syntax".into()),
        }
    }
    Ok(out)
}

/// Parser state over the token list.
struct Parser<'a> {
    name: &'a str,
    toks: Vec<Token>,
    i: usize,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    functions: &'a dyn Fn(&str) -> bool,
    defines: HashMap<String, Vec<Node>>,
    /// Inside a `range` (for break/continue).
    range_depth: usize,
}

type PResult<T> = Result<T, ParseError>;

impl<'a> Parser<'a> {
    fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        let line = self.toks.get(self.i).map_or(1, |t| t.line);
        Err(ParseError {
            name: self.name.to_owned(),
            line,
            message: msg.into(),
        })
    }

    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    /// The next token that is not a space.
    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.tok != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let save = self.i;
        let t = self.next_non_space();
        self.i = save;
        t
    }

    /// A list of nodes up to `{{end}}` or `{{else}}` (or EOF at top level). Returns
    /// the list and which keyword ended it.
    fn list(&mut self, top: bool) -> PResult<(Vec<Node>, &'static str)> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => {
                    if top {
                        return Ok((nodes, "eof"));
                    }
                    self.i -= 1;
                    return self.err("unexpected EOF");
                }
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::Left => {
                    let k = self.peek_non_space();
                    match k.tok {
                        Tok::Keyword("end") => {
                            self.next_non_space();
                            self.expect_right("end")?;
                            if top {
                                self.i -= 1;
                                return self.err("unexpected {{end}}");
                            }
                            return Ok((nodes, "end"));
                        }
                        Tok::Keyword("else") => {
                            if top {
                                return self.err("unexpected {{else}}");
                            }
                            self.next_non_space();
                            return Ok((nodes, "else"));
                        }
                        Tok::Keyword("define") => {
                            if !top {
                                return self.err("unexpected <define> in command");
                            }
                            self.next_non_space();
                            self.define(false)?;
                        }
                        Tok::Keyword("block") => {
                            self.next_non_space();
                            let n = self.define(true)?;
                            nodes.push(n);
                        }
                        _ => nodes.push(self.action()?),
                    }
                }
                other => return self.err(format!("unexpected {other:?}")),
            }
        }
    }

    fn expect_right(&mut self, ctx: &str) -> PResult<()> {
        let t = self.next_non_space();
        if t.tok != Tok::Right {
            self.i -= 1;
            return self.err(format!("unexpected {} in {ctx}", describe(&t.tok)));
        }
        Ok(())
    }

    /// `{{define "name"}}...{{end}}` or `{{block "name" pipe}}...{{end}}`.
    fn define(&mut self, block: bool) -> PResult<Node> {
        let ctx = if block { "block clause" } else { "define clause" };
        let t = self.next_non_space();
        let Tok::Str(name, _) = t.tok else {
            self.i -= 1;
            return self.err(format!("unexpected {} in {ctx}", describe(&t.tok)));
        };
        let pipe = if block {
            Some(self.pipeline(ctx)?)
        } else {
            self.expect_right(ctx)?;
            None
        };
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (body, end) = self.list(false)?;
        self.vars = saved;
        if end != "end" {
            return self.err(format!("unexpected {{{{{end}}}}}"));
        }
        self.defines.insert(name.clone(), body);
        Ok(Node::Template { pos: t.pos, name, pipe })
    }

    /// After `{{`: an action, a control structure, `template`, `break` or `continue`.
    fn action(&mut self) -> PResult<Node> {
        let t = self.peek_non_space();
        match t.tok {
            Tok::Keyword(k @ ("if" | "with" | "range")) => {
                self.next_non_space();
                let kind = match k {
                    "if" => ControlKind::If,
                    "with" => ControlKind::With,
                    _ => ControlKind::Range,
                };
                self.control(kind)
            }
            Tok::Keyword("template") => {
                self.next_non_space();
                let n = self.next_non_space();
                let name = match n.tok {
                    Tok::Str(s, _) => s,
                    other => {
                        self.i -= 1;
                        return self.err(format!("unexpected {} in template clause", describe(&other)));
                    }
                };
                let pipe = if self.peek_non_space().tok == Tok::Right {
                    self.next_non_space();
                    None
                } else {
                    Some(self.pipeline("template clause")?)
                };
                Ok(Node::Template { pos: t.pos, name, pipe })
            }
            Tok::Keyword(k @ ("break" | "continue")) => {
                self.next_non_space();
                if self.range_depth == 0 {
                    return self.err(format!("{{{{{k}}}}} outside {{{{range}}}}"));
                }
                self.expect_right(k)?;
                Ok(if k == "break" { Node::Break } else { Node::Continue })
            }
            _ => Ok(Node::Action(self.pipeline("command")?)),
        }
    }

    fn control(&mut self, kind: ControlKind) -> PResult<Node> {
        let mark = self.vars.len();
        let name = match kind {
            ControlKind::If => "if",
            ControlKind::With => "with",
            ControlKind::Range => "range",
        };
        let pipe = self.pipeline(name)?;
        if kind == ControlKind::Range {
            self.range_depth += 1;
        }
        let (list, end) = self.list(false)?;
        if kind == ControlKind::Range {
            self.range_depth -= 1;
        }
        let else_list = if end == "else" {
            // `else if`: an if node as the whole else list, sharing our {{end}}.
            let next = self.peek_non_space();
            if kind == ControlKind::If && next.tok == Tok::Keyword("if") {
                self.next_non_space();
                let nested = self.control(ControlKind::If)?;
                self.vars.truncate(mark);
                return Ok(Node::Control {
                    kind,
                    pipe,
                    list,
                    else_list: Some(vec![nested]),
                });
            }
            if next.tok != Tok::Right {
                return self.err(format!("unexpected {} in else", describe(&next.tok)));
            }
            self.next_non_space();
            let (else_list, end) = self.list(false)?;
            if end != "end" {
                return self.err("expected end; found {{else}}");
            }
            Some(else_list)
        } else {
            None
        };
        self.vars.truncate(mark);
        Ok(Node::Control {
            kind,
            pipe,
            list,
            else_list,
        })
    }

    /// A pipeline up to `}}`.
    fn pipeline(&mut self, ctx: &str) -> PResult<Pipe> {
        self.pipeline_until(ctx, false)
    }

    fn pipeline_until(&mut self, ctx: &str, in_paren: bool) -> PResult<Pipe> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            decl: Vec::new(),
            assign: false,
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, `$i, $v :=` (not `$x.Field`).
        let save = self.i;
        if let Tok::Variable(v) = &start.tok {
            let v = v.clone();
            self.next_non_space();
            if matches!(self.peek().tok, Tok::Field(_)) {
                self.i = save;
            } else {
                let after = self.next_non_space();
                match after.tok {
                    Tok::Declare | Tok::Assign => {
                        pipe.assign = after.tok == Tok::Assign;
                        pipe.decl.push(v);
                    }
                    Tok::Comma if ctx == "range" => {
                        let second = self.next_non_space();
                        let op = self.next_non_space();
                        match (&second.tok, &op.tok) {
                            (Tok::Variable(v2), Tok::Declare | Tok::Assign) => {
                                pipe.assign = op.tok == Tok::Assign;
                                pipe.decl.push(v);
                                pipe.decl.push(v2.clone());
                            }
                            _ => return self.err("range can only initialize variables"),
                        }
                    }
                    _ => self.i = save,
                }
            }
        }
        if pipe.assign {
            for v in &pipe.decl {
                if !self.vars.contains(v) {
                    return self.err(format!("undefined variable {v:?}"));
                }
            }
        } else {
            for v in &pipe.decl {
                self.vars.push(v.clone());
            }
        }
        loop {
            let t = self.peek_non_space();
            match t.tok {
                Tok::Right if !in_paren => {
                    self.next_non_space();
                    break;
                }
                Tok::RParen if in_paren => {
                    self.next_non_space();
                    break;
                }
                Tok::Right | Tok::RParen | Tok::Eof => {
                    return self.err(format!("unexpected {} in {ctx}", describe(&t.tok)));
                }
                _ => {
                    let cmd = self.command(in_paren)?;
                    pipe.cmds.push(cmd);
                    if self.peek_non_space().tok == Tok::Pipe {
                        self.next_non_space();
                        if matches!(self.peek_non_space().tok, Tok::Right | Tok::RParen) {
                            return self.err("missing command");
                        }
                    }
                }
            }
        }
        if pipe.cmds.is_empty() {
            return self.err(format!("missing value for {ctx}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate() {
            if i > 0
                && let Some(first) = c.args.first()
                && matches!(
                    first.arg,
                    Arg::Bool(_) | Arg::Dot | Arg::Nil | Arg::Number(..) | Arg::String(..)
                )
            {
                return self.err(format!("non executable command in pipeline stage {}", i + 1));
            }
        }
        Ok(pipe)
    }

    fn command(&mut self, in_paren: bool) -> PResult<Command> {
        let mut args = Vec::new();
        loop {
            let t = self.peek();
            match t.tok {
                Tok::Space => {
                    self.next();
                    continue;
                }
                Tok::Right | Tok::Pipe | Tok::Eof => break,
                Tok::RParen if in_paren => break,
                _ => {}
            }
            let operand = self.operand()?;
            // Operands must be separated by spaces.
            if !matches!(
                self.peek().tok,
                Tok::Space | Tok::Right | Tok::Pipe | Tok::RParen | Tok::Eof
            ) {
                let t = self.peek().clone();
                return self.err(format!("unexpected {} in operand", describe(&t.tok)));
            }
            args.push(operand);
        }
        if args.is_empty() {
            return self.err("empty command");
        }
        Ok(Command { args })
    }

    fn fields(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Tok::Field(f) = &self.peek().tok {
            out.push(f.clone());
            self.next();
        }
        out
    }

    fn operand(&mut self) -> PResult<Operand> {
        let t = self.next();
        let arg = match t.tok {
            Tok::Dot => Arg::Dot,
            Tok::Nil => Arg::Nil,
            Tok::Bool(b) => Arg::Bool(b),
            Tok::Num(n, text) => Arg::Number(n, text),
            Tok::Char(c, text) => Arg::Number(Number::Int(c), text),
            Tok::Str(s, text) => Arg::String(s, text),
            Tok::Field(f) => {
                let mut chain = vec![f];
                chain.extend(self.fields());
                Arg::Field(chain)
            }
            Tok::Variable(v) => {
                if !self.vars.contains(&v) {
                    self.i -= 1;
                    return self.err(format!("undefined variable {v:?}"));
                }
                Arg::Variable(v, self.fields())
            }
            Tok::Ident(name) => {
                if !(self.functions)(&name) {
                    self.i -= 1;
                    return self.err(format!("function {name:?} not defined"));
                }
                if matches!(self.peek().tok, Tok::Field(_)) {
                    return self.err(format!("unexpected . after term {name:?}"));
                }
                Arg::Function(name)
            }
            Tok::LParen => {
                let p = self.pipeline_until("parenthesized pipeline", true)?;
                Arg::Pipe(Box::new(p), self.fields())
            }
            Tok::Keyword(k) => {
                self.i -= 1;
                return self.err(format!("unexpected <{k}> in command"));
            }
            other => {
                self.i -= 1;
                return self.err(format!("unexpected {} in operand", describe(&other)));
            }
        };
        Ok(Operand { pos: t.pos, arg })
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Right => "\"}}\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::Eof => "EOF".into(),
        Tok::Keyword(k) => format!("<{k}>"),
        Tok::Ident(s) => format!("<{s}>"),
        Tok::Str(_, text) | Tok::Num(_, text) | Tok::Char(_, text) => format!("\"{text}\""),
        Tok::Field(f) => format!("<.{f}>"),
        Tok::Variable(v) => format!("<{v}>"),
        Tok::Pipe => "\"|\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        other => format!("{other:?}"),
    }
}

/// Parses `text`; `functions` says which function names exist.
pub fn parse(name: &str, text: &str, functions: &dyn Fn(&str) -> bool) -> Result<Parsed, ParseError> {
    let toks = Lexer {
        src: text,
        pos: 0,
        line: 1,
        tokens: Vec::new(),
        paren_depth: 0,
    }
    .run()
    .map_err(|(line, message)| ParseError {
        name: name.to_owned(),
        line,
        message,
    })?;
    let mut p = Parser {
        name,
        toks,
        i: 0,
        vars: vec!["$".into()],
        functions,
        defines: HashMap::new(),
        range_depth: 0,
    };
    let (root, _) = p.list(true)?;
    Ok(Parsed {
        root,
        defines: p.defines,
    })
}

/// Go's rendering of an operand in error messages (`<.Foo>`, `<humanize "abc">`).
pub fn render_args(args: &[Operand]) -> String {
    args.iter().map(|a| render_arg(&a.arg)).collect::<Vec<_>>().join(" ")
}

fn render_arg(a: &Arg) -> String {
    match a {
        Arg::Dot => ".".into(),
        Arg::Nil => "nil".into(),
        Arg::Bool(b) => b.to_string(),
        Arg::Number(_, t) | Arg::String(_, t) => t.clone(),
        Arg::Field(chain) => chain.iter().map(|f| format!(".{f}")).collect(),
        Arg::Variable(v, chain) => format!("{v}{}", chain.iter().map(|f| format!(".{f}")).collect::<String>()),
        Arg::Function(f) => f.clone(),
        Arg::Pipe(p, chain) => format!(
            "({}){}",
            render_pipe(p),
            chain.iter().map(|f| format!(".{f}")).collect::<String>()
        ),
    }
}

/// Go's rendering of a pipeline.
pub fn render_pipe(p: &Pipe) -> String {
    let mut s = String::new();
    if !p.decl.is_empty() {
        s.push_str(&p.decl.join(", "));
        s.push_str(if p.assign { " = " } else { " := " });
    }
    s.push_str(
        &p.cmds
            .iter()
            .map(|c| render_args(&c.args))
            .collect::<Vec<_>>()
            .join(" | "),
    );
    s
}
