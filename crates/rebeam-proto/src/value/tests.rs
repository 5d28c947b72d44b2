use super::*;

fn sample() -> Value {
    Value::Map(vec![
        ("none".into(), Value::None),
        ("flag".into(), Value::Bool(true)),
        ("n".into(), Value::Int(-7)),
        ("x".into(), Value::Float(1.5)),
        ("s".into(), Value::Str("héllo".into())),
        ("b".into(), Value::Bytes(Bytes::from_static(b"\x00\x01"))),
        ("pose".into(), Value::Array(Array::from_f64(vec![4, 4], &[0.0; 16]).unwrap())),
        (
            "list".into(),
            Value::List(vec![Value::Int(1), Value::Array(Array::from_f64(vec![3], &[1.0, 2.0, 3.0]).unwrap())]),
        ),
    ])
}

#[test]
fn every_kind_round_trips_with_arrays_out_of_band() {
    let payload = encode_value(&sample());
    assert!(is_value(&payload));
    assert_eq!(payload.buffers.len(), 2, "each array's bytes are a buffer of their own");
    assert_eq!(payload.buffers[0].len(), 16 * 8);
    assert_eq!(decode_value(&payload).unwrap(), sample());
}

#[test]
fn the_encoding_is_byte_for_byte_the_wire_trees() {
    // Every kind, nested, arrays at several depths: their numbering must match too.
    let nested = Value::List(vec![sample(), Value::List(vec![]), Value::Map(vec![]), sample()]);
    for value in [sample(), nested, Value::None, Value::Str(String::new())] {
        let mut buffers = Vec::new();
        let mut old = VALUE_TAG.to_vec();
        bincode::serialize_into(&mut old, &to_wire(&value, &mut buffers)).unwrap();
        let payload = encode_value(&value);
        assert_eq!(payload.data[..], old[..]);
        assert_eq!(payload.buffers, buffers);
    }
}

#[test]
fn a_pickle_is_not_taken_for_a_value() {
    let pickle = Payload { data: Bytes::from_static(b"\x80\x05N."), buffers: vec![] };
    assert!(!is_value(&pickle));
    let err = decode_value(&pickle).unwrap_err();
    assert!(err.0.contains("a pickle"), "{err}");
}

#[test]
fn an_array_whose_bytes_do_not_fit_its_shape_is_refused() {
    let err = Array::new(DType::F64, vec![2, 2], Bytes::from_static(&[0; 8])).unwrap_err();
    assert!(err.0.contains("needs 32 bytes, not 8"), "{err}");
    let huge = Array::new(DType::F64, vec![u64::MAX, 2], Bytes::new()).unwrap_err();
    assert!(huge.0.contains("too many"), "{huge}");
}

#[test]
fn a_missing_or_short_buffer_is_refused() {
    let mut payload = encode_value(&Value::Array(Array::from_f64(vec![2], &[1.0, 2.0]).unwrap()));
    payload.buffers[0] = Bytes::from_static(&[0; 4]);
    assert!(decode_value(&payload).unwrap_err().0.contains("needs 16 bytes"));
    payload.buffers.clear();
    assert!(decode_value(&payload).unwrap_err().0.contains("buffer 0"));
}

#[test]
fn garbage_after_the_tag_is_malformed() {
    let payload = Payload { data: Bytes::from_static(b"RBV\x01\xff\xff\xff"), buffers: vec![] };
    assert!(decode_value(&payload).unwrap_err().0.contains("malformed"));
}

#[test]
fn numpy_type_strings_map_both_ways() {
    for d in DType::ALL {
        assert_eq!(DType::from_numpy(d.numpy()), Some(d));
    }
    assert_eq!(DType::from_numpy("=f8"), Some(DType::F64));
    assert_eq!(DType::from_numpy(">f8"), None, "big-endian arrays are converted by the sender");
    assert_eq!(DType::from_numpy("<c16"), None);
}

#[test]
fn float64_items_read_back() {
    let a = Array::from_f64(vec![3], &[1.0, -2.5, 3.0]).unwrap();
    assert_eq!(a.to_f64(), Some(vec![1.0, -2.5, 3.0]));
    let ints = Array::new(DType::I32, vec![1], Bytes::from_static(&[1, 0, 0, 0])).unwrap();
    assert_eq!(ints.to_f64(), None);
}
