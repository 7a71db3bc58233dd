//! Located readers of the values many sections share (durations, rates, counts, JSON pointers):
//! each checks its value against [`limits`](super::limits) and, when it is wrong, points at the
//! key it came from. A helper: it imports no section.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::error::{Source, WorkloadError};
use super::limits;
use super::schedule::parse_rate;

/// The span of an optional located value (for errors about a key that may be absent).
pub fn span_of<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
    v.as_ref().map(Spanned::span)
}

/// A duration no longer than `max`; `key` names it in the message as the user knows it.
pub fn duration(src: &Source, s: &Spanned<String>, key: &str, max: Duration) -> Result<Duration, WorkloadError> {
    let d = humantime::parse_duration(s.get_ref().trim()).map_err(|e| {
        src.error(
            Some(s.span()),
            format!("`{key}`: `{}` is not a duration ({e}); e.g. `30s`, `2m`", s.get_ref()),
        )
    })?;
    limits::duration(key, d, max).map_err(|m| src.error(Some(s.span()), m))
}

/// An optional duration, `default` when absent.
pub fn duration_or(
    src: &Source,
    s: &Option<Spanned<String>>,
    key: &str,
    max: Duration,
    default: Duration,
) -> Result<Duration, WorkloadError> {
    s.as_ref()
        .map(|s| duration(src, s, key, max))
        .transpose()
        .map(|d| d.unwrap_or(default))
}

/// A rate no higher than [`limits::RATE`].
pub fn rate(src: &Source, text: &str, span: Range<usize>, key: &str) -> Result<f64, WorkloadError> {
    parse_rate(text)
        .and_then(|r| limits::rate(key, r))
        .map_err(|m| src.error(Some(span), m))
}

/// A count in `min..=max`.
pub fn count<T>(src: &Source, v: &Spanned<T>, key: &str, min: T, max: T) -> Result<T, WorkloadError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    limits::count(key, *v.get_ref(), min, max).map_err(|m| src.error(Some(v.span()), m))
}

/// An optional count in `1..=max`.
pub fn positive(
    src: &Source,
    v: &Option<Spanned<usize>>,
    key: &str,
    max: usize,
) -> Result<Option<usize>, WorkloadError> {
    v.as_ref().map(|n| count(src, n, key, 1, max)).transpose()
}

/// A size in bytes (`16MiB`, or a whole number of bytes) within `min..=max`, pointing at `key`.
pub fn size(src: &Source, v: &Spanned<toml::Value>, key: &str, min: usize, max: usize) -> Result<usize, WorkloadError> {
    let text = match v.get_ref() {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(n) => n.to_string(),
        other => other.to_string(),
    };
    limits::size(key, &text, min, max).map_err(|m| src.error(Some(v.span()), m))
}

/// A share in (0, 1] (`sample`), `default` when absent.
pub fn share(src: &Source, v: &Option<Spanned<f64>>, key: &str, default: f64) -> Result<f64, WorkloadError> {
    match v {
        Some(s) if !(*s.get_ref() > 0.0 && *s.get_ref() <= 1.0) => {
            Err(src.error(Some(s.span()), format!("{key} must be in (0, 1], got {}", s.get_ref())))
        }
        Some(s) => Ok(*s.get_ref()),
        None => Ok(default),
    }
}

/// A JSON pointer (empty, or starting with `/`).
pub fn pointer(src: &Source, p: &Spanned<String>, key: &str) -> Result<String, WorkloadError> {
    let text = p.get_ref();
    if text.is_empty() || text.starts_with('/') {
        Ok(text.clone())
    } else {
        Err(src.error(
            Some(p.span()),
            format!("{key}: `{text}` is not a JSON pointer (it starts with `/`, e.g. `/active`)"),
        ))
    }
}

/// An optional JSON pointer, `default` when absent.
pub fn pointer_or(
    src: &Source,
    p: &Option<Spanned<String>>,
    key: &str,
    default: &str,
) -> Result<String, WorkloadError> {
    match p {
        Some(p) => pointer(src, p, key),
        None => Ok(default.to_string()),
    }
}
