//! Geometry as the robotics seed specifies it, as NumPy arrays in Python, all float64:
//!
//! | Rust          | Python (NumPy)  | layout                         |
//! |---------------|-----------------|--------------------------------|
//! | [`Vec3`]      | `(3,)`          | x, y, z                        |
//! | [`Quaternion`]| `(4,)`          | w, x, y, z                     |
//! | [`Transform`] | `(4, 4)`        | row-major homogeneous matrix   |
//!
//! Decoding takes a float64 array of exactly that shape, or (from hand-written Python) a list
//! of numbers nested the same way; anything else is an error that says which shape was
//! expected and what came.
//!
//! ```
//! use rebeam::geometry::{Transform, Vec3};
//! let t = Transform::translation(Vec3 { x: 1.0, y: 2.0, z: 3.0 });
//! let v = rebeam::to_value(&t).unwrap();
//! let back: Transform = rebeam::from_value(v).unwrap();
//! assert_eq!(back.0[1][3], 2.0);
//! ```

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::value::{Array, DType, NdArray, Value};

/// A point or direction: NumPy `(3,)` float64, x, y, z.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[allow(missing_docs)] // x, y, z say it
pub struct Vec3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

/// A rotation: NumPy `(4,)` float64 in w, x, y, z order.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)] // w, x, y, z say it
pub struct Quaternion {
    pub w: f64,
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

impl Default for Quaternion {
    /// The identity rotation.
    fn default() -> Self {
        Quaternion { w: 1.0, x: 0.0, y: 0.0, z: 0.0 }
    }
}

/// A rigid transform: NumPy `(4, 4)` float64, row-major (`self.0[row][column]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform(pub [[f64; 4]; 4]);

impl Default for Transform {
    /// The identity transform.
    fn default() -> Self {
        let mut m = [[0.0; 4]; 4];
        for (i, row) in m.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        Transform(m)
    }
}

impl Transform {
    /// A pure translation by `t`.
    pub fn translation(t: Vec3) -> Transform {
        let mut m = Transform::default();
        m.0[0][3] = t.x;
        m.0[1][3] = t.y;
        m.0[2][3] = t.z;
        m
    }
}

fn ser<S: Serializer>(shape: Vec<u64>, items: &[f64], s: S) -> Result<S::Ok, S::Error> {
    let array = Array::from_f64(shape, items).map_err(|e| serde::ser::Error::custom(e.0))?;
    NdArray(array).serialize(s)
}

/// The items of a float64 array of `shape`, or of numbers nested as that shape.
fn items<'de, D: Deserializer<'de>>(d: D, shape: &[u64]) -> Result<Vec<f64>, D::Error> {
    let value = Value::deserialize(d)?;
    let wrong =
        |got: String| D::Error::custom(format!("expected a float64 array of shape {shape:?}, Python sent {got}"));
    match &value {
        Value::Array(a) if a.dtype == DType::F64 && a.shape == shape => Ok(a.to_f64().expect("float64")),
        Value::Array(a) => Err(wrong(format!("an array of dtype {} and shape {:?}", a.dtype.numpy(), a.shape))),
        Value::List(_) => {
            let mut out = Vec::new();
            flatten(&value, shape, &mut out).then_some(out).ok_or_else(|| wrong(format!("{value:?}")))
        }
        other => Err(wrong(format!("{other:?}"))),
    }
}

/// Whether `v` is numbers nested exactly as `shape`, appending them to `out`.
fn flatten(v: &Value, shape: &[u64], out: &mut Vec<f64>) -> bool {
    match (v, shape) {
        (Value::Float(f), []) => {
            out.push(*f);
            true
        }
        (Value::Int(i), []) => {
            out.push(*i as f64);
            true
        }
        (Value::List(items), [n, rest @ ..]) => items.len() as u64 == *n && items.iter().all(|i| flatten(i, rest, out)),
        _ => false,
    }
}

impl Serialize for Vec3 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser(vec![3], &[self.x, self.y, self.z], s)
    }
}

impl<'de> Deserialize<'de> for Vec3 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Vec3, D::Error> {
        let v = items(d, &[3])?;
        Ok(Vec3 { x: v[0], y: v[1], z: v[2] })
    }
}

impl Serialize for Quaternion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser(vec![4], &[self.w, self.x, self.y, self.z], s)
    }
}

impl<'de> Deserialize<'de> for Quaternion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Quaternion, D::Error> {
        let v = items(d, &[4])?;
        Ok(Quaternion { w: v[0], x: v[1], y: v[2], z: v[3] })
    }
}

impl Serialize for Transform {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let flat: Vec<f64> = self.0.iter().flatten().copied().collect();
        ser(vec![4, 4], &flat, s)
    }
}

impl<'de> Deserialize<'de> for Transform {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Transform, D::Error> {
        let v = items(d, &[4, 4])?;
        let mut m = [[0.0; 4]; 4];
        for (i, x) in v.into_iter().enumerate() {
            m[i / 4][i % 4] = x;
        }
        Ok(Transform(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{from_value, to_value, Error};

    #[test]
    fn each_type_is_a_float64_array_of_its_shape() {
        let cases: [(Value, Vec<u64>); 3] = [
            (to_value(&Vec3 { x: 1.0, y: 2.0, z: 3.0 }).unwrap(), vec![3]),
            (to_value(&Quaternion::default()).unwrap(), vec![4]),
            (to_value(&Transform::default()).unwrap(), vec![4, 4]),
        ];
        for (v, shape) in cases {
            let Value::Array(a) = v else { panic!("{v:?}") };
            assert_eq!((a.dtype, a.shape), (DType::F64, shape));
        }
        let Value::Array(q) = to_value(&Quaternion { w: 0.5, x: 1.0, y: 2.0, z: 3.0 }).unwrap() else { panic!() };
        assert_eq!(q.to_f64().unwrap(), [0.5, 1.0, 2.0, 3.0], "w first");
    }

    #[test]
    fn a_transform_is_row_major_both_ways() {
        let t = Transform::translation(Vec3 { x: 1.0, y: 2.0, z: 3.0 });
        let Value::Array(a) = to_value(&t).unwrap() else { panic!() };
        let items = a.to_f64().unwrap();
        assert_eq!((items[3], items[7], items[11], items[15]), (1.0, 2.0, 3.0, 1.0));
        assert_eq!(from_value::<Transform>(Value::Array(a)).unwrap(), t);
    }

    #[test]
    fn nested_lists_of_numbers_are_accepted() {
        let list = Value::List(vec![Value::Int(1), Value::Float(2.5), Value::Int(3)]);
        assert_eq!(from_value::<Vec3>(list).unwrap(), Vec3 { x: 1.0, y: 2.5, z: 3.0 });
    }

    #[test]
    fn the_wrong_shape_or_dtype_is_named() {
        let four = Value::Array(Array::from_f64(vec![4], &[0.0; 4]).unwrap());
        let err = from_value::<Vec3>(four).unwrap_err();
        let Error::Decode { why, .. } = &err else { panic!("{err}") };
        assert!(why.contains("shape [3]") && why.contains("shape [4]"), "{why}");
        let ints = Value::Array(Array::new(DType::I64, vec![3], vec![0u8; 24].into()).unwrap());
        assert!(from_value::<Vec3>(ints).unwrap_err().to_string().contains("dtype <i8"));
        let short = Value::List(vec![Value::Int(1)]);
        assert!(from_value::<Vec3>(short).is_err());
    }
}
