//! Durations as users type them in flags and the plugin hands them to the agent: `90s`, `15m`,
//! `1h`, `1h30m`, `250ms`; `0` means "never".
//!
//! One crate for both sides, because the plugin checks `--ttl` and `--idle` and then passes
//! them to the agent verbatim: the two must read the same text the same way. A bare number
//! other than `0` is refused rather than guessed at (seconds? minutes?), as Go's
//! `time.ParseDuration` does for kubectl.

use std::fmt;
use std::time::Duration;

/// Parses `1h30m`, `90s`, `15m`, `2h`, `0`. Units: `h`, `m`, `s`, `ms`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration (examples: 90s, 15m, 1h30m)".to_string());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?} (examples: 90s, 15m, 1h30m)"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration {text:?} is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "s" => Some(Duration::from_secs(number)),
            "ms" => Some(Duration::from_millis(number)),
            "" => return Err(format!("duration {text:?} needs a unit: h, m, s or ms")),
            other => return Err(format!("unknown unit {other:?} in duration {text:?}")),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("duration {text:?} is too large"))?;
    }
    Ok(total)
}

/// Shows a duration the way [`parse`] reads it back (`1h30m`, `15m`, `2s`, `1500ms`).
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0");
        }
        let millis = d.subsec_millis();
        if millis != 0 && u64::try_from(d.as_millis()).is_ok() {
            return write!(f, "{}ms", d.as_millis());
        }
        // Past u64::MAX milliseconds one number would not read back: whole seconds in
        // h/m/s, then the milliseconds (found by fuzzing, fuzz/corpus/duration).
        let secs = d.as_secs();
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        if millis != 0 {
            write!(f, "{millis}ms")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1h0m5s"), Ok(Duration::from_secs(3605)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn reads_what_users_type() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        for bad in [
            "",
            "15",
            "m",
            "1x",
            "1h30",
            "-5m",
            "1.5h",
            "h1",
            "99999999999999999999h",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn human_form_reads_back() {
        for text in ["1h30m", "15m", "2s", "1h0m5s", "250ms", "0"] {
            let d = parse(text).unwrap();
            assert_eq!(parse(&Human(d).to_string()), Ok(d));
        }
        assert_eq!(Human(Duration::from_secs(5400)).to_string(), "1h30m");
        assert_eq!(Human(Duration::from_millis(1500)).to_string(), "1500ms");
    }

    #[test]
    fn more_milliseconds_than_a_u64_holds_still_read_back() {
        let text = "1ms1h0m0m1h186744073709551615s";
        let d = parse(text).unwrap();
        assert_eq!(parse(&Human(d).to_string()), Ok(d));
    }
}
