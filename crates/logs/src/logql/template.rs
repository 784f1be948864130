//! `line_format` and `label_format` templates: Go's text/template (the engine
//! the alerting rules use) with the functions Loki gives them, a `map[string]string`
//! of the entry's labels as the dot, and `__line__`/`__timestamp__` for the entry
//! being formatted.

use std::cell::RefCell;

use sextant_template::{CallError, Funcs, Template, Value};

thread_local! {
    /// The entry being formatted on this thread: (line, timestamp ns).
    static CURRENT: RefCell<(String, i64)> = const { RefCell::new((String::new(), 0)) };
}

/// Sets the entry `__line__` and `__timestamp__` return while formatting it.
pub fn set_current(line: &str, ts: i64) {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        c.0.clear();
        c.0.push_str(line);
        c.1 = ts;
    });
}

fn s(v: &Value) -> String {
    v.to_go_string()
}

fn f64_of(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Uint(u) => *u as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        other => s(other).trim().parse().unwrap_or(0.0),
    }
}

fn i64_of(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Uint(u) => *u as i64,
        Value::Float(f) => *f as i64,
        other => {
            let t = s(other);
            t.trim()
                .parse::<i64>()
                .unwrap_or_else(|_| t.trim().parse::<f64>().map(|f| f as i64).unwrap_or(0))
        }
    }
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), CallError> {
    if args.len() != n {
        return Err(CallError::Args(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn go_title(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut prev_letter = false;
    for c in t.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64enc(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64dec(t: &str) -> String {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in t.bytes() {
        let Some(v) = B64.iter().position(|b| *b == c) else {
            continue;
        };
        bits = (bits << 6) | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The functions of Loki's templates (Loki's own and the Sprig ones it exposes).
pub fn loki_funcs() -> Funcs {
    let mut f = Funcs::new();
    f.insert("__line__", |_| Ok(Value::from(CURRENT.with(|c| c.borrow().0.clone()))));
    f.insert("__timestamp__", |_| {
        let ns = CURRENT.with(|c| c.borrow().1);
        Ok(Value::object(sextant_template::GoTime::from_millis(
            ns.div_euclid(1_000_000),
        )))
    });
    for (name, upper) in [("ToUpper", true), ("upper", true), ("ToLower", false), ("lower", false)] {
        f.insert(name, move |a| {
            want(name, a, 1)?;
            let t = s(&a[0]);
            Ok(Value::from(if upper { t.to_uppercase() } else { t.to_lowercase() }))
        });
    }
    f.insert("title", |a| {
        want("title", a, 1)?;
        Ok(Value::from(go_title(&s(&a[0]))))
    });
    f.insert("Title", |a| {
        want("Title", a, 1)?;
        Ok(Value::from(go_title(&s(&a[0]))))
    });
    f.insert("Replace", |a| {
        want("Replace", a, 4)?;
        let n = i64_of(&a[3]);
        let t = s(&a[0]);
        Ok(Value::from(if n < 0 {
            t.replace(&s(&a[1]), &s(&a[2]))
        } else {
            t.replacen(&s(&a[1]), &s(&a[2]), n as usize)
        }))
    });
    f.insert("replace", |a| {
        want("replace", a, 3)?;
        Ok(Value::from(s(&a[2]).replace(&s(&a[0]), &s(&a[1]))))
    });
    f.insert("Trim", |a| {
        want("Trim", a, 2)?;
        let cut = s(&a[1]);
        Ok(Value::from(s(&a[0]).trim_matches(|c| cut.contains(c)).to_owned()))
    });
    f.insert("trimAll", |a| {
        want("trimAll", a, 2)?;
        let cut = s(&a[0]);
        Ok(Value::from(s(&a[1]).trim_matches(|c| cut.contains(c)).to_owned()))
    });
    for name in ["TrimSpace", "trim"] {
        f.insert(name, move |a| {
            want(name, a, 1)?;
            Ok(Value::from(s(&a[0]).trim().to_owned()))
        });
    }
    f.insert("TrimPrefix", |a| {
        want("TrimPrefix", a, 2)?;
        let t = s(&a[0]);
        let p = s(&a[1]);
        Ok(Value::from(t.strip_prefix(p.as_str()).unwrap_or(&t).to_owned()))
    });
    f.insert("trimPrefix", |a| {
        want("trimPrefix", a, 2)?;
        let t = s(&a[1]);
        let p = s(&a[0]);
        Ok(Value::from(t.strip_prefix(p.as_str()).unwrap_or(&t).to_owned()))
    });
    f.insert("TrimSuffix", |a| {
        want("TrimSuffix", a, 2)?;
        let t = s(&a[0]);
        let p = s(&a[1]);
        Ok(Value::from(t.strip_suffix(p.as_str()).unwrap_or(&t).to_owned()))
    });
    f.insert("trimSuffix", |a| {
        want("trimSuffix", a, 2)?;
        let t = s(&a[1]);
        let p = s(&a[0]);
        Ok(Value::from(t.strip_suffix(p.as_str()).unwrap_or(&t).to_owned()))
    });
    f.insert("contains", |a| {
        want("contains", a, 2)?;
        Ok(Value::Bool(s(&a[1]).contains(&s(&a[0]))))
    });
    f.insert("hasPrefix", |a| {
        want("hasPrefix", a, 2)?;
        Ok(Value::Bool(s(&a[1]).starts_with(&s(&a[0]))))
    });
    f.insert("hasSuffix", |a| {
        want("hasSuffix", a, 2)?;
        Ok(Value::Bool(s(&a[1]).ends_with(&s(&a[0]))))
    });
    f.insert("repeat", |a| {
        want("repeat", a, 2)?;
        Ok(Value::from(s(&a[1]).repeat(i64_of(&a[0]).max(0) as usize)))
    });
    f.insert("trunc", |a| {
        want("trunc", a, 2)?;
        let n = i64_of(&a[0]);
        let t: Vec<char> = s(&a[1]).chars().collect();
        let out: String = if n >= 0 {
            t.iter().take(n as usize).collect()
        } else {
            t[t.len().saturating_sub((-n) as usize)..].iter().collect()
        };
        Ok(Value::from(out))
    });
    f.insert("substr", |a| {
        want("substr", a, 3)?;
        let t: Vec<char> = s(&a[2]).chars().collect();
        let (start, end) = (i64_of(&a[0]), i64_of(&a[1]));
        let start = if start < 0 { 0 } else { start as usize };
        let end = if end < 0 || end as usize > t.len() {
            t.len()
        } else {
            end as usize
        };
        Ok(Value::from(if start >= end {
            String::new()
        } else {
            t[start..end].iter().collect()
        }))
    });
    f.insert("default", |a| {
        want("default", a, 2)?;
        Ok(if a[1].truth() { a[1].clone() } else { a[0].clone() })
    });
    f.insert("count", |a| {
        want("count", a, 2)?;
        let re = regex::Regex::new(&s(&a[0])).map_err(|e| CallError::Failed(e.to_string()))?;
        Ok(Value::Int(re.find_iter(&s(&a[1])).count() as i64))
    });
    f.insert("regexReplaceAll", |a| {
        want("regexReplaceAll", a, 3)?;
        let re = regex::Regex::new(&s(&a[0])).map_err(|e| CallError::Failed(e.to_string()))?;
        Ok(Value::from(re.replace_all(&s(&a[1]), s(&a[2]).as_str()).into_owned()))
    });
    f.insert("regexReplaceAllLiteral", |a| {
        want("regexReplaceAllLiteral", a, 3)?;
        let re = regex::Regex::new(&s(&a[0])).map_err(|e| CallError::Failed(e.to_string()))?;
        Ok(Value::from(
            re.replace_all(&s(&a[1]), regex::NoExpand(&s(&a[2]))).into_owned(),
        ))
    });
    f.insert("b64enc", |a| {
        want("b64enc", a, 1)?;
        Ok(Value::from(b64enc(s(&a[0]).as_bytes())))
    });
    f.insert("b64dec", |a| {
        want("b64dec", a, 1)?;
        Ok(Value::from(b64dec(&s(&a[0]))))
    });
    f.insert("int", |a| {
        want("int", a, 1)?;
        Ok(Value::Int(i64_of(&a[0])))
    });
    f.insert("float64", |a| {
        want("float64", a, 1)?;
        Ok(Value::Float(f64_of(&a[0])))
    });
    type IntOp = fn(i64, i64) -> i64;
    let int_ops: [(&str, IntOp); 6] = [
        ("add", |x, y| x.wrapping_add(y)),
        ("sub", |x, y| x.wrapping_sub(y)),
        ("mul", |x, y| x.wrapping_mul(y)),
        ("div", |x, y| if y == 0 { 0 } else { x / y }),
        ("mod", |x, y| if y == 0 { 0 } else { x % y }),
        ("max", |x, y| x.max(y)),
    ];
    for (name, op) in int_ops {
        f.insert(name, move |a| {
            if a.len() < 2 {
                return Err(CallError::Args(format!(
                    "wrong number of args for {name}: want 2 got {}",
                    a.len()
                )));
            }
            Ok(Value::Int(
                a[1..].iter().fold(i64_of(&a[0]), |acc, v| op(acc, i64_of(v))),
            ))
        });
    }
    f.insert("min", |a| {
        want("min", a, 2)?;
        Ok(Value::Int(i64_of(&a[0]).min(i64_of(&a[1]))))
    });
    type FloatOp = fn(f64, f64) -> f64;
    let float_ops: [(&str, FloatOp); 6] = [
        ("addf", |x, y| x + y),
        ("subf", |x, y| x - y),
        ("mulf", |x, y| x * y),
        ("divf", |x, y| x / y),
        ("maxf", f64::max),
        ("minf", f64::min),
    ];
    for (name, op) in float_ops {
        f.insert(name, move |a| {
            if a.len() < 2 {
                return Err(CallError::Args(format!(
                    "wrong number of args for {name}: want 2 got {}",
                    a.len()
                )));
            }
            Ok(Value::Float(
                a[1..].iter().fold(f64_of(&a[0]), |acc, v| op(acc, f64_of(v))),
            ))
        });
    }
    f.insert("ceil", |a| {
        want("ceil", a, 1)?;
        Ok(Value::Float(f64_of(&a[0]).ceil()))
    });
    f.insert("floor", |a| {
        want("floor", a, 1)?;
        Ok(Value::Float(f64_of(&a[0]).floor()))
    });
    f.insert("round", |a| {
        if a.is_empty() {
            return Err(CallError::Args("wrong number of args for round: want 2 got 0".into()));
        }
        let p = a.get(1).map(i64_of).unwrap_or(0) as i32;
        let m = 10f64.powi(p);
        Ok(Value::Float((f64_of(&a[0]) * m).round() / m))
    });
    f.insert("fromJson", |a| {
        want("fromJson", a, 1)?;
        fn conv(v: serde_json::Value) -> Value {
            match v {
                serde_json::Value::Null => Value::Nil,
                serde_json::Value::Bool(b) => Value::Bool(b),
                serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
                serde_json::Value::String(s) => Value::from(s),
                serde_json::Value::Array(a) => Value::list(a.into_iter().map(conv).collect()),
                serde_json::Value::Object(o) => Value::Map(std::sync::Arc::new(sextant_template::Map::values(
                    o.into_iter().map(|(k, v)| (k, conv(v))).collect(),
                ))),
            }
        }
        Ok(serde_json::from_str(&s(&a[0])).map(conv).unwrap_or(Value::Nil))
    });
    f.insert("urlencode", |a| {
        want("urlencode", a, 1)?;
        Ok(Value::from(sextant_template::query_escape(&s(&a[0]))))
    });
    f.insert("alignLeft", |a| {
        want("alignLeft", a, 2)?;
        let n = i64_of(&a[0]).max(0) as usize;
        let t: String = s(&a[1]).chars().take(n).collect();
        Ok(Value::from(format!("{t:<n$}")))
    });
    f.insert("alignRight", |a| {
        want("alignRight", a, 2)?;
        let n = i64_of(&a[0]).max(0) as usize;
        let chars: Vec<char> = s(&a[1]).chars().collect();
        let t: String = chars[chars.len().saturating_sub(n)..].iter().collect();
        Ok(Value::from(format!("{t:>n$}")))
    });
    f.insert("unixEpoch", |a| {
        want("unixEpoch", a, 1)?;
        match &a[0] {
            Value::Object(o) => Ok(o.method("Unix", &[]).and_then(Result::ok).unwrap_or(Value::Int(0))),
            _ => Ok(Value::Int(0)),
        }
    });
    f
}

/// Parses a template with Loki's functions.
pub fn compile(name: &str, text: &str) -> Result<Template, String> {
    Template::parse(name, text, loki_funcs()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_template::Map;
    use std::sync::Arc;

    #[test]
    fn loki_template_functions() {
        let t = compile(
            "line",
            r#"{{ .a | ToUpper }} {{ __line__ }} {{ trunc 3 .b }} {{ default "x" .missing }} {{ add 1 2 }}"#,
        )
        .unwrap();
        set_current("the line", 0);
        let data = Value::Map(Arc::new(Map::strings([("a", "hi"), ("b", "abcdef")])));
        assert_eq!(t.execute(data).unwrap(), "HI the line abc x 3");
        assert_eq!(b64dec(&b64enc(b"hello!?")), "hello!?");
    }
}
