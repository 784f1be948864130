//! Values a template works on: Go's basic kinds (bool, int, uint, float64, string),
//! nil, slices, maps with string keys, and host objects with fields and methods.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::gofmt;

/// A value in a template: the dot, a variable, an argument or a result.
#[derive(Clone, Default)]
pub enum Value {
    /// Go's nil, or a missing value ("invalid" in Go's reflect terms). Prints as
    /// `<no value>` in an action and `<nil>` through `print`.
    #[default]
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int` (a number literal without a decimal point or exponent is one).
    Int(i64),
    /// `uint64`.
    Uint(u64),
    /// `float64`.
    Float(f64),
    /// `string`.
    String(Arc<str>),
    /// A slice.
    List(Arc<Vec<Value>>),
    /// A map with string keys (ranged over in key order, as Go does).
    Map(Arc<Map>),
    /// A host object: fields, methods, and optionally slice or map behaviour.
    Object(Arc<dyn Object>),
}

/// A map with string keys and the value a missing key gives (Go's
/// `missingkey=zero`: the zero value of the element type).
#[derive(Clone, Debug, Default)]
pub struct Map {
    /// The entries.
    pub entries: BTreeMap<String, Value>,
    /// What a missing key yields: `""` for `map[string]string`, nil for
    /// `map[string]interface{}`.
    pub zero: Value,
}

impl Map {
    /// A `map[string]string`.
    pub fn strings<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self {
            entries: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), Value::from(v.into())))
                .collect(),
            zero: Value::from(""),
        }
    }

    /// A `map[string]interface{}`.
    pub fn values(entries: BTreeMap<String, Value>) -> Self {
        Self {
            entries,
            zero: Value::Nil,
        }
    }
}

/// A host value with named fields and methods (Go structs and types with methods:
/// Alertmanager's template data, query results, times).
pub trait Object: Send + Sync {
    /// Go's type name, for error messages (`template.Data`, `*time.Time`).
    fn type_name(&self) -> &str;

    /// A field, or a method without arguments.
    fn field(&self, name: &str) -> Option<Value>;

    /// A method called with arguments. `None`: no such method.
    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let _ = (name, args);
        None
    }

    /// The value as `fmt.Print` prints it.
    fn format(&self) -> String;

    /// Elements, for `range`, `len` and `index` on slice-like objects.
    fn elements(&self) -> Option<Vec<Value>> {
        None
    }

    /// Entries in key order, for `range`, `len` and `index` on map-like objects.
    fn entries(&self) -> Option<Vec<(String, Value)>> {
        None
    }
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<Arc<str>>) -> Self {
        Value::String(s.into())
    }

    /// A slice of values.
    pub fn list(items: Vec<Value>) -> Self {
        Value::List(Arc::new(items))
    }

    /// A host object.
    pub fn object(o: impl Object + 'static) -> Self {
        Value::Object(Arc::new(o))
    }

    /// Go's type name of the value, as error messages show it.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Uint(_) => "uint64".into(),
            Value::Float(_) => "float64".into(),
            Value::String(_) => "string".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(m) => {
                if matches!(m.zero, Value::String(_)) {
                    "map[string]string".into()
                } else {
                    "map[string]interface {}".into()
                }
            }
            Value::Object(o) => o.type_name().to_owned(),
        }
    }

    /// Go's truth (`if`, `with`, `and`, `or`, `not`): false, zero numbers, empty
    /// strings, slices and maps, and nil are false; NaN is true; objects are true
    /// unless they are empty collections.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Uint(u) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.entries.is_empty(),
            Value::Object(o) => match (o.elements(), o.entries()) {
                (Some(e), _) => !e.is_empty(),
                (_, Some(e)) => !e.is_empty(),
                _ => true,
            },
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as `fmt.Sprint` prints it (`%v`).
    pub fn to_go_string(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Uint(u) => u.to_string(),
            Value::Float(f) => gofmt::format_float(*f, 'g', None),
            Value::String(s) => s.to_string(),
            Value::List(l) => {
                let items: Vec<String> = l.iter().map(Value::to_go_string).collect();
                format!("[{}]", items.join(" "))
            }
            Value::Map(m) => {
                let items: Vec<String> = m
                    .entries
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.to_go_string()))
                    .collect();
                format!("map[{}]", items.join(" "))
            }
            Value::Object(o) => o.format(),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => write!(f, "{s:?}"),
            other => write!(f, "{}({})", other.type_name(), other.to_go_string()),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Map(Arc::new(m))
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::List(Arc::new(v))
    }
}
