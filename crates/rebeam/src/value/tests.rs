use serde::{Deserialize, Serialize};

use super::*;
use crate::Error;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Mode {
    Hold,
    Track { gain: f64 },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Tick {
    seq: u32,
    name: String,
    joints: Vec<f64>,
    pose: NdArray,
    limit: Option<f64>,
    mode: Mode,
    pair: (i64, bool),
}

fn tick() -> Tick {
    Tick {
        seq: 7,
        name: "arm".into(),
        joints: vec![0.1, 0.2],
        pose: NdArray::from_f64(vec![2, 2], &[1.0, 0.0, 0.0, 1.0]).unwrap(),
        limit: None,
        mode: Mode::Track { gain: 2.0 },
        pair: (-3, true),
    }
}

#[test]
fn a_struct_is_a_map_in_field_order_and_round_trips() {
    let v = to_value(&tick()).unwrap();
    let Value::Map(items) = &v else { panic!("{v:?}") };
    let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["seq", "name", "joints", "pose", "limit", "mode", "pair"]);
    assert!(matches!(items[3].1, Value::Array(_)), "an NdArray is an array, not a tuple");
    assert_eq!(items[4].1, Value::None);
    assert_eq!(items[5].1, Value::Map(vec![("Track".into(), Value::Map(vec![("gain".into(), Value::Float(2.0))]))]));
    assert_eq!(from_value::<Tick>(v).unwrap(), tick());
    assert_eq!(from_value::<Mode>(to_value(&Mode::Hold).unwrap()).unwrap(), Mode::Hold);
}

#[test]
fn an_array_reads_into_sequences_of_its_shape() {
    let a = Value::Array(Array::from_f64(vec![2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap());
    let rows: [[f64; 3]; 2] = from_value(a.clone()).unwrap();
    assert_eq!(rows, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let ints =
        Value::Array(Array::new(DType::I32, vec![3], vec![1, 0, 0, 0, 255, 255, 255, 255, 2, 0, 0, 0].into()).unwrap());
    assert_eq!(from_value::<Vec<i64>>(ints).unwrap(), vec![1, -1, 2]);
    let err = from_value::<Vec<Vec<bool>>>(a).unwrap_err();
    assert!(matches!(&err, Error::Decode { path, .. } if path == "$[0][0]"), "{err}");
}

#[test]
fn a_decode_error_names_the_field_and_what_python_sent() {
    let mut v = to_value(&tick()).unwrap();
    if let Value::Map(items) = &mut v {
        items[2].1 = Value::List(vec![Value::Float(0.1), Value::Str("oops".into())]);
    }
    let err = from_value::<Tick>(v).unwrap_err();
    let Error::Decode { path, why } = &err else { panic!("{err}") };
    assert_eq!(path, "$.joints[1]");
    assert!(why.contains("oops"), "{why}");
    let missing = from_value::<Tick>(Value::Map(vec![])).unwrap_err();
    assert!(missing.to_string().contains("missing field `seq`"), "{missing}");
    let wrong = from_value::<NdArray>(Value::Int(3)).unwrap_err();
    assert!(wrong.to_string().contains("integer `3`"), "{wrong}");
}

#[test]
fn a_value_is_itself_serde_both_ways_arrays_included() {
    let v = to_value(&tick()).unwrap();
    assert_eq!(to_value(&v).unwrap(), v);
    assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
}

#[test]
fn values_python_cannot_hold_are_refused_on_the_way_out() {
    let big = to_value(&u64::MAX).unwrap_err();
    assert!(big.to_string().contains("does not fit"), "{big}");
    let mut keyed = std::collections::BTreeMap::new();
    keyed.insert(1u8, "x");
    assert!(to_value(&keyed).unwrap_err().to_string().contains("map keys must be strings"));
}
