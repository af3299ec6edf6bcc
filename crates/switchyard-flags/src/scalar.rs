//! Parsers for operand and attribute scalars: RFC 3339 dates, CIDR blocks, numbers, semvers.
//! Shared by the compiler (operands, once) and the matcher (attributes, per evaluation), so both
//! sides agree on what is valid.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Parses an RFC 3339 date-time (`2022-01-29T13:00:00.000Z`, `...+02:00`) to Unix milliseconds.
/// A bare date (`2022-01-29`) is midnight UTC.
pub fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    let bytes = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = bytes.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let year = num(0..4)?;
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    let (month, day) = (num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if bytes.len() == 10 {
        return Some(days * 86_400_000);
    }
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) || bytes.get(13) != Some(&b':') {
        return None;
    }
    let (hour, minute) = (num(11..13)?, num(14..16)?);
    if bytes.get(16) != Some(&b':') {
        return None;
    }
    let second = num(17..19)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut index = 19;
    let mut millis = 0i64;
    if bytes.get(index) == Some(&b'.') {
        index += 1;
        let start = index;
        while bytes.get(index).is_some_and(u8::is_ascii_digit) {
            if index - start < 3 {
                millis = millis * 10 + i64::from(bytes[index] - b'0');
            }
            index += 1;
        }
        if index == start {
            return None;
        }
        for _ in (index - start)..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match bytes.get(index) {
        Some(b'Z' | b'z') if bytes.len() == index + 1 => 0,
        Some(sign @ (b'+' | b'-')) if bytes.len() == index + 6 && bytes[index + 3] == b':' => {
            let minutes = num(index + 1..index + 3)? * 60 + num(index + 4..index + 6)?;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days-from-civil: days since 1970-01-01 for a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A CIDR block (a bare address is a single-host block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `::1/128` or a bare address.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { network, prefix })
    }

    /// Whether `address` is inside the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(addr) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(addr) & mask
            }
            _ => false,
        }
    }
}

/// Parses a number the way Unleash does: surrounding whitespace ignored, finite values only.
pub fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A stack buffer for formatting numbers as strings without allocating.
#[derive(Debug)]
pub struct NumberText {
    buf: [u8; 48],
    len: usize,
}

impl NumberText {
    /// Formats `n` as JSON would for integers (`5`, not `5.0`) and as Rust does otherwise.
    pub fn new(n: f64) -> Self {
        let mut text = Self {
            buf: [0; 48],
            len: 0,
        };
        // Integers below 2^53 are exact in f64, so printing them through i64 is lossless.
        let result = if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
            write!(text, "{}", n as i64)
        } else {
            write!(text, "{n}")
        };
        if result.is_err() {
            text.len = 0;
        }
        text
    }

    /// The formatted text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for NumberText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_millis("2022-01-29T13:00:00.000Z"),
            Some(1_643_461_200_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2022-01-22T13:00:00.000+02:00"),
            parse_rfc3339_millis("2022-01-22T11:00:00Z")
        );
        assert_eq!(
            parse_rfc3339_millis("2022-01-22T11:00:00.5Z"),
            Some(1_642_849_200_500)
        );
        assert_eq!(parse_rfc3339_millis("2022-02-30T11:00:00Z"), None);
        assert_eq!(parse_rfc3339_millis("yesterday"), None);
        assert_eq!(parse_rfc3339_millis("2024-02-29"), Some(1_709_164_800_000));
    }

    #[test]
    fn cidr() {
        let block = Cidr::parse("10.0.0.0/8").expect("valid");
        assert!(block.contains("10.1.2.3".parse().expect("ip")));
        assert!(!block.contains("11.1.2.3".parse().expect("ip")));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .expect("valid")
                .contains("1.2.3.4".parse().expect("ip"))
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(
            Cidr::parse("::1")
                .expect("v6")
                .contains("::1".parse().expect("ip"))
        );
    }

    #[test]
    fn numbers_format_without_allocating() {
        assert_eq!(NumberText::new(5.0).as_str(), "5");
        assert_eq!(NumberText::new(-1.5).as_str(), "-1.5");
    }
}
