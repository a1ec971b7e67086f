//! Go's duration strings ("30s", "1m30s", "1.5h", "300ms") and Argo's pause durations.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Parses a Go duration string (`time.ParseDuration`) into whole seconds, rounding toward zero as Go's
/// `int32(d.Seconds())` does. Units: ns, us (or µs), ms, s, m, h; a sign and fractions are allowed;
/// "0" alone is zero.
pub fn parse_go_duration_seconds(text: &str) -> Option<i64> {
    parse_go_duration_nanos(text).map(|nanos| (nanos / 1_000_000_000) as i64)
}

/// Parses a Go duration string into nanoseconds.
pub fn parse_go_duration_nanos(text: &str) -> Option<i128> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit_nanos: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut value = whole.checked_mul(unit_nanos)?;
        let mut scale = unit_nanos;
        for digit in fraction.bytes() {
            scale /= 10;
            value = value.checked_add(i128::from(digit - b'0') * scale)?;
        }
        total = total.checked_add(value)?;
        // Go rejects durations beyond ~292 years.
        if total > i128::from(i64::MAX) {
            return None;
        }
    }
    Some(if negative { -total } else { total })
}

/// The seconds of a pause step's duration, as Argo's `RolloutPause.DurationSeconds`: an integer is seconds;
/// a string is first read as a plain integer ("10"), then as a Go duration. `None` when the string is
/// neither (Argo's -1, which validation rejects).
pub fn pause_duration_seconds(duration: &IntOrString) -> Option<i64> {
    match duration {
        IntOrString::Int(seconds) => Some(i64::from(*seconds)),
        IntOrString::String(text) => match text.parse::<i32>() {
            Ok(seconds) => Some(i64::from(seconds)),
            Err(_) => parse_go_duration_seconds(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_to_seconds() {
        for (text, seconds) in [
            ("30s", Some(30)),
            ("5m", Some(300)),
            ("1h", Some(3600)),
            ("1h30m", Some(5400)),
            ("1.5s", Some(1)),
            ("1.5m", Some(90)),
            ("2500ms", Some(2)),
            ("0", Some(0)),
            ("-5s", Some(-5)),
            ("", None),
            ("10", None),
            ("5x", None),
            ("s", None),
            ("1..5s", None),
            ("99999999999h", None),
        ] {
            assert_eq!(parse_go_duration_seconds(text), seconds, "{text:?}");
        }
    }

    #[test]
    fn pause_duration_accepts_int_plain_string_and_go_duration() {
        assert_eq!(pause_duration_seconds(&IntOrString::Int(10)), Some(10));
        assert_eq!(
            pause_duration_seconds(&IntOrString::String("10".into())),
            Some(10)
        );
        assert_eq!(
            pause_duration_seconds(&IntOrString::String("30s".into())),
            Some(30)
        );
        assert_eq!(
            pause_duration_seconds(&IntOrString::String("5m".into())),
            Some(300)
        );
        assert_eq!(
            pause_duration_seconds(&IntOrString::String("soon".into())),
            None
        );
    }
}
