//! How a series is named and drawn for people, the same in every chart of `report.html` and on
//! the live dashboard: a readable label (`create_user → crm`, never
//! `sync_lag{op=create_user,service=crm}`) and one style per label (a colour of a fixed palette
//! of twenty, then dashes). The label is the series *key* the colour belongs to: an operation's
//! API latency, queue delay and end-to-end time share its colour, and each `op → service` pair
//! of sync lag has its own.

use std::collections::BTreeSet;

use super::{MetricKey, metric, tag};

/// Twenty colours told apart on white (Tableau's ten, then darker or distinct others); a run
/// with more series than this draws the rest dashed, then dotted.
pub const PALETTE: [&str; 20] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e7298a", "#17becf", "#bcbd22", "#7f7f7f",
    "#393b79", "#1b9e77", "#843c39", "#66a61e", "#7b4173", "#a6761d", "#222222", "#6baed6", "#fc8d62", "#7570b3",
];

/// SVG `stroke-dasharray` per round of the palette: solid, dashed, dotted, dash-dot.
const DASHES: [&str; 4] = ["", "7 4", "2 3", "8 3 2 3"];

/// How one series is drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style {
    pub colour: &'static str,
    /// Empty for a solid line.
    pub dash: &'static str,
}

/// The metrics charted per series (the rest are tabulated only).
pub const CHARTED: [&str; 4] = [
    metric::API_LATENCY,
    metric::QUEUE_DELAY,
    metric::SYNC_LAG,
    metric::END_TO_END,
];

/// A key as people read it: `create_user`, `create_user → crm`, `crm`; other tags as
/// `category=security`; a key without tags by its metric (`admin_wait`).
pub fn label(key: &MetricKey) -> String {
    match (key.get(tag::OP), key.get(tag::SERVICE)) {
        (Some(op), Some(service)) => format!("{op} → {service}"),
        (Some(op), None) => op.to_string(),
        (None, Some(service)) => service.to_string(),
        (None, None) if key.tags.is_empty() => key.metric.clone(),
        (None, None) => key
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The style of every label of a run: the labels sorted, the n-th gets the n-th colour (then
/// dashes). Built from the same keys (the run's charted series) it gives the same style to the
/// same label in every chart and on the dashboard.
#[derive(Debug, Clone, Default)]
pub struct Styles {
    labels: Vec<String>,
}

impl Styles {
    /// From the keys of a run: only the [`CHARTED`] metrics count.
    pub fn of<'a>(keys: impl IntoIterator<Item = &'a MetricKey>) -> Styles {
        let labels: BTreeSet<String> = keys
            .into_iter()
            .filter(|k| CHARTED.contains(&k.metric.as_str()))
            .map(label)
            .collect();
        Styles {
            labels: labels.into_iter().collect(),
        }
    }

    /// The style of `label`; a line that is none of the run's series (the whole run's
    /// `operations/s`, `errors/s`) is drawn apart from every palette colour (see [`whole`]).
    pub fn style(&self, label: &str) -> Style {
        match self.labels.binary_search_by(|l| l.as_str().cmp(label)) {
            Ok(i) => Style {
                colour: PALETTE[i % PALETTE.len()],
                dash: DASHES[(i / PALETTE.len()) % DASHES.len()],
            },
            Err(_) => whole(label),
        }
    }

    /// Every label with its style, in order.
    pub fn all(&self) -> impl Iterator<Item = (&str, Style)> {
        self.labels.iter().map(|l| (l.as_str(), self.style(l)))
    }
}

/// A whole-run line: near-black for operations, dashed dark red for errors, dashed grey for
/// anything else; none of them a palette colour.
pub fn whole(label: &str) -> Style {
    match label {
        "operations/s" => Style {
            colour: "#111111",
            dash: "",
        },
        "errors/s" => Style {
            colour: "#b91c1c",
            dash: "7 4",
        },
        _ => Style {
            colour: "#555555",
            dash: "2 3",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_people_say_them() {
        let lag = MetricKey::new(metric::SYNC_LAG)
            .tag(tag::OP, "create_user")
            .tag(tag::SERVICE, "crm");
        assert_eq!(label(&lag), "create_user → crm");
        assert_eq!(
            label(&MetricKey::new(metric::API_LATENCY).tag(tag::OP, "create_user")),
            "create_user"
        );
        assert_eq!(label(&MetricKey::new(metric::ADMIN_WAIT)), "admin_wait");
        assert_eq!(
            label(&MetricKey::new(metric::CHECKS).tag("category", "security")),
            "category=security"
        );
    }

    /// An operation has one style across its metrics; every label of a run up to the palette's
    /// size has its own colour, and beyond it its own colour and dash.
    #[test]
    fn one_style_per_label_and_no_two_alike() {
        let mut keys = Vec::new();
        for op in 0..5 {
            keys.push(MetricKey::new(metric::API_LATENCY).tag(tag::OP, &format!("op{op}")));
            keys.push(MetricKey::new(metric::END_TO_END).tag(tag::OP, &format!("op{op}")));
            for s in 0..6 {
                keys.push(
                    MetricKey::new(metric::SYNC_LAG)
                        .tag(tag::OP, &format!("op{op}"))
                        .tag(tag::SERVICE, &format!("s{s}")),
                );
            }
        }
        keys.push(MetricKey::new(metric::LOGIN_LATENCY));
        let styles = Styles::of(&keys);
        let all: Vec<(&str, Style)> = styles.all().collect();
        assert_eq!(all.len(), 35, "5 operations and 30 pairs; login latency is not charted");
        let distinct: BTreeSet<(&str, &str)> = all.iter().map(|(_, s)| (s.colour, s.dash)).collect();
        assert_eq!(distinct.len(), all.len());
        let first: BTreeSet<&str> = all[..20].iter().map(|(_, s)| s.colour).collect();
        assert_eq!(first.len(), 20);
        assert_eq!(
            styles.style("op3").colour,
            Styles::of(keys.iter().rev()).style("op3").colour
        );
        assert_ne!(styles.style("operations/s"), styles.style("errors/s"));
        assert!(!PALETTE.contains(&styles.style("operations/s").colour));
    }
}
