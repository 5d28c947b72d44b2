//! `Serialize` → [`Value`] (the rules are in the `value` module doc).

use serde::ser::{self, Serialize};

use super::{Array, DType, Value, ARRAY_TOKEN};
use crate::Error;

/// `value` as a neutral [`Value`].
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    value.serialize(Ser).map_err(|e| Error::Encode(e.0))
}

/// Why a value could not be encoded.
#[derive(Debug)]
pub(crate) struct SerError(String);

impl std::fmt::Display for SerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SerError {}
impl ser::Error for SerError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        SerError(msg.to_string())
    }
}

struct Ser;

fn int<T: TryInto<i64> + std::fmt::Display + Copy>(v: T) -> Result<Value, SerError> {
    v.try_into().map(Value::Int).map_err(|_| SerError(format!("the integer {v} does not fit in Python's i64 range")))
}

/// An array from the `(dtype, shape, bytes)` tuple [`super::NdArray`] serializes.
fn array_of(v: Value) -> Result<Value, SerError> {
    let bad = || SerError("a malformed NdArray".into());
    let Value::List(parts) = v else { return Err(bad()) };
    let [Value::Str(dtype), Value::List(shape), Value::Bytes(data)] = parts.as_slice() else { return Err(bad()) };
    let dtype = DType::from_numpy(dtype).ok_or_else(bad)?;
    let shape = shape.iter().map(|d| match d {
        Value::Int(n) if *n >= 0 => Ok(*n as u64),
        _ => Err(bad()),
    });
    let array = Array::new(dtype, shape.collect::<Result<_, _>>()?, data.clone()).map_err(|e| SerError(e.0))?;
    Ok(Value::Array(array))
}

impl ser::Serializer for Ser {
    type Ok = Value;
    type Error = SerError;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Variant<Seq>;
    type SerializeMap = Map;
    type SerializeStruct = Map;
    type SerializeStructVariant = Variant<Map>;

    fn serialize_bool(self, v: bool) -> Result<Value, SerError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, SerError> {
        int(v)
    }
    fn serialize_i16(self, v: i16) -> Result<Value, SerError> {
        int(v)
    }
    fn serialize_i32(self, v: i32) -> Result<Value, SerError> {
        int(v)
    }
    fn serialize_i64(self, v: i64) -> Result<Value, SerError> {
        int(v)
    }
    fn serialize_i128(self, v: i128) -> Result<Value, SerError> {
        int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value, SerError> {
        int(v)
    }
    fn serialize_u16(self, v: u16) -> Result<Value, SerError> {
        int(v)
    }
    fn serialize_u32(self, v: u32) -> Result<Value, SerError> {
        int(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Value, SerError> {
        int(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Value, SerError> {
        int(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Value, SerError> {
        Ok(Value::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, SerError> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, SerError> {
        Ok(Value::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, SerError> {
        Ok(Value::Str(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, SerError> {
        Ok(Value::Bytes(v.to_vec().into()))
    }
    fn serialize_none(self) -> Result<Value, SerError> {
        Ok(Value::None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, SerError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, SerError> {
        Ok(Value::None)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, SerError> {
        Ok(Value::None)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<Value, SerError> {
        Ok(Value::Str(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, v: &T) -> Result<Value, SerError> {
        let inner = v.serialize(Ser)?;
        if name == ARRAY_TOKEN {
            return array_of(inner);
        }
        Ok(inner)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, SerError> {
        Ok(Value::Map(vec![(variant.to_owned(), v.serialize(Ser)?)]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, SerError> {
        Ok(Seq(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq, SerError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq, SerError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Seq>, SerError> {
        Ok(Variant { name: variant, inner: Seq(Vec::with_capacity(len)) })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Map, SerError> {
        Ok(Map { items: Vec::with_capacity(len.unwrap_or(0)), key: None })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Map, SerError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Map>, SerError> {
        Ok(Variant { name: variant, inner: self.serialize_map(Some(len))? })
    }
}

pub(crate) struct Seq(Vec<Value>);

impl ser::SerializeSeq for Seq {
    type Ok = Value;
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), SerError> {
        self.0.push(v.serialize(Ser)?);
        Ok(())
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(Value::List(self.0))
    }
}

impl ser::SerializeTuple for Seq {
    type Ok = Value;
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), SerError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, SerError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Seq {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), SerError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, SerError> {
        ser::SerializeSeq::end(self)
    }
}

pub(crate) struct Map {
    items: Vec<(String, Value)>,
    key: Option<String>,
}

impl ser::SerializeMap for Map {
    type Ok = Value;
    type Error = SerError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), SerError> {
        self.key = Some(match k.serialize(Ser)? {
            Value::Str(s) => s,
            other => return Err(SerError(format!("map keys must be strings for Python, not {other:?}"))),
        });
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), SerError> {
        let key = self.key.take().ok_or_else(|| SerError("a map value without its key".into()))?;
        self.items.push((key, v.serialize(Ser)?));
        Ok(())
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(Value::Map(self.items))
    }
}

impl ser::SerializeStruct for Map {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), SerError> {
        self.items.push((key.to_owned(), v.serialize(Ser)?));
        Ok(())
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(Value::Map(self.items))
    }
}

/// An enum variant with content: `{variant: content}`.
pub(crate) struct Variant<T> {
    name: &'static str,
    inner: T,
}

impl ser::SerializeTupleVariant for Variant<Seq> {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), SerError> {
        ser::SerializeSeq::serialize_element(&mut self.inner, v)
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(Value::Map(vec![(self.name.to_owned(), ser::SerializeSeq::end(self.inner)?)]))
    }
}

impl ser::SerializeStructVariant for Variant<Map> {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), SerError> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, v)
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(Value::Map(vec![(self.name.to_owned(), ser::SerializeStruct::end(self.inner)?)]))
    }
}
