//! Timestamps (RFC 3339, microsecond precision, UTC) and durations (`"86400s"`).

use std::fmt;

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// An instant, in whole microseconds since the Unix epoch, rendered in UTC with exactly six
/// fractional digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// The earliest and latest instants we accept: years 0001 to 9999, so every value renders as RFC 3339.
const MIN_MICROS: i64 = -62_135_596_800_000_000;
/// The latest instant, 9999-12-31T23:59:59.999999Z, in microseconds since the epoch.
pub const MAX_MICROS: i64 = 253_402_300_799_999_999;

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self((nanos / 1_000) as i64)
    }

    /// A timestamp from microseconds since the epoch, if it is within years 0001–9999.
    pub fn from_micros(micros: i64) -> Option<Self> {
        (MIN_MICROS..=MAX_MICROS)
            .contains(&micros)
            .then_some(Self(micros))
    }

    /// Microseconds since the epoch.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded up (a DynamoDB TTL value that is never early).
    pub fn epoch_seconds_ceil(self) -> i64 {
        self.0.div_euclid(1_000_000) + i64::from(self.0.rem_euclid(1_000_000) != 0)
    }

    /// Whole seconds since the epoch, rounded down.
    pub fn epoch_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// This instant plus a duration, if the result is representable.
    pub fn plus(self, duration: Duration) -> Option<Self> {
        self.0
            .checked_add(duration.micros())
            .and_then(Self::from_micros)
    }

    /// Parses any RFC 3339 timestamp; returns the instant and whether precision below a
    /// microsecond was cut off.
    pub fn parse_with_remainder(text: &str) -> Option<(Self, bool)> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let nanos = parsed.unix_timestamp_nanos();
        let micros = i64::try_from(nanos.div_euclid(1_000)).ok()?;
        Self::from_micros(micros).map(|t| (t, nanos.rem_euclid(1_000) != 0))
    }

    /// Parses any RFC 3339 timestamp, cutting precision below a microsecond.
    pub fn parse(text: &str) -> Option<Self> {
        Self::parse_with_remainder(text).map(|(t, _)| t)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = i128::from(self.0) * 1_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.microsecond()
            ),
            Err(_) => write!(f, "invalid-timestamp({})", self.0),
        }
    }
}

/// A non-negative length of time, written in JSON as seconds with an `s` suffix (`"86400s"`,
/// `"1.5s"`), as protobuf's `Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(i64);

impl Duration {
    /// Parses `"<seconds>[.<fraction>]s"`; at most nine fractional digits, precision below a
    /// microsecond cut off. Negative durations are rejected.
    pub fn parse(text: &str) -> Option<Self> {
        let number = text.strip_suffix('s')?;
        let (whole, fraction) = match number.split_once('.') {
            Some((w, f)) => (w, f),
            None => (number, ""),
        };
        if whole.is_empty() || whole.len() > 12 || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if number.contains('.') && fraction.is_empty() {
            return None;
        }
        let seconds: i64 = whole.parse().ok()?;
        let mut micros_text: String = fraction.chars().take(6).collect();
        while micros_text.len() < 6 {
            micros_text.push('0');
        }
        let micros: i64 = micros_text.parse().ok()?;
        seconds
            .checked_mul(1_000_000)?
            .checked_add(micros)
            .map(Self)
    }

    /// The length in microseconds.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// Thirty days, the time a soft-deleted conversation is kept.
    pub const THIRTY_DAYS: Self = Self(30 * 24 * 3600 * 1_000_000);

    /// A day, the time an idempotency key is remembered.
    pub const TWENTY_FOUR_HOURS: Self = Self(24 * 3600 * 1_000_000);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_in_utc_with_six_fraction_digits() {
        let t = Timestamp::parse("2026-11-23T09:00:00.123456789+01:00").expect("valid");
        assert_eq!(t.to_string(), "2026-11-23T08:00:00.123456Z");
        assert_eq!(
            Timestamp::parse("2026-11-23T08:00:00Z")
                .expect("valid")
                .to_string(),
            "2026-11-23T08:00:00.000000Z"
        );
    }

    #[test]
    fn sub_microsecond_precision_is_reported_as_a_remainder() {
        assert_eq!(
            Timestamp::parse_with_remainder("2026-11-23T08:00:00.1234567Z").map(|p| p.1),
            Some(true)
        );
        assert_eq!(
            Timestamp::parse_with_remainder("2026-11-23T08:00:00.123456Z").map(|p| p.1),
            Some(false)
        );
    }

    #[test]
    fn malformed_timestamps_are_rejected() {
        for bad in [
            "",
            "2026-11-23",
            "2026-13-01T00:00:00Z",
            "yesterday",
            "2026-11-23T08:00:00",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn instants_before_the_epoch_round_down() {
        let t = Timestamp::parse("1969-12-31T23:59:59.9999999Z").expect("valid");
        assert_eq!(t.micros(), -1);
        assert_eq!(t.epoch_seconds(), -1);
        assert_eq!(t.epoch_seconds_ceil(), 0);
    }

    #[test]
    fn durations_parse_seconds_with_an_optional_fraction() {
        assert_eq!(
            Duration::parse("86400s").map(Duration::micros),
            Some(86_400_000_000)
        );
        assert_eq!(
            Duration::parse("1.5s").map(Duration::micros),
            Some(1_500_000)
        );
        assert_eq!(
            Duration::parse("0.000000001s").map(Duration::micros),
            Some(0)
        );
        for bad in [
            "",
            "s",
            "86400",
            "-1s",
            "1.s",
            ".5s",
            "1e3s",
            "1.0000000001s",
            "9999999999999s",
            " 1s",
        ] {
            assert_eq!(Duration::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn adding_a_duration_that_overflows_the_calendar_fails() {
        let t = Timestamp::parse("9999-12-31T23:59:59Z").expect("valid");
        assert_eq!(t.plus(Duration::parse("10s").expect("valid")), None);
    }
}
