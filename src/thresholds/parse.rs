//! The threshold grammar, parsed by hand (recursive descent) so that every error names the column:
//!
//! ```text
//! threshold  = aggregate op value | "achieved_rate" op percent "of target"
//! aggregate  = func "(" selector ")"
//! func       = p50 | p90 | p95 | p99 | p99.9 | pNN[.N] | min | max | mean | count | rate | failed
//! selector   = name [ "{" tag "=" value { "," tag "=" value } "}" ]
//! op         = "<" | "<=" | ">" | ">=" | "==" | "!="
//! value      = number [unit]      units: us µs ms s m h | %
//! ```

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Func {
    Percentile(f64),
    Min,
    Max,
    Mean,
    Count,
    Rate,
    Failed,
}

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Func::Percentile(p) => write!(f, "p{p}"),
            Func::Min => f.write_str("min"),
            Func::Max => f.write_str("max"),
            Func::Mean => f.write_str("mean"),
            Func::Count => f.write_str("count"),
            Func::Rate => f.write_str("rate"),
            Func::Failed => f.write_str("failed"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Cmp {
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Cmp::Lt => observed < limit,
            Cmp::Le => observed <= limit,
            Cmp::Gt => observed > limit,
            Cmp::Ge => observed >= limit,
            Cmp::Eq => (observed - limit).abs() < 1e-9,
            Cmp::Ne => (observed - limit).abs() >= 1e-9,
        }
    }
}

/// A right-hand side, normalised: durations in µs, percentages as fractions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Micros(f64),
    Fraction(f64),
    Number(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub metric: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    Aggregate {
        func: Func,
        selector: Selector,
        cmp: Cmp,
        value: Value,
    },
    /// `achieved_rate >= 95% of target`
    AchievedRate { cmp: Cmp, fraction: f64 },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("threshold `{expression}`: column {column}: {message}")]
pub struct ParseError {
    pub expression: String,
    /// 1-based.
    pub column: usize,
    pub message: String,
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while self.text[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.text[self.pos..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn err(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            expression: self.text.to_string(),
            column: self.text[..at].chars().count() + 1,
            message: message.into(),
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.text[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str, what: &str) -> Result<(), ParseError> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.err(self.pos, format!("expected {what}")))
        }
    }

    /// `[A-Za-z0-9_.-]+`
    fn word(&mut self) -> (usize, &'a str) {
        self.skip_ws();
        let start = self.pos;
        let len = self.text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
            .unwrap_or(self.text.len() - start);
        self.pos += len;
        (start, &self.text[start..start + len])
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos >= self.text.len()
    }
}

fn parse_func(c: &Cursor, at: usize, w: &str) -> Result<Func, ParseError> {
    Ok(match w {
        "min" => Func::Min,
        "max" => Func::Max,
        "mean" | "avg" => Func::Mean,
        "count" => Func::Count,
        "rate" => Func::Rate,
        "failed" => Func::Failed,
        "med" => Func::Percentile(50.0),
        p if p.starts_with('p') && p.len() > 1 => {
            let n: f64 = p[1..]
                .parse()
                .map_err(|_| c.err(at, format!("`{p}` is not a percentile (p50, p99, p99.9, ...)")))?;
            if !(0.0..=100.0).contains(&n) {
                return Err(c.err(at, format!("percentile {n} is outside 0..100")));
            }
            Func::Percentile(n)
        }
        "" => return Err(c.err(at, "expected a function such as p99, max, rate, count or achieved_rate")),
        other => {
            return Err(c.err(
                at,
                format!("unknown function `{other}` (p50, p90, p95, p99, p99.9, min, max, mean, count, rate, failed, achieved_rate)"),
            ));
        }
    })
}

fn parse_cmp(c: &mut Cursor) -> Result<Cmp, ParseError> {
    for (s, cmp) in [
        ("<=", Cmp::Le),
        (">=", Cmp::Ge),
        ("==", Cmp::Eq),
        ("!=", Cmp::Ne),
        ("<", Cmp::Lt),
        (">", Cmp::Gt),
    ] {
        if c.eat(s) {
            return Ok(cmp);
        }
    }
    Err(c.err(c.pos, "expected a comparison: <, <=, >, >=, == or !="))
}

fn parse_value(c: &mut Cursor) -> Result<Value, ParseError> {
    c.skip_ws();
    let start = c.pos;
    let rest = &c.text[start..];
    let num_len = rest
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
        .unwrap_or(rest.len());
    let n: f64 = rest[..num_len]
        .parse()
        .map_err(|_| c.err(start, "expected a number such as 300ms, 5s, 1% or 0"))?;
    c.pos += num_len;
    let unit_start = c.pos;
    let unit_len = c.text[unit_start..]
        .find(|ch: char| !(ch.is_alphabetic() || ch == '%'))
        .unwrap_or(c.text.len() - unit_start);
    let unit = &c.text[unit_start..unit_start + unit_len];
    c.pos += unit_len;
    Ok(match unit {
        "" => Value::Number(n),
        "%" => Value::Fraction(n / 100.0),
        "us" | "µs" => Value::Micros(n),
        "ms" => Value::Micros(n * 1e3),
        "s" => Value::Micros(n * 1e6),
        "m" | "min" => Value::Micros(n * 60e6),
        "h" => Value::Micros(n * 3600e6),
        other => return Err(c.err(unit_start, format!("unknown unit `{other}` (us, ms, s, m, h or %)"))),
    })
}

impl Threshold {
    pub fn parse(text: &str) -> Result<Threshold, ParseError> {
        let mut c = Cursor { text, pos: 0 };
        let (at, word) = c.word();
        if word == "achieved_rate" {
            let cmp = parse_cmp(&mut c)?;
            c.skip_ws();
            let v_at = c.pos;
            let fraction = match parse_value(&mut c)? {
                Value::Fraction(f) => f,
                _ => {
                    return Err(c.err(
                        v_at,
                        "achieved_rate compares with a percentage of the target, e.g. `>= 95% of target`",
                    ));
                }
            };
            c.expect("of", "`of target`")?;
            c.expect("target", "`target`")?;
            if !c.at_end() {
                return Err(c.err(c.pos, "unexpected text after the threshold"));
            }
            return Ok(Threshold::AchievedRate { cmp, fraction });
        }
        let func = parse_func(&c, at, word)?;
        c.expect("(", "`(` after the function")?;
        let (m_at, metric) = c.word();
        if metric.is_empty() {
            return Err(c.err(m_at, "expected a metric name such as api_latency, sync_lag, errors"));
        }
        let mut tags = BTreeMap::new();
        if c.eat("{") {
            loop {
                let (k_at, key) = c.word();
                if key.is_empty() {
                    return Err(c.err(k_at, "expected a tag name"));
                }
                c.expect("=", "`=` after the tag name")?;
                let (v_at, value) = c.word();
                if value.is_empty() {
                    return Err(c.err(v_at, "expected a tag value"));
                }
                tags.insert(key.to_string(), value.to_string());
                if c.eat("}") {
                    break;
                }
                if !(c.eat(",") || c.eat(";")) {
                    return Err(c.err(c.pos, "expected `,` or `}`"));
                }
            }
        }
        c.expect(")", "`)`")?;
        let cmp = parse_cmp(&mut c)?;
        c.skip_ws();
        let v_at = c.pos;
        let value = parse_value(&mut c)?;
        if !c.at_end() {
            return Err(c.err(c.pos, "unexpected text after the threshold"));
        }
        let selector = Selector {
            metric: metric.to_string(),
            tags,
        };
        // Units must suit the function: durations for latency functions, % for rates.
        match (&func, value) {
            (Func::Percentile(_) | Func::Min | Func::Max | Func::Mean, Value::Micros(_)) => {}
            (Func::Percentile(_) | Func::Min | Func::Max | Func::Mean, _) => {
                return Err(c.err(v_at, format!("{func} compares with a duration, e.g. 300ms")));
            }
            (Func::Rate, Value::Fraction(_) | Value::Number(_)) => {}
            (Func::Rate, _) => return Err(c.err(v_at, "rate compares with a percentage, e.g. 1%")),
            (Func::Count | Func::Failed, Value::Number(_)) => {}
            (Func::Count | Func::Failed, _) => return Err(c.err(v_at, format!("{func} compares with a plain number"))),
        }
        Ok(Threshold::Aggregate {
            func,
            selector,
            cmp,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let t = Threshold::parse("p99(api_latency{op=create_user}) < 300ms").unwrap();
        let Threshold::Aggregate {
            func,
            selector,
            cmp,
            value,
        } = t
        else {
            panic!()
        };
        assert_eq!(
            (func, cmp, value),
            (Func::Percentile(99.0), Cmp::Lt, Value::Micros(300_000.0))
        );
        assert_eq!(selector.metric, "api_latency");
        assert_eq!(selector.tags.get("op").map(String::as_str), Some("create_user"));
        assert!(Threshold::parse("p95(sync_lag{service=directory,op=create_user}) < 5s").is_ok());
        assert!(Threshold::parse("max(queue_delay) < 30s").is_ok());
        assert!(Threshold::parse("p99.9(end_to_end) <= 1m").is_ok());
        assert_eq!(
            Threshold::parse("rate(errors) < 1%").unwrap(),
            Threshold::Aggregate {
                func: Func::Rate,
                selector: Selector {
                    metric: "errors".into(),
                    tags: BTreeMap::new()
                },
                cmp: Cmp::Lt,
                value: Value::Fraction(0.01)
            }
        );
        assert!(Threshold::parse("count(timeouts{metric=sync_lag}) == 0").is_ok());
        assert!(Threshold::parse("failed(checks{kind=security}) == 0").is_ok());
        assert_eq!(
            Threshold::parse("achieved_rate >= 95% of target").unwrap(),
            Threshold::AchievedRate {
                cmp: Cmp::Ge,
                fraction: 0.95
            }
        );
    }

    #[test]
    fn errors_point_at_the_column() {
        let col = |t: &str| Threshold::parse(t).unwrap_err().column;
        assert_eq!(col("p99(api_latency) < 300xs"), 23);
        assert_eq!(col("q99(api_latency) < 3s"), 1);
        assert_eq!(col("p99 api_latency < 3s"), 5);
        assert_eq!(col("p99(api_latency{op}) < 3s"), 19);
        assert_eq!(col("p99(api_latency) ~ 3s"), 18);
        assert_eq!(col("p99(api_latency) < 3s extra"), 23);
        assert_eq!(col("p99(api_latency) < 1%"), 20);
        let e = Threshold::parse("rate(errors) < 5s").unwrap_err();
        assert!(e.to_string().contains("percentage"), "{e}");
        assert!(
            Threshold::parse("achieved_rate >= 95%")
                .unwrap_err()
                .message
                .contains("of target")
        );
    }
}
