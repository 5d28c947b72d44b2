//! Typed values: any `Serialize` type becomes a neutral [`Value`] for Python, and a `Value`
//! from Python becomes any `Deserialize` type.
//!
//! The rules of the mapping (Python sees the right-hand side):
//! - bool, integers (within i64), floats, `char`/`String`, `Option` (None ↔ `None`), unit
//!   (`None`), sequences and tuples (`list`), maps with string keys and structs (`dict`, fields
//!   in declaration order), enums as their variant name or `{variant: content}`;
//!   `serde_bytes`-style byte buffers are `bytes`.
//! - [`NdArray`] is an n-dimensional array (NumPy's `ndarray`); decoding into a sequence type
//!   also accepts an array, read as nested lists of its items (so a `Vec<f64>` or `[[f64; 4]; 4]`
//!   field takes a NumPy array of that shape).
//! - A decode error says where (`$.pose[2]`) and what Python sent, in [`crate::Error::Decode`].

mod de;
mod ser;

pub use de::from_value;
pub use rebeam_proto::value::{Array, DType, Value};
pub use ser::to_value;

/// The name by which [`NdArray`] asks the value serializer for an array rather than a tuple.
pub(crate) use rebeam_proto::value::ARRAY_NEWTYPE as ARRAY_TOKEN;

/// An n-dimensional array in a typed value (NumPy's `ndarray` in Python).
///
/// ```
/// use rebeam::{NdArray, Value};
/// let a = NdArray::from_f64(vec![2, 2], &[1.0, 0.0, 0.0, 1.0]).unwrap();
/// let v = rebeam::to_value(&a).unwrap();
/// assert!(matches!(v, Value::Array(_)));
/// let back: NdArray = rebeam::from_value(v).unwrap();
/// assert_eq!(back.0.shape, vec![2, 2]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray(pub Array);

impl NdArray {
    /// A float64 array of `shape` (C order).
    pub fn from_f64(shape: Vec<u64>, items: &[f64]) -> Result<NdArray, crate::Error> {
        Array::from_f64(shape, items).map(NdArray).map_err(|e| crate::Error::Encode(e.0))
    }

    /// Its items, if float64.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        self.0.to_f64()
    }
}

impl serde::Serialize for NdArray {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = &self.0;
        s.serialize_newtype_struct(ARRAY_TOKEN, &(a.dtype.numpy(), &a.shape, serde_bytes_ref(&a.data)))
    }
}

impl<'de> serde::Deserialize<'de> for NdArray {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<NdArray, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = NdArray;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an n-dimensional array (a NumPy ndarray)")
            }
            fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<NdArray, D::Error> {
                use serde::de::Error as _;
                let (dtype, shape, data): (String, Vec<u64>, ByteBuf) = serde::Deserialize::deserialize(d)?;
                let dtype =
                    DType::from_numpy(&dtype).ok_or_else(|| D::Error::custom(format!("unknown dtype {dtype}")))?;
                Array::new(dtype, shape, data.0.into()).map(NdArray).map_err(|e| D::Error::custom(e.0))
            }
        }
        d.deserialize_newtype_struct(ARRAY_TOKEN, Visit)
    }
}

/// Bytes that serialize as one byte string (not a sequence of numbers).
struct BytesRef<'a>(&'a [u8]);

fn serde_bytes_ref(b: &[u8]) -> BytesRef<'_> {
    BytesRef(b)
}

impl serde::Serialize for BytesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Bytes that deserialize from one byte string.
struct ByteBuf(Vec<u8>);

impl<'de> serde::Deserialize<'de> for ByteBuf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteBuf, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
        }
        d.deserialize_byte_buf(Visit)
    }
}

#[cfg(test)]
#[path = "value/tests.rs"]
mod tests;
