//! Human-readable durations (`"30s"`, `"500ms"`) and byte sizes (`"64MiB"`)
//! as they appear in `mission.toml` and schedule files.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// A duration written as a number and a unit: `ms`, `s`, `m` or `h`
/// (`"250ms"`, `"30s"`, `"5m"`, `"2h"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

/// A size in bytes written as a whole number of bytes or with a unit:
/// `B`, `KiB`, `MiB` or `GiB` (`"512KiB"`, `"64MiB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl HumanDuration {
    /// Parses `"30s"` and the like; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (number, unit) = split_number(text)?;
        let per_unit = match unit {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => {
                return Err(format!(
                    "`{text}` has no unit: write e.g. \"500ms\", \"30s\", \"5m\", \"2h\" or \"30d\""
                ))
            }
        };
        let number = u32::try_from(number).map_err(|_| format!("`{text}` is too long"))?;
        Ok(Self(per_unit * number))
    }
}

impl ByteSize {
    /// Parses `"64MiB"` and the like; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (number, unit) = split_number(text)?;
        let per_unit: u64 = match unit {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => {
                return Err(format!(
                    "`{text}` has an unknown unit: write e.g. \"512KiB\", \"64MiB\" or \"1GiB\""
                ))
            }
        };
        number
            .checked_mul(per_unit)
            .map(Self)
            .ok_or_else(|| format!("`{text}` is too large"))
    }
}

fn split_number(text: &str) -> Result<(u64, &str), String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    if digits == 0 {
        return Err(format!("`{text}` does not start with a number"));
    }
    let number = text[..digits]
        .parse()
        .map_err(|_| format!("`{text}` is too large"))?;
    Ok((number, text[digits..].trim()))
}

/// A span for people, to the second at most: `3h 12m`, `2d 4h`, `45s`.
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        match ms {
            ms if ms % 86_400_000 == 0 && ms > 0 => write!(f, "{}d", ms / 86_400_000),
            ms if ms % 3_600_000 == 0 && ms > 0 => write!(f, "{}h", ms / 3_600_000),
            ms if ms % 60_000 == 0 && ms > 0 => write!(f, "{}m", ms / 60_000),
            ms if ms % 1000 == 0 => write!(f, "{}s", ms / 1000),
            ms => write!(f, "{ms}ms"),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n >= 1 << 30 && n % (1 << 30) == 0 => write!(f, "{}GiB", n >> 30),
            n if n >= 1 << 20 && n % (1 << 20) == 0 => write!(f, "{}MiB", n >> 20),
            n if n >= 1 << 10 && n % (1 << 10) == 0 => write!(f, "{}KiB", n >> 10),
            n => write!(f, "{n}B"),
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(n) => Ok(Self(n)),
            Raw::Text(text) => Self::parse(&text).map_err(de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_in_each_unit() {
        assert_eq!(
            HumanDuration::parse("250ms").unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(HumanDuration::parse("30s").unwrap().0, Duration::from_secs(30));
        assert_eq!(HumanDuration::parse("5m").unwrap().0, Duration::from_secs(300));
        assert_eq!(HumanDuration::parse("2h").unwrap().0, Duration::from_secs(7200));
        assert_eq!(
            HumanDuration::parse("30d").unwrap().0,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(HumanDuration(Duration::from_secs(86_400)).to_string(), "1d");
    }

    #[test]
    fn rejects_a_duration_without_a_unit() {
        let error = HumanDuration::parse("30").unwrap_err();
        assert!(error.contains("has no unit"), "{error}");
        assert!(HumanDuration::parse("s").is_err());
        assert!(HumanDuration::parse("3 days").is_err());
    }

    #[test]
    fn parses_sizes_with_and_without_units() {
        assert_eq!(ByteSize::parse("64MiB").unwrap().0, 64 << 20);
        assert_eq!(ByteSize::parse("512KiB").unwrap().0, 512 << 10);
        assert_eq!(ByteSize::parse("100").unwrap().0, 100);
        assert!(ByteSize::parse("64MB").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
        assert_eq!(HumanDuration(Duration::from_secs(120)).to_string(), "2m");
        assert_eq!(HumanDuration(Duration::from_millis(1500)).to_string(), "1500ms");
    }
}
