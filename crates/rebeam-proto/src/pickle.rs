//! A minimal pickle writer, so the governor can publish small values to Python (safety
//! transitions) without linking Python: a dict of str keys to str, int, float or None.
//!
//! Protocol 2 opcodes only: PROTO, EMPTY_DICT, MARK, BINUNICODE, LONG1, BINFLOAT, NONE,
//! SETITEMS, STOP; any CPython ≥ 2.3 loads it. [`unpickle_map`] reads exactly that back.

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

/// Reads back what [`pickle_map`] writes (a host that subscribes to the governor's own
/// publications reads them without Python): exactly its opcodes, else None.
pub fn unpickle_map(data: &[u8]) -> Option<Vec<(String, PickleValue)>> {
    let mut at = data.strip_prefix(&[0x80, 2, b'}'])?;
    let mut items = Vec::new();
    if let Some(rest) = at.strip_prefix(b"(") {
        at = rest;
        while at.first() != Some(&b'u') {
            let (key, rest) = read_str(at)?;
            let (value, rest) = read_value(rest)?;
            items.push((key, value));
            at = rest;
        }
        at = &at[1..];
    }
    (at == b".").then_some(items)
}

fn read_str(at: &[u8]) -> Option<(String, &[u8])> {
    let rest = at.strip_prefix(b"X")?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let text = std::str::from_utf8(rest.get(4..4 + len)?).ok()?;
    Some((text.to_owned(), &rest[4 + len..]))
}

fn read_value(at: &[u8]) -> Option<(PickleValue, &[u8])> {
    match *at.first()? {
        b'X' => read_str(at).map(|(s, rest)| (PickleValue::Str(s), rest)),
        b'N' => Some((PickleValue::None, &at[1..])),
        b'G' => Some((PickleValue::Float(f64::from_be_bytes(at.get(1..9)?.try_into().ok()?)), &at[9..])),
        0x8a => {
            let n = *at.get(1)? as usize;
            let bytes = at.get(2..2 + n)?;
            if n > 16 {
                return None;
            }
            let fill = if bytes.last().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
            let mut full = [fill; 16];
            full[..n].copy_from_slice(bytes);
            Some((PickleValue::Int(i128::from_le_bytes(full)), &at[2 + n..]))
        }
        _ => None,
    }
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

    #[test]
    fn what_pickle_map_writes_reads_back() {
        let items = vec![
            ("from".to_string(), PickleValue::Str("armed".into())),
            ("n".to_string(), PickleValue::Int(-300)),
            ("big".to_string(), PickleValue::Int(1 << 70)),
            ("zero".to_string(), PickleValue::Int(0)),
            ("x".to_string(), PickleValue::Float(1.5)),
            ("none".to_string(), PickleValue::None),
        ];
        let borrowed: Vec<(&str, PickleValue)> = items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        assert_eq!(unpickle_map(&pickle_map(&borrowed)), Some(items));
        assert_eq!(unpickle_map(&pickle_map(&[])), Some(vec![]));
    }

    #[test]
    fn anything_else_is_not_read() {
        assert_eq!(unpickle_map(b"\x80\x05N."), None);
        let mut cut = pickle_map(&[("a", PickleValue::Str("b".into()))]);
        cut.truncate(cut.len() - 3);
        assert_eq!(unpickle_map(&cut), None);
        assert_eq!(unpickle_map(b"\x80\x02}(X\x01\x00\x00\x00aZu."), None, "an unknown opcode");
    }
}
