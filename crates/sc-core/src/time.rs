//! Timestamps: stored as Unix milliseconds (BIGINT on both backends, so ordering and arithmetic
//! are identical in SQLite and PostgreSQL), shown as RFC 3339 UTC with exactly three fractional
//! digits (API.md §12).

use serde::{Serialize, Serializer};
use std::time::Duration;
use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Self((now.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn from_unix_seconds(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.as_millis() as i64))
    }

    pub fn minus(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(d.as_millis() as i64))
    }

    /// Whole seconds from `self` until `later`, rounded up, never negative.
    pub fn seconds_until(self, later: Timestamp) -> u64 {
        let ms = later.0.saturating_sub(self.0).max(0) as u64;
        ms.div_ceil(1000)
    }

    /// An RFC 3339 date-time with an offset (any precision; sub-millisecond digits dropped).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let dt = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
        i64::try_from(dt.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Self)
    }

    pub fn to_rfc3339(self) -> String {
        let dt = OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        dt.format(&fmt).unwrap_or_default()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_three_fraction_digits_and_z() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_795_424_400_123).to_rfc3339(),
            "2026-11-23T09:00:00.123Z"
        );
    }

    #[test]
    fn seconds_until_rounds_up() {
        assert_eq!(Timestamp(0).seconds_until(Timestamp(1)), 1);
        assert_eq!(Timestamp(0).seconds_until(Timestamp(1000)), 1);
        assert_eq!(Timestamp(5).seconds_until(Timestamp(0)), 0);
    }
}
