//! A minimal pickle writer, so the governor can publish small values to Python (safety
//! transitions) without linking Python: a dict of str keys to str, int, float or None.
//!
//! Protocol 2 opcodes only: PROTO, EMPTY_DICT, MARK, BINUNICODE, LONG1, BINFLOAT, NONE,
//! SETITEMS, STOP; any CPython ≥ 2.3 loads it.

/// A value the governor can pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum PickleValue {
    Str(String),
    Int(i128),
    Float(f64),
    None,
}

/// Pickles `{key: value, ...}` in order.
pub fn pickle_map(items: &[(&str, PickleValue)]) -> Vec<u8> {
    let mut out = vec![0x80, 2, b'}'];
    if !items.is_empty() {
        out.push(b'(');
        for (k, v) in items {
            push_str(&mut out, k);
            match v {
                PickleValue::Str(s) => push_str(&mut out, s),
                PickleValue::Int(i) => push_int(&mut out, *i),
                PickleValue::Float(f) => {
                    out.push(b'G');
                    out.extend_from_slice(&f.to_be_bytes());
                }
                PickleValue::None => out.push(b'N'),
            }
        }
        out.push(b'u');
    }
    out.push(b'.');
    out
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// LONG1: little-endian two's complement, shortest form.
fn push_int(out: &mut Vec<u8>, i: i128) {
    let bytes = i.to_le_bytes();
    let mut n = bytes.len();
    while n > 1 {
        let top = bytes[n - 1];
        let next_sign = bytes[n - 2] & 0x80;
        if (top == 0 && next_sign == 0) || (top == 0xff && next_sign != 0) {
            n -= 1;
        } else {
            break;
        }
    }
    if i == 0 {
        n = 0;
    }
    out.push(0x8a);
    out.push(n as u8);
    out.extend_from_slice(&bytes[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_dict() {
        assert_eq!(pickle_map(&[]), b"\x80\x02}.");
    }

    #[test]
    fn ints_use_the_shortest_two_complement_form() {
        let mut v = Vec::new();
        push_int(&mut v, 0);
        assert_eq!(v, [0x8a, 0]);
        v.clear();
        push_int(&mut v, 255);
        assert_eq!(v, [0x8a, 2, 0xff, 0]);
        v.clear();
        push_int(&mut v, -1);
        assert_eq!(v, [0x8a, 1, 0xff]);
        v.clear();
        push_int(&mut v, 1 << 40);
        assert_eq!(v, [0x8a, 6, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn a_map_of_every_kind() {
        let p = pickle_map(&[("a", PickleValue::Str("b".into())), ("n", PickleValue::None)]);
        assert_eq!(p, b"\x80\x02}(X\x01\x00\x00\x00aX\x01\x00\x00\x00bX\x01\x00\x00\x00nNu.");
    }
}
