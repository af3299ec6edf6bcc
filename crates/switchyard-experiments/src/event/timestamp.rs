//! RFC 3339 timestamps of events (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.250+02:00`).

use std::time::UNIX_EPOCH;

use switchyard_core::Timestamp;

/// Parses an RFC 3339 date-time with `Z` or a numeric offset, to the millisecond.
///
/// `None` for anything else, and for instants before 1970 (timestamps are unsigned).
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let (base, offset_minutes) = split_offset(text)?;
    // humantime reads UTC only; the offset is applied here.
    let utc = humantime::parse_rfc3339(&format!("{base}Z")).ok()?;
    let ms = i64::try_from(utc.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    let ms = ms.checked_sub(offset_minutes * 60_000)?;
    u64::try_from(ms).ok().map(Timestamp::from_millis)
}

/// The date-time without its zone, and the zone's offset east of UTC in minutes.
fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(base) = text.strip_suffix(['Z', 'z']) {
        return Some((base, 0));
    }
    let split = text.len().checked_sub(6)?;
    let (base, zone) = (text.get(..split)?, text.get(split..)?);
    let &[sign, h1, h2, b':', m1, m2] = zone.as_bytes() else {
        return None;
    };
    let sign = match sign {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digit = |b: u8| b.is_ascii_digit().then(|| i64::from(b - b'0'));
    let hours = digit(h1)? * 10 + digit(h2)?;
    let minutes = digit(m1)? * 10 + digit(m2)?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((base, sign * (hours * 60 + minutes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Option<u64> {
        parse_rfc3339(text).map(Timestamp::as_millis)
    }

    #[test]
    fn utc_and_offsets() {
        assert_eq!(ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(ms("2024-05-01T12:00:00Z"), Some(1_714_564_800_000));
        assert_eq!(ms("2024-05-01T14:00:00.250+02:00"), Some(1_714_564_800_250));
        assert_eq!(ms("2024-05-01T07:30:00-04:30"), Some(1_714_564_800_000));
        assert_eq!(ms("2024-05-01T12:00:00.5z"), Some(1_714_564_800_500));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-05-01 12:00:00Z x",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01T12:00:00+25:00",
            "2024-13-01T12:00:00Z",
            "1969-12-31T23:59:59Z",
            "yesterday",
            "2024-05-01T12:00:00+é:00",
        ] {
            assert_eq!(ms(bad), None, "{bad}");
        }
    }
}
