//! Parsers for operand and attribute scalars: RFC 3339 dates, CIDR blocks, numbers, semvers.
//! Shared by the compiler (operands, once) and the matcher (attributes, per evaluation), so both
//! sides agree on what is valid.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

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

/// A CIDR block (a bare address is a single-host block), kept as the masked network and the
/// mask so that a test is one AND and one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cidr {
    /// An IPv4 block.
    V4 {
        /// The network, already masked.
        network: u32,
        /// The prefix as a mask.
        mask: u32,
    },
    /// An IPv6 block.
    V6 {
        /// The network, already masked.
        network: u128,
        /// The prefix as a mask.
        mask: u128,
    },
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `::1/128` or a bare address.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        match address.parse::<IpAddr>().ok()? {
            IpAddr::V4(network) => {
                let prefix = u32::from(prefix.unwrap_or(32));
                let mask = u32::MAX.checked_shl(32 - prefix.min(32)).unwrap_or(0);
                (prefix <= 32).then_some(Self::V4 {
                    network: u32::from(network) & mask,
                    mask,
                })
            }
            IpAddr::V6(network) => {
                let prefix = u32::from(prefix.unwrap_or(128));
                let mask = u128::MAX.checked_shl(128 - prefix.min(128)).unwrap_or(0);
                (prefix <= 128).then_some(Self::V6 {
                    network: u128::from(network) & mask,
                    mask,
                })
            }
        }
    }

    /// Whether `address` is inside the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        match (*self, address) {
            (Self::V4 { network, mask }, IpAddr::V4(address)) => {
                u32::from(address) & mask == network
            }
            (Self::V6 { network, mask }, IpAddr::V6(address)) => {
                u128::from(address) & mask == network
            }
            _ => false,
        }
    }
}

/// Parses an IP address attribute (surrounding whitespace ignored), exactly as
/// `str::parse::<IpAddr>` does. Dotted-quad IPv4, nearly every address a context carries, is read
/// in place; the general parser, whose grammar also covers IPv6, costs several times more.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let bytes = text.as_bytes();
    // Text that starts and ends with a visible ASCII character has nothing to trim; `trim`
    // itself decodes characters at both ends.
    let text = match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    };
    match dotted_quad(text.as_bytes()) {
        Some(address) => Some(IpAddr::V4(address)),
        None => text.parse().ok(),
    }
}

/// Four decimal octets of 1–3 digits without leading zeros, each at most 255 (the standard
/// library's IPv4 grammar). `None` leaves the text to the general parser.
fn dotted_quad(bytes: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut rest = bytes;
    for (i, octet) in octets.iter_mut().enumerate() {
        let end = if i == 3 {
            rest.len()
        } else {
            rest.iter().position(|byte| *byte == b'.')?
        };
        *octet = decimal_octet(&rest[..end])?;
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    Some(Ipv4Addr::from(octets))
}

fn decimal_octet(part: &[u8]) -> Option<u8> {
    let digit = |byte: u8| {
        let value = byte.wrapping_sub(b'0');
        (value < 10).then_some(u16::from(value))
    };
    let value = match *part {
        [a] => digit(a)?,
        [a, b] if a != b'0' => digit(a)? * 10 + digit(b)?,
        [a, b, c] if a != b'0' => digit(a)? * 100 + digit(b)? * 10 + digit(c)?,
        _ => return None,
    };
    u8::try_from(value).ok()
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
        if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
            text.write_integer(n as i64);
        } else if write!(text, "{n}").is_err() {
            text.len = 0;
        }
        text
    }

    /// Writes the decimal digits directly, two at a time: random stickiness formats `now` (13
    /// digits) on every evaluation, and the formatting machinery costs more than the hash that
    /// follows.
    fn write_integer(&mut self, n: i64) {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = n.unsigned_abs();
        while rest >= 100 {
            // `rest % 100` < 100, so the pair index is in bounds and the cast lossless.
            let pair = (rest % 100) as usize * 2;
            rest /= 100;
            start -= 2;
            digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if rest >= 10 {
            let pair = rest as usize * 2;
            start -= 2;
            digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            start -= 1;
            digits[start] = b'0' + rest as u8;
        }
        if n < 0 {
            self.buf[0] = b'-';
            self.len = 1;
        }
        let digits = &digits[start..];
        self.buf[self.len..self.len + digits.len()].copy_from_slice(digits);
        self.len += digits.len();
    }

    /// The formatted text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The formatted text as bytes (for hashing, which needs no UTF-8 check).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
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
    fn ip_addresses_parse_as_the_standard_library_does() {
        let texts = [
            "1.2.3.4",
            " 10.0.0.1 ",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "0.0.0.0",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            "1.2.3.4/8",
            "::1",
            "::ffff:10.0.0.1",
            "abc",
            "",
            "1.2.3.-4",
            "+1.2.3.4",
            "1.2.3.4 5",
            "0000.1.1.1",
        ];
        for text in texts {
            assert_eq!(parse_ip(text), text.trim().parse().ok(), "{text:?}");
        }
    }

    #[test]
    fn numbers_format_without_allocating() {
        assert_eq!(NumberText::new(5.0).as_str(), "5");
        assert_eq!(NumberText::new(-1.5).as_str(), "-1.5");
        for n in [
            0.0,
            -0.0,
            7.0,
            -42.0,
            1_704_067_200_000.0,
            9_007_199_254_740_991.0,
        ] {
            assert_eq!(NumberText::new(n).as_str(), format!("{}", n as i64));
        }
    }
}
