//! The bounds every number in a workload is held to. Inside them a run is feasible on one
//! generator (and a mistake such as `admins = 1000000000000` is an error at `validate`, not a
//! panic, an 11 TB allocation or a hang); beyond them, shard the load (`--shard`).

use std::time::Duration;

/// Virtual admins (closed `admins`, open `max_admins`): 10,000 use ~124 MiB.
pub const ADMINS: usize = 100_000;
/// Arrivals per second, at any point of an open-model schedule.
pub const RATE: f64 = 100_000.0;
/// `[users] prepopulate`: created one by one before the load.
pub const PREPOPULATE: usize = 1_000_000;
/// Journeys per admin (closed `iterations`).
pub const ITERATIONS: usize = 1_000_000_000;
/// A journey's `weight` (weights are summed).
pub const WEIGHT: u32 = 1_000_000;
/// Retries of a 429 (`max_retries`).
pub const RETRIES: u32 = 100;
/// Connections per host (`max_connections`).
pub const CONNECTIONS: usize = 100_000;
/// Observations or checks under way at once.
pub const PENDING: usize = 1_000_000;
/// Forbidden actions tried over a run (`[checks] attempts`).
pub const ATTEMPTS: u32 = 100_000;
/// A load's length: `duration`, `ramp`, the stages together.
pub const RUN: Duration = Duration::from_secs(7 * 24 * 3600);
/// Any wait inside a run: timeouts, think time, `max_lag`, delays, polling intervals.
pub const WAIT: Duration = Duration::from_secs(3600);

/// The smallest `max_body` a target may set: below it, no SCIM error answer fits.
pub const BODY_MIN: usize = 1024;
/// The largest `max_body`: one answer held whole in memory per connection.
pub const BODY: usize = 1 << 30;

/// A size in bytes: a whole number, optionally with a unit (`B`, `KiB`, `MiB`, `GiB`, or the
/// decimal `KB`, `MB`, `GB`), within `min..=max`, or why not.
pub fn size(key: &str, text: &str, min: usize, max: usize) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let unit_bytes: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "`{key}`: `{text}` is not a size; e.g. `16MiB`, `512KiB` or a number of bytes"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{key}`: `{text}` is not a size; e.g. `16MiB`, `512KiB` or a number of bytes"))?;
    let bytes = n.saturating_mul(unit_bytes);
    if bytes < min as u64 {
        Err(format!("`{key}` = {text} is below the limit of {min} bytes"))
    } else if bytes > max as u64 {
        Err(format!("`{key}` = {text} is above the limit of {max} bytes"))
    } else {
        Ok(bytes as usize)
    }
}

/// `value` within `1..=max`, or why not.
pub fn count<T: PartialOrd + std::fmt::Display + Copy>(key: &str, value: T, min: T, max: T) -> Result<T, String> {
    if value < min {
        Err(format!("`{key}` must be at least {min}"))
    } else if value > max {
        Err(format!(
            "`{key}` = {value} is above the limit of {max} (shard the load for more)"
        ))
    } else {
        Ok(value)
    }
}

/// `d` no longer than `max`.
pub fn duration(key: &str, d: Duration, max: Duration) -> Result<Duration, String> {
    if d > max {
        Err(format!(
            "`{key}` = {} is above the limit of {}",
            humantime::format_duration(d),
            humantime::format_duration(max)
        ))
    } else {
        Ok(d)
    }
}

/// A rate (per second) no higher than [`RATE`].
pub fn rate(key: &str, per_second: f64) -> Result<f64, String> {
    if per_second > RATE {
        Err(format!(
            "`{key}` = {per_second}/s is above the limit of {RATE}/s per generator (shard the load for more)"
        ))
    } else {
        Ok(per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units_and_hold_their_bounds() {
        assert_eq!(size("max_body", "16MiB", BODY_MIN, BODY), Ok(16 << 20));
        assert_eq!(size("max_body", " 512 KiB ", BODY_MIN, BODY), Ok(512 << 10));
        assert_eq!(size("max_body", "2048", BODY_MIN, BODY), Ok(2048));
        assert_eq!(size("max_body", "1GiB", BODY_MIN, BODY), Ok(1 << 30));
        assert_eq!(size("max_body", "2MB", BODY_MIN, BODY), Ok(2_000_000));
        assert!(size("max_body", "1023", BODY_MIN, BODY).unwrap_err().contains("below"));
        assert!(size("max_body", "2GiB", BODY_MIN, BODY).unwrap_err().contains("above"));
        // Too many digits for u64, and a unit that overflows: refused, never wrapped.
        assert!(size("max_body", "99999999999999999999999", BODY_MIN, BODY).is_err());
        assert!(
            size("max_body", "18446744073709551615GiB", BODY_MIN, BODY)
                .unwrap_err()
                .contains("above")
        );
        for bad in ["", "MiB", "16 mebibytes", "-5", "1.5MiB", "0x10"] {
            assert!(
                size("max_body", bad, BODY_MIN, BODY)
                    .unwrap_err()
                    .contains("not a size"),
                "{bad}"
            );
        }
    }

    #[test]
    fn bounds_say_what_they_are() {
        assert_eq!(count("admins", 5usize, 1, ADMINS), Ok(5));
        assert!(count("admins", 0usize, 1, ADMINS).unwrap_err().contains("at least 1"));
        assert!(
            count("admins", usize::MAX, 1, ADMINS)
                .unwrap_err()
                .contains("limit of 100000")
        );
        assert!(rate("rate", 1e308).unwrap_err().contains("limit"));
        assert!(
            duration("duration", Duration::from_secs(10 * 24 * 3600), RUN)
                .unwrap_err()
                .contains("7days")
        );
    }
}
