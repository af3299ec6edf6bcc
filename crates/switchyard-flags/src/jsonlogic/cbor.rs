//! Canonical CBOR (RFC 8949 §4.2: shortest integer and float encodings, map keys sorted by their
//! encoding, length first) of a JSON value, as flagd's `fractional` v3 hashes it. Floats with no
//! fractional part in [−2⁶³, 2⁶⁴ − 1] are encoded as integers, as the flagd specification
//! requires.

use super::Val;

/// The canonical encoding of `value`.
pub(super) fn encode(value: &Val) -> Vec<u8> {
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

fn write(value: &Val, out: &mut Vec<u8>) {
    match value {
        Val::Null => out.push(0xf6),
        Val::Bool(false) => out.push(0xf4),
        Val::Bool(true) => out.push(0xf5),
        Val::Int0 => head(0, 0, out),
        Val::Num(x) => number(*x, out),
        Val::Str(s) => {
            head(3, s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
        Val::Arr(items) => {
            head(4, items.len() as u64, out);
            for item in items {
                write(item, out);
            }
        }
        Val::Obj(map) => {
            let mut entries: Vec<(Vec<u8>, &Val)> = map
                .iter()
                .map(|(key, item)| (encode(&Val::Str(key.clone())), item))
                .collect();
            entries.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
            head(5, entries.len() as u64, out);
            for (key, item) in entries {
                out.extend_from_slice(&key);
                write(item, out);
            }
        }
    }
}

/// A major type with its argument in the shortest form.
fn head(major: u8, argument: u64, out: &mut Vec<u8>) {
    let major = major << 5;
    if argument < 24 {
        out.push(major | argument as u8);
    } else if argument <= 0xff {
        out.extend_from_slice(&[major | 24, argument as u8]);
    } else if argument <= 0xffff {
        out.push(major | 25);
        out.extend_from_slice(&(argument as u16).to_be_bytes());
    } else if argument <= 0xffff_ffff {
        out.push(major | 26);
        out.extend_from_slice(&(argument as u32).to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&argument.to_be_bytes());
    }
}

fn number(x: f64, out: &mut Vec<u8>) {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if x.fract() == 0.0 && (-TWO_63..TWO_64).contains(&x) {
        // Exact: x is an integer within 64 bits.
        let n = x as i128;
        if n >= 0 {
            head(0, n as u64, out);
        } else {
            head(1, (-1 - n) as u64, out);
        }
        return;
    }
    if let Some(bits) = half(x) {
        out.push(0xf9);
        out.extend_from_slice(&bits.to_be_bytes());
    } else if f64::from(x as f32) == x || x.is_nan() {
        out.push(0xfa);
        out.extend_from_slice(&(x as f32).to_bits().to_be_bytes());
    } else {
        out.push(0xfb);
        out.extend_from_slice(&x.to_bits().to_be_bytes());
    }
}

/// The IEEE half-precision bits of `x` when it converts without loss.
fn half(x: f64) -> Option<u16> {
    if x.is_nan() {
        return Some(0x7e00);
    }
    let sign = if x.is_sign_negative() { 0x8000u16 } else { 0 };
    let a = x.abs();
    if a.is_infinite() {
        return Some(sign | 0x7c00);
    }
    if a == 0.0 {
        return Some(sign);
    }
    if a > 65504.0 {
        return None;
    }
    // Subnormal halves are multiples of 2⁻²⁴ below 2⁻¹⁴.
    if a < 2f64.powi(-14) {
        let m = a * 2f64.powi(24);
        return (m.fract() == 0.0).then_some(sign | m as u16);
    }
    let exponent = a.log2().floor() as i32;
    // Guard against log2 rounding at powers of two.
    let exponent = if 2f64.powi(exponent) > a {
        exponent - 1
    } else if 2f64.powi(exponent + 1) <= a {
        exponent + 1
    } else {
        exponent
    };
    let scaled = a * 2f64.powi(10 - exponent);
    if scaled.fract() != 0.0 {
        return None;
    }
    let fraction = scaled as u16 - 1024;
    Some(sign | (((exponent + 15) as u16) << 10) | fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_encodings() {
        let hex = |v: Val| {
            encode(&v)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(hex(Val::Num(0.0)), "00");
        assert_eq!(hex(Val::Num(-0.0)), "00");
        assert_eq!(hex(Val::Num(23.0)), "17");
        assert_eq!(hex(Val::Num(24.0)), "1818");
        assert_eq!(hex(Val::Num(256.0)), "190100");
        assert_eq!(hex(Val::Num(-25.0)), "3818");
        assert_eq!(hex(Val::Num(1.5)), "f93e00");
        assert_eq!(hex(Val::Num(65504.5)), "fa477fe080");
        assert_eq!(hex(Val::Num(1.1)), "fb3ff199999999999a");
        assert_eq!(hex(Val::Num(f64::from(f32::MAX))), "fa7f7fffff");
        assert_eq!(hex(Val::Num(5.960_464_477_539_063e-8)), "f90001");
        assert_eq!(hex(Val::Str("a".into())), "6161");
        assert_eq!(hex(Val::Bool(true)), "f5");
        assert_eq!(
            hex(Val::Arr(vec![Val::Str("f".into()), Val::Str("u".into())])),
            "82616661 75".replace(' ', "")
        );
    }
}
