//! [`Value`] → `Deserialize` (the rules are in the `value` module doc). Each error carries
//! the path of the innermost value that failed.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use super::{Array, DType, Value, ARRAY_TOKEN};
use crate::Error;

/// A typed value from a neutral [`Value`]; [`Error::Decode`] names the field that failed.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    T::deserialize(De { value, path: "$".into() })
        .map_err(|e| Error::Decode { path: e.path.unwrap_or("$".into()), why: e.msg })
}

#[derive(Debug)]
pub(crate) struct DeError {
    path: Option<String>,
    msg: String,
}

impl DeError {
    /// The innermost path is the one that names the failure: set only once.
    fn at(mut self, path: &str) -> DeError {
        self.path.get_or_insert_with(|| path.to_owned());
        self
    }
}

impl std::fmt::Display for DeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}
impl std::error::Error for DeError {}
impl de::Error for DeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        DeError { path: None, msg: msg.to_string() }
    }
}

struct De {
    value: Value,
    path: String,
}

/// A short rendering of what Python sent, for error messages.
fn describe(v: &Value) -> String {
    let text = match v {
        Value::Array(a) => format!("an array of dtype {} and shape {:?}", a.dtype.numpy(), a.shape),
        Value::Bytes(b) => format!("{} bytes", b.len()),
        other => format!("{other:?}"),
    };
    const SHOWN: usize = 120;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// An array as nested lists of its items (C order), for sequence types.
fn array_items(a: &Array) -> Value {
    let size = a.dtype.item_bytes();
    let items: Vec<Value> = a
        .data
        .chunks_exact(size)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(c);
            match a.dtype {
                DType::Bool => Value::Bool(c[0] != 0),
                DType::I8 => Value::Int(i8::from_le_bytes([c[0]]).into()),
                DType::I16 => Value::Int(i16::from_le_bytes([c[0], c[1]]).into()),
                DType::I32 => Value::Int(i32::from_le_bytes([c[0], c[1], c[2], c[3]]).into()),
                DType::I64 => Value::Int(i64::from_le_bytes(b)),
                DType::U8 | DType::U16 | DType::U32 => Value::Int(u64::from_le_bytes(b) as i64),
                DType::U64 => match i64::try_from(u64::from_le_bytes(b)) {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Float(u64::from_le_bytes(b) as f64),
                },
                DType::F32 => Value::Float(f32::from_le_bytes([c[0], c[1], c[2], c[3]]).into()),
                DType::F64 => Value::Float(f64::from_le_bytes(b)),
            }
        })
        .collect();
    nest(items, &a.shape)
}

fn nest(mut items: Vec<Value>, shape: &[u64]) -> Value {
    match shape {
        [] => items.pop().unwrap_or(Value::None),
        [_] => Value::List(items),
        [first, rest @ ..] => {
            let chunk = items.len() / (*first as usize).max(1);
            let mut rows = Vec::new();
            while !items.is_empty() {
                let tail = items.split_off(chunk.min(items.len()));
                rows.push(nest(std::mem::replace(&mut items, tail), rest));
            }
            Value::List(rows)
        }
    }
}

impl De {
    fn fail(&self, expected: &str) -> DeError {
        DeError {
            path: Some(self.path.clone()),
            msg: format!("expected {expected}, Python sent {}", describe(&self.value)),
        }
    }
}

macro_rules! forward_to_any {
    ($($name:ident)*) => {$(
        fn $name<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            self.deserialize_any(v)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for De {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let path = self.path.clone();
        let got = match self.value {
            Value::None => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(b),
            Value::Int(i) => v.visit_i64(i),
            Value::Float(f) => v.visit_f64(f),
            Value::Str(s) => v.visit_string(s),
            Value::Bytes(b) => v.visit_byte_buf(b.to_vec()),
            Value::List(items) => v.visit_seq(Seq { items: items.into_iter(), path: path.clone(), index: 0 }),
            Value::Map(items) => v.visit_map(Map { items: items.into_iter(), path: path.clone(), pending: None }),
            Value::Array(a) => {
                return De { value: array_items(&a), path }.deserialize_any(v);
            }
        };
        got.map_err(|e| e.at(&path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::None => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, v: V) -> Result<V::Value, DeError> {
        if name != ARRAY_TOKEN {
            return v.visit_newtype_struct(self);
        }
        // Not an array: the visitor says whether it takes what is there (a `Value` does).
        let Value::Array(a) = &self.value else { return self.deserialize_any(v) };
        let shape = a.shape.iter().map(|&d| Value::Int(d as i64)).collect();
        let parts = vec![Value::Str(a.dtype.numpy().into()), Value::List(shape), Value::Bytes(a.data.clone())];
        let path = self.path.clone();
        v.visit_newtype_struct(De { value: Value::List(parts), path: self.path }).map_err(|e| e.at(&path))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let path = self.path.clone();
        let (variant, content) = match self.value {
            Value::Str(s) => (s, None),
            Value::Map(mut items) if items.len() == 1 => {
                let (k, c) = items.pop().expect("one item");
                (k, Some(c))
            }
            _ => return Err(self.fail("an enum variant (a str, or a dict of one key)")),
        };
        let at = format!("{path}.{variant}");
        v.visit_enum(Enum { variant, content, path: at }).map_err(|e| e.at(&path))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::None => v.visit_unit(),
            _ => Err(self.fail("None")),
        }
    }

    forward_to_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_seq deserialize_map deserialize_identifier
        deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_any(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _: &'static str, _: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_any(v)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(v)
    }
}

struct Seq {
    items: std::vec::IntoIter<Value>,
    path: String,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for Seq {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(value) = self.items.next() else { return Ok(None) };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        seed.deserialize(De { value, path: path.clone() }).map(Some).map_err(|e| e.at(&path))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map {
    items: std::vec::IntoIter<(String, Value)>,
    path: String,
    pending: Option<(String, Value)>,
}

impl<'de> de::MapAccess<'de> for Map {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.items.next() else { return Ok(None) };
        let k = seed.deserialize(key.clone().into_deserializer())?;
        self.pending = Some((key, value));
        Ok(Some(k))
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, value) = self.pending.take().ok_or_else(|| de::Error::custom("a map value without its key"))?;
        let path = format!("{}.{key}", self.path);
        seed.deserialize(De { value, path: path.clone() }).map_err(|e| e.at(&path))
    }
}

struct Enum {
    variant: String,
    content: Option<Value>,
    path: String,
}

impl<'de> de::EnumAccess<'de> for Enum {
    type Error = DeError;
    type Variant = Content;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Content), DeError> {
        let tag = seed.deserialize(self.variant.into_deserializer())?;
        Ok((tag, Content { value: self.content, path: self.path }))
    }
}

struct Content {
    value: Option<Value>,
    path: String,
}

impl Content {
    fn de(self) -> De {
        De { value: self.value.unwrap_or(Value::None), path: self.path }
    }
}

impl<'de> de::VariantAccess<'de> for Content {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self.de())
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_any(self.de(), v)
    }
    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], v: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_any(self.de(), v)
    }
}
