//! Durations as users type them in flags (`90s`, `15m`, `1h30m`, `0`), and back.
//!
//! The same grammar as the agent's (debug-images/agent/src/duration.rs), because `--ttl` and
//! `--idle` are handed to it verbatim after we have checked them here. A bare number other
//! than `0` is refused, not guessed at, as Go's `time.ParseDuration` does for kubectl.

use std::fmt;
use std::time::Duration;

/// Parses `1h30m`, `90s`, `15m`, `2h`, `500ms`, `0`.
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

/// Shows a duration the way [`parse`] (and the agent) reads it back: `1h30m`, `15m`, `1500ms`.
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0");
        }
        if d.subsec_millis() != 0 {
            return write!(f, "{}ms", d.as_millis());
        }
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(parse("10").unwrap_err().contains("needs a unit"));
        assert!(parse("").is_err());
        assert!(parse("1d").unwrap_err().contains("unknown unit"));
        assert!(parse("m").is_err());
        assert!(parse("99999999999999999999h").is_err());
    }

    #[test]
    fn round_trips_through_human() {
        for text in ["1h", "15m", "1h30m", "45s", "1500ms", "0"] {
            let d = parse(text).unwrap();
            assert_eq!(Human(d).to_string(), text);
        }
    }
}
