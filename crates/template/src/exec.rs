//! Executing a parsed template: Go's evaluation of pipelines, fields, methods,
//! variables, control structures and built-in functions, with Go's error messages
//! (`template: NAME:LINE:COL: executing "NAME" at <NODE>: ...`).

use std::sync::Arc;

use crate::gofmt;
use crate::parse::{Arg, Command, ControlKind, Node, Number, Operand, Pipe, render_args, render_pipe};
use crate::value::Value;
use crate::{CallError, Set, Tree};

/// Go caps recursion at 100000 templates; a Rust stack frame per level is larger,
/// so the cap is lower (no real template nests this deep).
const MAX_DEPTH: usize = 1000;

/// An execution error with Go's location prefix.
#[derive(Debug)]
pub(crate) struct ExecError(pub String);

type EResult<T> = Result<T, ExecError>;

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Exec<'a> {
    pub set: &'a Set,
    pub out: String,
    vars: Vec<(String, Value)>,
    depth: usize,
}

/// Names of Go's built-in template functions (`call` is left out: templates here
/// never hold function values).
const BUILTINS: [&str; 18] = [
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js", "urlquery", "eq", "ne",
    "lt", "le", "gt", "ge",
];

pub(crate) fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

impl<'a> Exec<'a> {
    pub fn new(set: &'a Set) -> Self {
        Self {
            set,
            out: String::new(),
            vars: Vec::new(),
            depth: 0,
        }
    }

    /// Runs `tree` with `dot` as its data.
    pub fn run(&mut self, tree: &Tree, dot: Value) -> EResult<()> {
        self.vars = vec![("$".into(), dot.clone())];
        self.walk_list(tree, &tree.nodes, &dot).map(|_| ())
    }

    fn error(&self, tree: &Tree, pos: usize, node: &str, msg: impl AsRef<str>) -> ExecError {
        let text = &tree.text[..pos.min(tree.text.len())];
        let line = 1 + text.matches('\n').count();
        let col = match text.rfind('\n') {
            Some(nl) => pos - nl - 1,
            None => pos,
        };
        ExecError(format!(
            "template: {}:{line}:{col}: executing {:?} at <{node}>: {}",
            tree.source_name,
            tree.name,
            msg.as_ref()
        ))
    }

    fn walk_list(&mut self, tree: &Tree, nodes: &[Node], dot: &Value) -> EResult<Flow> {
        for n in nodes {
            match self.walk(tree, n, dot)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, tree: &Tree, node: &Node, dot: &Value) -> EResult<Flow> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let v = self.eval_pipe(tree, pipe, dot)?;
                if pipe.decl.is_empty() {
                    self.print(&v);
                }
            }
            Node::Control {
                kind,
                pipe,
                list,
                else_list,
            } => {
                let mark = self.vars.len();
                let flow = if *kind == ControlKind::Range {
                    self.walk_range(tree, pipe, list, else_list.as_deref(), dot)?
                } else {
                    let v = self.eval_pipe(tree, pipe, dot)?;
                    if v.truth() {
                        let inner = if *kind == ControlKind::With { v } else { dot.clone() };
                        self.walk_list(tree, list, &inner)?
                    } else if let Some(e) = else_list {
                        self.walk_list(tree, e, dot)?
                    } else {
                        Flow::Normal
                    }
                };
                self.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Template { pos, name, pipe } => {
                let Some(callee) = self.set.lookup(name) else {
                    return Err(self.error(
                        tree,
                        *pos,
                        &format!("{{{{template {name:?}}}}}"),
                        format!("template {name:?} not defined"),
                    ));
                };
                let data = match pipe {
                    Some(p) => self.eval_pipe(tree, p, dot)?,
                    None => Value::Nil,
                };
                if self.depth >= MAX_DEPTH {
                    return Err(self.error(
                        tree,
                        *pos,
                        &format!("{{{{template {name:?}}}}}"),
                        format!("exceeded maximum template depth ({MAX_DEPTH})"),
                    ));
                }
                self.depth += 1;
                let saved = std::mem::replace(&mut self.vars, vec![("$".into(), data.clone())]);
                let r = self.walk_list(&callee, &callee.nodes, &data);
                self.vars = saved;
                self.depth -= 1;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_range(
        &mut self,
        tree: &Tree,
        pipe: &Pipe,
        list: &[Node],
        else_list: Option<&[Node]>,
        dot: &Value,
    ) -> EResult<Flow> {
        let value = self.eval_cmds(tree, pipe, dot)?;
        for d in &pipe.decl {
            if pipe.assign {
                self.set_var(d, value.clone());
            } else {
                self.vars.push((d.clone(), value.clone()));
            }
        }
        let items: Vec<(Value, Value)> = match &value {
            Value::Nil => Vec::new(),
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                .collect(),
            Value::Map(m) => m
                .entries
                .iter()
                .map(|(k, v)| (Value::from(k.as_str()), v.clone()))
                .collect(),
            Value::Object(o) => {
                if let Some(e) = o.elements() {
                    e.into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::Int(i as i64), v))
                        .collect()
                } else if let Some(e) = o.entries() {
                    e.into_iter().map(|(k, v)| (Value::from(k), v)).collect()
                } else {
                    return Err(self.error(
                        tree,
                        pipe.pos,
                        &render_pipe(pipe),
                        format!("range can't iterate over {}", value.to_go_string()),
                    ));
                }
            }
            other => {
                return Err(self.error(
                    tree,
                    pipe.pos,
                    &render_pipe(pipe),
                    format!("range can't iterate over {}", other.to_go_string()),
                ));
            }
        };
        if items.is_empty() {
            if let Some(e) = else_list {
                return self.walk_list(tree, e, dot);
            }
            return Ok(Flow::Normal);
        }
        let n = self.vars.len();
        for (index, elem) in items {
            let mark = self.vars.len();
            if !pipe.decl.is_empty() {
                self.vars[n - 1].1 = elem.clone();
            }
            if pipe.decl.len() > 1 {
                self.vars[n - 2].1 = index;
            }
            let flow = self.walk_list(tree, list, &elem)?;
            self.vars.truncate(mark);
            match flow {
                Flow::Break => break,
                Flow::Continue | Flow::Normal => {}
            }
        }
        Ok(Flow::Normal)
    }

    fn print(&mut self, v: &Value) {
        match v {
            Value::Nil => self.out.push_str("<no value>"),
            v => self.out.push_str(&v.to_go_string()),
        }
    }

    fn set_var(&mut self, name: &str, v: Value) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    fn var(&self, name: &str) -> Value {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// A pipeline's value, with its variables declared or assigned.
    fn eval_pipe(&mut self, tree: &Tree, pipe: &Pipe, dot: &Value) -> EResult<Value> {
        let v = self.eval_cmds(tree, pipe, dot)?;
        for d in &pipe.decl {
            if pipe.assign {
                self.set_var(d, v.clone());
            } else {
                self.vars.push((d.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn eval_cmds(&mut self, tree: &Tree, pipe: &Pipe, dot: &Value) -> EResult<Value> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(tree, cmd, dot, value)?);
        }
        Ok(value.unwrap_or_default())
    }

    fn eval_command(&mut self, tree: &Tree, cmd: &Command, dot: &Value, last: Option<Value>) -> EResult<Value> {
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        match &first.arg {
            Arg::Function(name) => self.call(tree, first.pos, name, rest, &cmd.args, dot, last),
            Arg::Field(chain) => self.eval_chain(tree, first, dot.clone(), chain, rest, dot, last),
            Arg::Variable(v, chain) => self.eval_chain(tree, first, self.var(v), chain, rest, dot, last),
            Arg::Pipe(p, chain) => {
                let base = self.eval_pipe(tree, p, dot)?;
                self.eval_chain(tree, first, base, chain, rest, dot, last)
            }
            Arg::Nil => Err(self.error(tree, first.pos, "nil", "nil is not a command")),
            _ => {
                if !rest.is_empty() || last.is_some() {
                    return Err(self.error(
                        tree,
                        first.pos,
                        &render_args(&cmd.args),
                        format!("can't give argument to non-function {}", render_args(&cmd.args[..1])),
                    ));
                }
                self.eval_arg(tree, first, dot)
            }
        }
    }

    /// `base.F1.F2...` where the last element may be a method called with `args`.
    #[allow(clippy::too_many_arguments)]
    fn eval_chain(
        &mut self,
        tree: &Tree,
        node: &Operand,
        base: Value,
        chain: &[String],
        args: &[Operand],
        dot: &Value,
        last: Option<Value>,
    ) -> EResult<Value> {
        if chain.is_empty() {
            if !args.is_empty() || last.is_some() {
                return Err(self.error(
                    tree,
                    node.pos,
                    &render_args(std::slice::from_ref(node)),
                    format!(
                        "can't give argument to non-function {}",
                        render_args(std::slice::from_ref(node))
                    ),
                ));
            }
            return Ok(base);
        }
        let mut v = base;
        for (i, field) in chain.iter().enumerate() {
            let is_last = i + 1 == chain.len();
            let mut call_args = Vec::new();
            if is_last {
                for a in args {
                    call_args.push(self.eval_arg(tree, a, dot)?);
                }
                if let Some(l) = &last {
                    call_args.push(l.clone());
                }
            }
            v = self.field(tree, node, &v, field, call_args)?;
        }
        Ok(v)
    }

    fn field(&self, tree: &Tree, node: &Operand, recv: &Value, name: &str, args: Vec<Value>) -> EResult<Value> {
        let at = render_args(std::slice::from_ref(node));
        match recv {
            Value::Nil => Ok(Value::Nil),
            Value::Map(m) => {
                if !args.is_empty() {
                    return Err(self.error(tree, node.pos, &at, format!("{name} is not a method but has arguments")));
                }
                Ok(m.entries.get(name).cloned().unwrap_or_else(|| m.zero.clone()))
            }
            Value::Object(o) => {
                if args.is_empty()
                    && let Some(v) = o.field(name)
                {
                    return Ok(v);
                }
                match o.method(name, &args) {
                    Some(Ok(v)) => Ok(v),
                    Some(Err(e)) => Err(self.error(tree, node.pos, &at, format!("error calling {name}: {e}"))),
                    None if !args.is_empty() && o.field(name).is_some() => Err(self.error(
                        tree,
                        node.pos,
                        &at,
                        format!("{name} has arguments but cannot be invoked as function"),
                    )),
                    None => Err(self.error(
                        tree,
                        node.pos,
                        &at,
                        format!("can't evaluate field {name} in type {}", o.type_name()),
                    )),
                }
            }
            other => Err(self.error(
                tree,
                node.pos,
                &at,
                format!("can't evaluate field {name} in type {}", other.type_name()),
            )),
        }
    }

    fn eval_arg(&mut self, tree: &Tree, a: &Operand, dot: &Value) -> EResult<Value> {
        Ok(match &a.arg {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Number(Number::Int(i), _) => Value::Int(*i),
            Arg::Number(Number::Uint(u), _) => Value::Uint(*u),
            Arg::Number(Number::Float(f), _) => Value::Float(*f),
            Arg::String(s, _) => Value::from(s.as_str()),
            Arg::Field(chain) => self.eval_chain(tree, a, dot.clone(), chain, &[], dot, None)?,
            Arg::Variable(v, chain) => self.eval_chain(tree, a, self.var(v), chain, &[], dot, None)?,
            Arg::Pipe(p, chain) => {
                let base = self.eval_pipe(tree, p, dot)?;
                self.eval_chain(tree, a, base, chain, &[], dot, None)?
            }
            Arg::Function(name) => self.call(tree, a.pos, name, &[], std::slice::from_ref(a), dot, None)?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        tree: &Tree,
        pos: usize,
        name: &str,
        args: &[Operand],
        whole: &[Operand],
        dot: &Value,
        last: Option<Value>,
    ) -> EResult<Value> {
        let at = render_args(whole);
        // `and` and `or` evaluate their arguments only as far as needed.
        if name == "and" || name == "or" {
            let n = args.len() + usize::from(last.is_some());
            if n == 0 {
                return Err(self.error(
                    tree,
                    pos,
                    &at,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut v = Value::Nil;
            for a in args {
                v = self.eval_arg(tree, a, dot)?;
                if v.truth() != (name == "and") {
                    return Ok(v);
                }
            }
            if let Some(l) = last {
                v = l;
            }
            return Ok(v);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.eval_arg(tree, a, dot)?);
        }
        if let Some(l) = last {
            vals.push(l);
        }
        let result = if is_builtin(name) {
            builtin(name, &vals)
        } else if let Some(f) = self.set.funcs.get(name) {
            f(&vals)
        } else {
            Err(CallError::Failed(format!("function {name:?} not defined")))
        };
        result.map_err(|e| match e {
            CallError::Args(m) => self.error(tree, pos, &at, m),
            CallError::Failed(m) => self.error(tree, pos, &at, format!("error calling {name}: {m}")),
        })
    }
}

fn want(name: &str, n: usize, vals: &[Value]) -> Result<(), CallError> {
    if vals.len() != n {
        return Err(CallError::Args(format!(
            "wrong number of args for {name}: want {n} got {}",
            vals.len()
        )));
    }
    Ok(())
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    String,
    Other,
    Invalid,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Nil => Kind::Invalid,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Uint(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::String,
        _ => Kind::Other,
    }
}

const BAD_COMPARISON: &str = "incompatible types for comparison";
const BAD_COMPARISON_TYPE: &str = "invalid type for comparison";

fn eq_values(a: &Value, b: &Value) -> Result<bool, CallError> {
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        return match (a, b) {
            (Value::Int(i), Value::Uint(u)) | (Value::Uint(u), Value::Int(i)) => Ok(*i >= 0 && *i as u64 == *u),
            _ if ka == Kind::Invalid || kb == Kind::Invalid => Ok(false),
            _ => Err(CallError::Failed(BAD_COMPARISON.into())),
        };
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Uint(x), Value::Uint(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Nil, Value::Nil) => true,
        _ => {
            return Err(CallError::Failed(format!(
                "non-comparable types {}: {}, {}: {}",
                a.to_go_string(),
                a.type_name(),
                b.type_name(),
                b.to_go_string()
            )));
        }
    })
}

fn less(a: &Value, b: &Value) -> Result<bool, CallError> {
    let (ka, kb) = (kind(a), kind(b));
    for k in [ka, kb] {
        if matches!(k, Kind::Invalid | Kind::Other | Kind::Bool) {
            return Err(CallError::Failed(BAD_COMPARISON_TYPE.into()));
        }
    }
    if ka != kb {
        return match (a, b) {
            (Value::Int(i), Value::Uint(u)) => Ok(*i < 0 || (*i as u64) < *u),
            (Value::Uint(u), Value::Int(i)) => Ok(*i >= 0 && *u < *i as u64),
            _ => Err(CallError::Failed(BAD_COMPARISON.into())),
        };
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Uint(x), Value::Uint(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::String(x), Value::String(y)) => x.as_bytes() < y.as_bytes(),
        _ => return Err(CallError::Failed(BAD_COMPARISON_TYPE.into())),
    })
}

/// The text of the arguments as `html`, `js` and `urlquery` take it: a single
/// string as is, anything else through `fmt.Sprint`.
fn eval_args_text(vals: &[Value]) -> String {
    match vals {
        [Value::String(s)] => s.to_string(),
        _ => gofmt::sprint(vals),
    }
}

/// Go's `html` function.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn to_index(v: &Value, len: usize, cap: usize) -> Result<usize, CallError> {
    let i = match v {
        Value::Int(i) => *i,
        Value::Uint(u) => i64::try_from(*u).unwrap_or(i64::MAX),
        Value::Nil => return Err(CallError::Failed("cannot index slice/array with nil".into())),
        other => {
            return Err(CallError::Failed(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            )));
        }
    };
    if i < 0 || i as usize > cap {
        return Err(CallError::Failed(format!("index out of range: {i}")));
    }
    let _ = len;
    Ok(i as usize)
}

fn builtin(name: &str, vals: &[Value]) -> Result<Value, CallError> {
    match name {
        "not" => {
            want(name, 1, vals)?;
            Ok(Value::Bool(!vals[0].truth()))
        }
        "len" => {
            want(name, 1, vals)?;
            let n = match &vals[0] {
                Value::String(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.entries.len(),
                Value::Object(o) => match (o.elements(), o.entries()) {
                    (Some(e), _) => e.len(),
                    (_, Some(e)) => e.len(),
                    _ => return Err(CallError::Failed(format!("len of type {}", o.type_name()))),
                },
                Value::Nil => return Err(CallError::Failed("len of nil pointer".into())),
                other => return Err(CallError::Failed(format!("len of type {}", other.type_name()))),
            };
            Ok(Value::Int(n as i64))
        }
        "index" => {
            let Some((item, keys)) = vals.split_first() else {
                return Err(CallError::Args(
                    "wrong number of args for index: want at least 1 got 0".into(),
                ));
            };
            let mut v = item.clone();
            for k in keys {
                v = match &v {
                    Value::Map(m) => match k {
                        Value::String(s) => m.entries.get(&**s).cloned().unwrap_or_else(|| m.zero.clone()),
                        other => {
                            return Err(CallError::Failed(format!(
                                "value has type {}; should be string",
                                other.type_name()
                            )));
                        }
                    },
                    Value::List(l) => {
                        let i = to_index(k, l.len(), l.len())?;
                        l.get(i)
                            .cloned()
                            .ok_or_else(|| CallError::Failed(format!("index out of range: {i}")))?
                    }
                    Value::String(s) => {
                        let i = to_index(k, s.len(), s.len())?;
                        Value::Int(
                            *s.as_bytes()
                                .get(i)
                                .ok_or_else(|| CallError::Failed(format!("index out of range: {i}")))?
                                as i64,
                        )
                    }
                    Value::Object(o) => {
                        if let Some(e) = o.elements() {
                            let i = to_index(k, e.len(), e.len())?;
                            e.get(i)
                                .cloned()
                                .ok_or_else(|| CallError::Failed(format!("index out of range: {i}")))?
                        } else if let Some(e) = o.entries() {
                            let key = k.as_str().ok_or_else(|| {
                                CallError::Failed(format!("value has type {}; should be string", k.type_name()))
                            })?;
                            e.into_iter()
                                .find(|(n, _)| n == key)
                                .map(|(_, v)| v)
                                .unwrap_or_else(|| Value::from(""))
                        } else {
                            return Err(CallError::Failed(format!("can't index item of type {}", o.type_name())));
                        }
                    }
                    Value::Nil => return Err(CallError::Failed("index of untyped nil".into())),
                    other => {
                        return Err(CallError::Failed(format!(
                            "can't index item of type {}",
                            other.type_name()
                        )));
                    }
                };
            }
            Ok(v)
        }
        "slice" => {
            let Some((item, idx)) = vals.split_first() else {
                return Err(CallError::Args(
                    "wrong number of args for slice: want at least 1 got 0".into(),
                ));
            };
            if idx.len() > 2 {
                return Err(CallError::Failed(format!("too many slice indexes: {}", idx.len())));
            }
            match item {
                Value::String(s) => {
                    let i = idx
                        .first()
                        .map(|k| to_index(k, s.len(), s.len()))
                        .transpose()?
                        .unwrap_or(0);
                    let j = idx
                        .get(1)
                        .map(|k| to_index(k, s.len(), s.len()))
                        .transpose()?
                        .unwrap_or(s.len());
                    if i > j {
                        return Err(CallError::Failed(format!("invalid slice index: {i} > {j}")));
                    }
                    Ok(Value::from(String::from_utf8_lossy(&s.as_bytes()[i..j]).into_owned()))
                }
                Value::List(l) => {
                    let i = idx
                        .first()
                        .map(|k| to_index(k, l.len(), l.len()))
                        .transpose()?
                        .unwrap_or(0);
                    let j = idx
                        .get(1)
                        .map(|k| to_index(k, l.len(), l.len()))
                        .transpose()?
                        .unwrap_or(l.len());
                    if i > j {
                        return Err(CallError::Failed(format!("invalid slice index: {i} > {j}")));
                    }
                    Ok(Value::list(l[i..j].to_vec()))
                }
                other => Err(CallError::Failed(format!(
                    "can't slice item of type {}",
                    other.type_name()
                ))),
            }
        }
        "print" => Ok(Value::from(gofmt::sprint(vals))),
        "println" => Ok(Value::from(gofmt::sprintln(vals))),
        "printf" => {
            let Some((f, rest)) = vals.split_first() else {
                return Err(CallError::Args(
                    "wrong number of args for printf: want at least 1 got 0".into(),
                ));
            };
            let Value::String(f) = f else {
                return Err(CallError::Args(format!(
                    "wrong type for value; expected string; got {}",
                    f.type_name()
                )));
            };
            Ok(Value::from(gofmt::sprintf(f, rest)))
        }
        "html" => Ok(Value::from(html_escape(&eval_args_text(vals)))),
        "js" => Ok(Value::from(js_escape(&eval_args_text(vals)))),
        "urlquery" => Ok(Value::from(query_escape(&eval_args_text(vals)))),
        "eq" => {
            let Some((a, rest)) = vals.split_first() else {
                return Err(CallError::Args(
                    "wrong number of args for eq: want at least 1 got 0".into(),
                ));
            };
            if rest.is_empty() {
                return Err(CallError::Failed("missing argument for comparison".into()));
            }
            for b in rest {
                if eq_values(a, b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            want(name, 2, vals)?;
            Ok(Value::Bool(!eq_values(&vals[0], &vals[1])?))
        }
        "lt" => {
            want(name, 2, vals)?;
            Ok(Value::Bool(less(&vals[0], &vals[1])?))
        }
        "le" => {
            want(name, 2, vals)?;
            Ok(Value::Bool(less(&vals[0], &vals[1])? || eq_values(&vals[0], &vals[1])?))
        }
        "gt" => {
            want(name, 2, vals)?;
            Ok(Value::Bool(
                !less(&vals[0], &vals[1])? && !eq_values(&vals[0], &vals[1])?,
            ))
        }
        "ge" => {
            want(name, 2, vals)?;
            Ok(Value::Bool(!less(&vals[0], &vals[1])?))
        }
        _ => Err(CallError::Failed(format!("function {name:?} not defined"))),
    }
}

/// Shared handle to a function's implementation.
pub(crate) type FuncRef = Arc<dyn Fn(&[Value]) -> Result<Value, CallError> + Send + Sync>;
