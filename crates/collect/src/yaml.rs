//! Reading YAML the way Prometheus' Go decoder (yaml.v2) reads it, where serde_yaml
//! reads it differently: YAML 1.1 booleans (`yes`, `on`), `~` meaning "not set" for any
//! section or field, duplicate keys in a map refused, and Go's unsigned integers
//! (floats truncated, negatives refused). Used with `#[serde(deserialize_with)]` by the
//! config types that reuse Prometheus' formats.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

/// A section or field written as `~`, `null` or nothing reads as its default.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A YAML 1.1 boolean: `true/false`, `yes/no`, `on/off`, `y/n`, in any case.
pub fn bool_yaml11<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.to_ascii_lowercase().as_str() {
                "y" | "yes" | "true" | "on" => Ok(true),
                "n" | "no" | "false" | "off" => Ok(false),
                _ => Err(E::custom(format!("cannot unmarshal {v:?} into bool"))),
            }
        }
    }
    d.deserialize_any(V)
}

/// A string field written as `~` reads as empty, as in Go.
pub fn null_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// A Go `uint`: a non-negative integer, or a float truncated toward zero.
pub fn go_uint<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a non-negative integer")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<usize, E> {
            usize::try_from(v).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<usize, E> {
            usize::try_from(v).map_err(|_| E::custom(format!("cannot unmarshal !!int `{v}` into uint")))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<usize, E> {
            if v.is_finite() && v >= 0.0 {
                Ok(v.trunc() as usize)
            } else {
                Err(E::custom(format!("cannot unmarshal !!float `{v}` into uint")))
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<usize, E> {
            Ok(0)
        }
        fn visit_none<E: de::Error>(self) -> Result<usize, E> {
            Ok(0)
        }
    }
    d.deserialize_any(V)
}

/// A map whose keys must be unique (`key "a" already set in map`); `~` is empty.
pub fn unique_map<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct M<V>(PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for M<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(k) = map.next_key::<String>()? {
                if out.contains_key(&k) {
                    return Err(de::Error::custom(format!("key {k:?} already set in map")));
                }
                let v = map.next_value()?;
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_any(M(PhantomData))
}

/// A list whose entries may not be null, with Prometheus' message for the list (`~`
/// for the whole list is empty).
pub fn non_null_entries<'de, D, T>(d: D, what: &str) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let entries = Option::<Vec<Option<T>>>::deserialize(d)?.unwrap_or_default();
    entries
        .into_iter()
        .map(|e| e.ok_or_else(|| de::Error::custom(what)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct T {
        #[serde(default, deserialize_with = "bool_yaml11")]
        b: bool,
        #[serde(default, deserialize_with = "go_uint")]
        n: usize,
        #[serde(default, deserialize_with = "unique_map")]
        m: BTreeMap<String, String>,
        #[serde(default, deserialize_with = "null_string")]
        s: String,
    }

    #[test]
    fn go_yaml_semantics() {
        let t: T = serde_yaml::from_str("b: yes\nn: 1.5\nm: {a: x}\ns: ~\n").unwrap();
        assert!(t.b);
        assert_eq!(t.n, 1);
        assert_eq!(t.m["a"], "x");
        assert_eq!(t.s, "");
        let t: T = serde_yaml::from_str("b: Off\nm: ~\n").unwrap();
        assert!(!t.b && t.m.is_empty());
        assert!(serde_yaml::from_str::<T>("n: -1\n").is_err());
        let e = serde_yaml::from_str::<T>("m: {a: x, a: y}\n").unwrap_err().to_string();
        assert!(e.contains("already set in map"), "{e}");
    }
}
