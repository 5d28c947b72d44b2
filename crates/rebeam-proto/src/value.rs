//! The neutral value model: how a Rust host and Python exchange values without pickle.
//!
//! The rules:
//! - A [`Value`] is none, bool, int (i64), float (f64), str, bytes, a list, a map with str keys
//!   (in order), or an n-dimensional [`Array`] (dtype, shape, C-order little-endian bytes).
//! - On the wire it is a [`Payload`] whose data opens with [`VALUE_TAG`] and holds the bincode
//!   of the value with each array's bytes taken out into the payload's buffers, in order, so
//!   an array crosses without being copied into the structure. A pickle always opens with its
//!   PROTO opcode (0x80), never with the tag, so the two cannot be confused.
//! - Python answers a tagged request with a tagged reply (see rebeam-py's `value` module).
//! - Decoding checks what it is given: an array's bytes must be shape × item size, and a
//!   buffer index must exist; anything else is [`ValueError`] naming what was wrong.

use std::cell::Cell;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::Payload;

/// What a neutral-value payload's data opens with ("RBV" and the format's version).
pub const VALUE_TAG: &[u8; 4] = b"RBV\x01";

/// The one key of the map that stands for an opaque handle: a Python object kept in its
/// worker (see the `rebeam` crate's `Handle` and Python's `rebeam.handle`). The worker puts the
/// object in its place when it decodes a host's message.
pub const HANDLE_KEY: &str = "__rebeam_handle__";
/// The subject of the cast by which a host releases a handle: the holder's worker takes it
/// before any of the actor's handlers.
pub const HANDLE_RELEASE: &str = "rebeam.release_handle";

/// A value in the neutral model.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Bytes),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
    Array(Array),
}

/// An n-dimensional array, as NumPy holds one: C order, little-endian items.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub data: Bytes,
}

/// An array's item type (NumPy's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DType {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

impl DType {
    pub fn item_bytes(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// NumPy's type string (`"<f8"`, `"|b1"`, …).
    pub fn numpy(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::I8 => "|i1",
            DType::I16 => "<i2",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::U8 => "|u1",
            DType::U16 => "<u2",
            DType::U32 => "<u4",
            DType::U64 => "<u8",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }

    /// Every dtype the value model carries.
    pub const ALL: [DType; 11] = [
        DType::Bool,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F32,
        DType::F64,
    ];

    /// The dtype of a NumPy type string, little-endian or byte-sized only.
    pub fn from_numpy(s: &str) -> Option<DType> {
        let s = s.replace('=', "<"); // native order is little-endian on every platform rebeam runs on
        DType::ALL.into_iter().find(|d| d.numpy() == s)
    }
}

impl Array {
    /// An array, checked: `data` must hold exactly shape × item size bytes.
    pub fn new(dtype: DType, shape: Vec<u64>, data: Bytes) -> Result<Array, ValueError> {
        let items = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        let want = items.and_then(|n| n.checked_mul(dtype.item_bytes() as u64));
        if want != Some(data.len() as u64) {
            return Err(ValueError(format!(
                "an array of dtype {} and shape {shape:?} needs {} bytes, not {}",
                dtype.numpy(),
                want.map_or("too many".to_string(), |w| w.to_string()),
                data.len()
            )));
        }
        Ok(Array { dtype, shape, data })
    }

    /// A float64 array of `shape` from `items` (C order).
    pub fn from_f64(shape: Vec<u64>, items: &[f64]) -> Result<Array, ValueError> {
        let data: Vec<u8> = items.iter().flat_map(|x| x.to_le_bytes()).collect();
        Array::new(DType::F64, shape, Bytes::from(data))
    }

    /// The items as f64, if the dtype is float64.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        (self.dtype == DType::F64)
            .then(|| self.data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    }
}

/// A value that could not be encoded or decoded, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

/// The value's structure on the wire: arrays refer to payload buffers by index. Encoding
/// writes it straight from the [`Value`] ([`OnWire`]); decoding reads it.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
enum Wire {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Bytes),
    List(Vec<Wire>),
    Map(Vec<(String, Wire)>),
    Array { dtype: DType, shape: Vec<u64>, buffer: u32 },
}

/// [`Wire`]'s encoding of a value, written from the value itself: the very serializer calls
/// `#[derive(Serialize)]` makes for `Wire` (so the bytes are the same, which a test pins),
/// without first building a `Wire` tree (every string copied, a vector per list), which cost a
/// Rust host's call and its Python reply each an allocation per item. Arrays are numbered in
/// the order met, depth first, as [`arrays`] collects their buffers.
struct OnWire<'a> {
    value: &'a Value,
    next_buffer: &'a Cell<u32>,
}

impl Serialize for OnWire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeSeq, SerializeStructVariant, SerializeTuple};
        match self.value {
            Value::None => s.serialize_unit_variant("Wire", 0, "None"),
            Value::Bool(b) => s.serialize_newtype_variant("Wire", 1, "Bool", b),
            Value::Int(i) => s.serialize_newtype_variant("Wire", 2, "Int", i),
            Value::Float(f) => s.serialize_newtype_variant("Wire", 3, "Float", f),
            Value::Str(v) => s.serialize_newtype_variant("Wire", 4, "Str", v.as_str()),
            Value::Bytes(b) => s.serialize_newtype_variant("Wire", 5, "Bytes", b),
            Value::List(items) => {
                struct Items<'a>(&'a [Value], &'a Cell<u32>);
                impl Serialize for Items<'_> {
                    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                        let mut seq = s.serialize_seq(Some(self.0.len()))?;
                        for value in self.0 {
                            seq.serialize_element(&OnWire { value, next_buffer: self.1 })?;
                        }
                        seq.end()
                    }
                }
                s.serialize_newtype_variant("Wire", 6, "List", &Items(items, self.next_buffer))
            }
            Value::Map(items) => {
                struct Entries<'a>(&'a [(String, Value)], &'a Cell<u32>);
                impl Serialize for Entries<'_> {
                    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                        let mut seq = s.serialize_seq(Some(self.0.len()))?;
                        for (key, value) in self.0 {
                            seq.serialize_element(&Entry(key, OnWire { value, next_buffer: self.1 }))?;
                        }
                        seq.end()
                    }
                }
                struct Entry<'a>(&'a str, OnWire<'a>);
                impl Serialize for Entry<'_> {
                    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                        let mut pair = s.serialize_tuple(2)?;
                        pair.serialize_element(self.0)?;
                        pair.serialize_element(&self.1)?;
                        pair.end()
                    }
                }
                s.serialize_newtype_variant("Wire", 7, "Map", &Entries(items, self.next_buffer))
            }
            Value::Array(a) => {
                let buffer = self.next_buffer.get();
                self.next_buffer.set(buffer + 1);
                let mut v = s.serialize_struct_variant("Wire", 8, "Array", 3)?;
                v.serialize_field("dtype", &a.dtype)?;
                v.serialize_field("shape", &a.shape)?;
                v.serialize_field("buffer", &buffer)?;
                v.end()
            }
        }
    }
}

/// The arrays' buffers of `v`, in the order [`OnWire`] numbers them.
fn arrays(v: &Value, buffers: &mut Vec<Bytes>) {
    match v {
        Value::List(items) => items.iter().for_each(|i| arrays(i, buffers)),
        Value::Map(items) => items.iter().for_each(|(_, i)| arrays(i, buffers)),
        Value::Array(a) => buffers.push(a.data.clone()),
        _ => {}
    }
}

/// `v` as a [`Wire`] tree: what the encoding was written from before [`OnWire`], kept to pin
/// that the two give the same bytes.
#[cfg(test)]
fn to_wire(v: &Value, buffers: &mut Vec<Bytes>) -> Wire {
    match v {
        Value::None => Wire::None,
        Value::Bool(b) => Wire::Bool(*b),
        Value::Int(i) => Wire::Int(*i),
        Value::Float(f) => Wire::Float(*f),
        Value::Str(s) => Wire::Str(s.clone()),
        Value::Bytes(b) => Wire::Bytes(b.clone()),
        Value::List(items) => Wire::List(items.iter().map(|i| to_wire(i, buffers)).collect()),
        Value::Map(items) => Wire::Map(items.iter().map(|(k, v)| (k.clone(), to_wire(v, buffers))).collect()),
        Value::Array(a) => {
            buffers.push(a.data.clone());
            Wire::Array { dtype: a.dtype, shape: a.shape.clone(), buffer: (buffers.len() - 1) as u32 }
        }
    }
}

fn from_wire(w: Wire, buffers: &[Bytes]) -> Result<Value, ValueError> {
    Ok(match w {
        Wire::None => Value::None,
        Wire::Bool(b) => Value::Bool(b),
        Wire::Int(i) => Value::Int(i),
        Wire::Float(f) => Value::Float(f),
        Wire::Str(s) => Value::Str(s),
        Wire::Bytes(b) => Value::Bytes(b),
        Wire::List(items) => Value::List(items.into_iter().map(|i| from_wire(i, buffers)).collect::<Result<_, _>>()?),
        Wire::Map(items) => Value::Map(
            items.into_iter().map(|(k, v)| Ok((k, from_wire(v, buffers)?))).collect::<Result<_, ValueError>>()?,
        ),
        Wire::Array { dtype, shape, buffer } => {
            let data = buffers.get(buffer as usize).cloned().ok_or_else(|| {
                ValueError(format!("an array refers to buffer {buffer}, but the payload has {}", buffers.len()))
            })?;
            Value::Array(Array::new(dtype, shape, data)?)
        }
    })
}

/// Whether `payload` holds a neutral value (rather than a pickle).
pub fn is_value(payload: &Payload) -> bool {
    payload.data.starts_with(VALUE_TAG)
}

/// What an encoding's vector starts with room for: a control step's few numbers, with no
/// reallocation on the way.
const ENCODED_GUESS_BYTES: usize = 128;

/// `value` as a tagged payload.
pub fn encode_value(value: &Value) -> Payload {
    let mut buffers = Vec::new();
    arrays(value, &mut buffers);
    let mut data = Vec::with_capacity(ENCODED_GUESS_BYTES);
    data.extend_from_slice(VALUE_TAG);
    let next_buffer = Cell::new(0);
    bincode::serialize_into(&mut data, &OnWire { value, next_buffer: &next_buffer })
        .expect("a Vec accepts every write");
    debug_assert_eq!(next_buffer.get() as usize, buffers.len());
    Payload { data: Bytes::from(data), buffers }
}

/// The value in a tagged payload.
pub fn decode_value(payload: &Payload) -> Result<Value, ValueError> {
    let Some(body) = payload.data.strip_prefix(VALUE_TAG) else {
        let what = if payload.data.first() == Some(&0x80) { "a pickle" } else { "not a rebeam value" };
        return Err(ValueError(format!("the payload is {what} (it does not open with the value tag)")));
    };
    let wire: Wire = bincode::deserialize(body).map_err(|e| ValueError(format!("a malformed value: {e}")))?;
    from_wire(wire, &payload.buffers)
}

#[cfg(test)]
#[path = "value/tests.rs"]
mod tests;

/// The newtype name under which an [`Array`] travels through serde, as `(dtype, shape,
/// bytes)`: a serializer that knows it (the Rust host's) makes an array of it, any other sees
/// the tuple.
pub const ARRAY_NEWTYPE: &str = "$rebeam::NdArray";

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Value::None => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(v) => s.serialize_str(v),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(items) => {
                let mut map = s.serialize_map(Some(items.len()))?;
                for (k, v) in items {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Array(a) => {
                s.serialize_newtype_struct(ARRAY_NEWTYPE, &(a.dtype.numpy(), &a.shape, &RawBytes(&a.data)))
            }
        }
    }
}

struct RawBytes<'a>(&'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        // Asked as the array newtype, so that a deserializer that knows arrays hands one over.
        d.deserialize_newtype_struct(ARRAY_NEWTYPE, ValueVisitor)
    }
}

struct ValueVisitor;

/// A [`Value`] read with `deserialize_any`, for the content of the array newtype.
struct AnyValue;

impl<'de> serde::de::DeserializeSeed<'de> for AnyValue {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// `[dtype, shape, bytes]` as an array, if it is one.
fn as_array(parts: &[Value]) -> Option<Array> {
    let [Value::Str(dtype), Value::List(shape), Value::Bytes(data)] = parts else { return None };
    let shape = shape.iter().map(|d| if let Value::Int(n) = d { u64::try_from(*n).ok() } else { None });
    Array::new(DType::from_numpy(dtype)?, shape.collect::<Option<_>>()?, data.clone()).ok()
}

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a value of the neutral model")
    }
    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let inner = serde::de::DeserializeSeed::deserialize(AnyValue, d)?;
        Ok(match inner {
            Value::List(parts) => as_array(&parts).map_or(Value::List(parts), Value::Array),
            other => other,
        })
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v).map(Value::Int).map_err(|_| E::custom(format!("the integer {v} does not fit in i64")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(Bytes::copy_from_slice(v)))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v.into()))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            items.push((k, v));
        }
        Ok(Value::Map(items))
    }
}
