//! Metric keys: `(metric, tags)`, the one name every producer and consumer shares, with the
//! text forms used in the hlog (`api_latency{op=create_user}`) and the CSV.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetricKey {
    pub metric: String,
    pub tags: BTreeMap<String, String>,
}

impl MetricKey {
    pub fn new(metric: &str) -> Self {
        Self {
            metric: metric.to_string(),
            tags: BTreeMap::new(),
        }
    }

    pub fn tag(mut self, k: &str, v: &str) -> Self {
        self.tags.insert(k.to_string(), v.to_string());
        self
    }

    pub fn get(&self, tag: &str) -> Option<&str> {
        self.tags.get(tag).map(String::as_str)
    }

    /// `k=v;k2=v2`, as in the CSV's `tags` column.
    pub fn tags_text(&self) -> String {
        self.tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// The hlog tag: `metric{k=v;k2=v2}` with characters the format forbids replaced.
    pub fn hlog_tag(&self) -> String {
        let raw = if self.tags.is_empty() {
            self.metric.clone()
        } else {
            format!("{}{{{}}}", self.metric, self.tags_text())
        };
        raw.chars()
            .map(|c| if c == ',' || c.is_whitespace() { '_' } else { c })
            .collect()
    }

    /// A key from the CSV's `metric` and `tags` columns.
    pub fn from_parts(metric: &str, tags_text: &str) -> Option<MetricKey> {
        let mut key = MetricKey::new(metric);
        for pair in tags_text.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=')?;
            key.tags.insert(k.to_string(), v.to_string());
        }
        Some(key)
    }

    /// Parses [`MetricKey::hlog_tag`] back.
    pub fn from_hlog_tag(tag: &str) -> Option<MetricKey> {
        match tag.split_once('{') {
            None => Some(MetricKey::new(tag)),
            Some((metric, rest)) => Self::from_parts(metric, rest.strip_suffix('}')?),
        }
    }
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tags.is_empty() {
            f.write_str(&self.metric)
        } else {
            let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, "{}{{{}}}", self.metric, tags.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        let k = MetricKey::new("sync_lag")
            .tag("service", "directory")
            .tag("op", "create_user");
        assert_eq!(k.to_string(), "sync_lag{op=create_user,service=directory}");
        assert_eq!(k.hlog_tag(), "sync_lag{op=create_user;service=directory}");
        assert_eq!(MetricKey::from_hlog_tag(&k.hlog_tag()), Some(k));
        assert_eq!(
            MetricKey::from_hlog_tag("admin_wait"),
            Some(MetricKey::new("admin_wait"))
        );
    }
}
