//! Numbers and ages written for people: measurement values in messages and views rounded to four
//! significant digits (`0.15862068965517243` → `0.1586`). The exact values stay in the data
//! (events, `-o json`).

/// `text` rounded to four significant digits when it is a number with more; anything else
/// (integers, short decimals, non-numbers) unchanged.
pub fn number(text: &str) -> String {
    let Ok(x) = text.trim().parse::<f64>() else {
        return text.to_owned();
    };
    if !x.is_finite() || x == 0.0 || x.fract() == 0.0 {
        return text.to_owned();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = usize::try_from(3 - magnitude).unwrap_or(0);
    let rounded = format!("{x:.decimals$}");
    let trimmed = if rounded.contains('.') {
        rounded.trim_end_matches('0').trim_end_matches('.')
    } else {
        &rounded
    };
    if trimmed.len() < text.trim().len() {
        trimmed.to_owned()
    } else {
        text.to_owned()
    }
}

/// An age as `kubectl get` shows one: `45s` under two minutes, `12m` under two hours, `5h`
/// under two days, then `3d`.
pub fn age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_decimals_are_rounded_short_ones_kept() {
        assert_eq!(number("0.15862068965517243"), "0.1586");
        assert_eq!(number("0.3870967741935484"), "0.3871");
        assert_eq!(number("1234.5678"), "1235");
        assert_eq!(number("0.000123456789"), "0.0001235");
        assert_eq!(number("-2.71828"), "-2.718");
        assert_eq!(number("0.2"), "0.2");
        assert_eq!(number("0.25"), "0.25");
        assert_eq!(number("42"), "42");
        assert_eq!(number("0"), "0");
        assert_eq!(number("none"), "none");
        assert_eq!(number("NaN"), "NaN");
    }

    #[test]
    fn ages_read_like_kubectl() {
        use std::time::Duration;
        assert_eq!(age(Duration::from_secs(45)), "45s");
        assert_eq!(age(Duration::from_secs(125)), "2m");
        assert_eq!(age(Duration::from_secs(3 * 3600 + 59)), "3h");
        assert_eq!(age(Duration::from_secs(3 * 86_400)), "3d");
    }
}
