//! Go's `text/template`, as Prometheus renders alert labels and annotations and
//! Alertmanager renders notifications: the same syntax, scoping, truthiness,
//! comparisons, number formatting and error messages, so rule files and
//! notification templates written for those programs render the same here.
//!
//! The template language is Go's; the functions are the host's: callers register
//! them in a [`Funcs`] (Prometheus' `humanize`, `query`, ...; Alertmanager's `join`,
//! `toUpper`, ...). [`Set`] holds named templates (`{{define}}`s from template
//! files) that parsed templates can call with `{{template "name" .}}`.
//!
//! This crate knows nothing of alerts or metrics.

mod exec;
pub mod gofmt;
mod gotime;
mod parse;
mod value;

use std::collections::HashMap;
use std::sync::Arc;

pub use exec::{html_escape, query_escape};
pub use gotime::GoTime;
pub use parse::ParseError;
pub use value::{Map, Object, Value};

use exec::{Exec, FuncRef};
use parse::Node;

/// Why a function call failed.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The arguments do not fit (Go: `wrong number of args for F: want 1 got 2`);
    /// shown as is.
    Args(String),
    /// The function failed; shown as `error calling F: <message>`.
    Failed(String),
}

impl From<String> for CallError {
    fn from(s: String) -> Self {
        CallError::Failed(s)
    }
}

/// A template error, with Go's text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// `template: NAME:LINE: message`
    #[error("{0}")]
    Parse(ParseError),
    /// `template: NAME:LINE:COL: executing "NAME" at <NODE>: message`
    #[error("{0}")]
    Exec(String),
}

/// Functions available to templates, beyond Go's built-ins.
#[derive(Clone, Default)]
pub struct Funcs {
    map: HashMap<String, FuncRef>,
}

impl Funcs {
    /// No functions but Go's built-ins.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a function.
    pub fn insert(
        &mut self,
        name: &str,
        f: impl Fn(&[Value]) -> Result<Value, CallError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.map.insert(name.to_owned(), Arc::new(f));
        self
    }

    /// Whether `name` is a function (a built-in or one of these).
    pub fn contains(&self, name: &str) -> bool {
        exec::is_builtin(name) || self.map.contains_key(name)
    }

    fn get(&self, name: &str) -> Option<&FuncRef> {
        self.map.get(name)
    }
}

/// A parsed body: the main text of a source or one `{{define}}`.
#[derive(Debug)]
pub(crate) struct Tree {
    /// The template's name (for `executing "NAME"`).
    name: String,
    /// The name of the source it was parsed from (for locations).
    source_name: String,
    /// The source text (for line and column of errors).
    text: Arc<str>,
    nodes: Vec<Node>,
}

/// Named templates with their functions: template files' `{{define}}`s, which
/// templates parsed in the set can call.
#[derive(Clone)]
pub struct Set {
    funcs: Arc<Funcs>,
    trees: HashMap<String, Arc<Tree>>,
}

impl Set {
    /// An empty set with these functions.
    pub fn new(funcs: Funcs) -> Self {
        Self {
            funcs: Arc::new(funcs),
            trees: HashMap::new(),
        }
    }

    /// Parses a template file: its `{{define}}`s join the set (replacing earlier
    /// ones of the same name, as Go's `ParseFiles` does), and its main text becomes
    /// the template `name`.
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let (root, defines) = self.parse_trees(name, text)?;
        self.trees.insert(name.to_owned(), root);
        self.trees.extend(defines);
        Ok(())
    }

    /// Whether a template of this name exists.
    pub fn has(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    #[allow(clippy::type_complexity)]
    fn parse_trees(&self, name: &str, text: &str) -> Result<(Arc<Tree>, Vec<(String, Arc<Tree>)>), Error> {
        let funcs = self.funcs.clone();
        let parsed = parse::parse(name, text, &|f| funcs.contains(f)).map_err(Error::Parse)?;
        let text: Arc<str> = text.into();
        let root = Arc::new(Tree {
            name: name.to_owned(),
            source_name: name.to_owned(),
            text: text.clone(),
            nodes: parsed.root,
        });
        let defines = parsed
            .defines
            .into_iter()
            .map(|(n, nodes)| {
                let t = Arc::new(Tree {
                    name: n.clone(),
                    source_name: name.to_owned(),
                    text: text.clone(),
                    nodes,
                });
                (n, t)
            })
            .collect();
        Ok((root, defines))
    }

    /// Parses `text` as a template named `name` that can call this set's templates
    /// (and its own `{{define}}`s).
    pub fn parse(&self, name: &str, text: &str) -> Result<Template, Error> {
        let (root, defines) = self.parse_trees(name, text)?;
        let set = if defines.is_empty() {
            self.clone()
        } else {
            let mut s = self.clone();
            s.trees.extend(defines);
            s
        };
        Ok(Template { set, root })
    }

    /// Executes the set's template `name` with `data`.
    pub fn execute(&self, name: &str, data: Value) -> Result<String, Error> {
        let tree = self
            .lookup(name)
            .ok_or_else(|| Error::Exec(format!("template: no template {name:?} associated with template")))?;
        let mut ex = Exec::new(self);
        ex.run(&tree, data).map_err(|e| Error::Exec(e.0))?;
        Ok(ex.out)
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<Arc<Tree>> {
        self.trees.get(name).cloned()
    }
}

/// A parsed template, ready to execute any number of times.
#[derive(Clone)]
pub struct Template {
    set: Set,
    root: Arc<Tree>,
}

impl Template {
    /// Parses a standalone template with `funcs`.
    pub fn parse(name: &str, text: &str, funcs: Funcs) -> Result<Self, Error> {
        Set::new(funcs).parse(name, text)
    }

    /// Renders the template with `data` as its dot.
    pub fn execute(&self, data: Value) -> Result<String, Error> {
        let mut ex = Exec::new(&self.set);
        ex.run(&self.root, data).map_err(|e| Error::Exec(e.0))?;
        Ok(ex.out)
    }
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Template({:?})", self.root.name)
    }
}
