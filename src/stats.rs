//! Endpoint statistics (`--stats`): per role, method and route, how many exchanges, how fast,
//! with which outcome. A route is a path without its query, with the segments that vary
//! (numbers, UUIDs, long hex, long tokens) folded to `{id}`, unless a `--route` template
//! matches first. Latencies go into an HDR histogram of 2 significant digits: a percentile is
//! the middle of its bucket, within 0.5% of the exact one; the maximum is exact. Routes are
//! bounded: past MAX_ROUTES, exchanges count in one `other` row per role, and the rows folded
//! so are counted.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;

use crate::http::{Message, StartLine};
use crate::record::Record;

/// Distinct (role, method, route) rows kept; more fold into `other`.
pub const MAX_ROUTES: usize = 500;

/// A `--route` template: `/users/{id}/orders`; a `{...}` segment matches any one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate(String);

impl std::str::FromStr for RouteTemplate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if !s.starts_with('/') {
            return Err(format!(
                "'{s}' is not a route: it starts with /, as /users/{{id}}"
            ));
        }
        Ok(RouteTemplate(s.to_string()))
    }
}

impl RouteTemplate {
    fn matches(&self, path: &str) -> bool {
        let mut want = self.0.split('/');
        let mut got = path.split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if w == g || (w.starts_with('{') && w.ends_with('}')) => {}
                _ => return false,
            }
        }
    }
}

/// Whether a path segment is an identifier rather than a name: a number, a UUID, hex of 8
/// digits or more, or a long token (16+ characters of letters, digits, `-` and `_`, with a digit).
fn is_variable(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if uuid
        || (b.len() >= 8 && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit))
    {
        return true;
    }
    b.len() >= 16
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        && b.iter().any(u8::is_ascii_digit)
}

/// The route of `target`.
pub fn route(target: &str, templates: &[RouteTemplate]) -> String {
    let path = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    if let Some(t) = templates.iter().find(|t| t.matches(path)) {
        return t.0.clone();
    }
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_variable(seg) { "{id}" } else { seg });
    }
    out
}

#[derive(Debug, Clone)]
struct Row {
    count: u64,
    /// 1xx-2xx, 3xx, 4xx, 5xx, no response.
    outcomes: [u64; 5],
    /// Microseconds, of the exchanges with a response.
    latency_us: Histogram<u32>,
    /// The longest latency, exact (ns).
    max_ns: u64,
    request_bytes: u64,
    response_bytes: u64,
}

impl Row {
    fn new() -> Self {
        Self {
            count: 0,
            outcomes: [0; 5],
            // 1 us to an hour (longer counts as an hour): about 13 KB a row.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 2)
                .expect("valid histogram bounds"),
            max_ns: 0,
            request_bytes: 0,
            response_bytes: 0,
        }
    }
}

/// The columns of a table of rows.
pub const COLUMNS: [&str; 16] = [
    "role", "method", "route", "count", "req/s", "2xx", "3xx", "4xx", "5xx", "none", "p50 ms",
    "p90 ms", "p99 ms", "max ms", "req B", "resp B",
];

/// One row as printed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RowView {
    pub role: &'static str,
    pub method: String,
    pub route: String,
    pub count: u64,
    pub per_second: f64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub no_response: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_request_bytes: u64,
    pub mean_response_bytes: u64,
}

impl RowView {
    /// The row's cells under COLUMNS, with `per_second` as its rate.
    pub fn cells(&self, per_second: f64) -> [String; 16] {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        [
            self.role.to_string(),
            self.method.clone(),
            self.route.clone(),
            self.count.to_string(),
            format!("{per_second:.1}"),
            self.status_2xx.to_string(),
            self.status_3xx.to_string(),
            self.status_4xx.to_string(),
            self.status_5xx.to_string(),
            self.no_response.to_string(),
            ms(self.p50_ms),
            ms(self.p90_ms),
            ms(self.p99_ms),
            ms(self.max_ms),
            self.mean_request_bytes.to_string(),
            self.mean_response_bytes.to_string(),
        ]
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    templates: Vec<RouteTemplate>,
    rows: FxHashMap<(&'static str, String, String), Row>,
    /// Exchanges counted in an `other` row because MAX_ROUTES rows existed.
    pub folded: u64,
    first_ns: Option<u64>,
    last_ns: u64,
}

impl Stats {
    pub fn new(templates: Vec<RouteTemplate>) -> Self {
        Self {
            templates,
            ..Self::default()
        }
    }

    /// Count one record (an exchange with its request; others have no route).
    pub fn add(&mut self, rec: &Record) {
        let Record::Exchange {
            conn,
            request: Some(q),
            response,
            ..
        } = rec
        else {
            return;
        };
        let StartLine::Request { method, target } = q.start() else {
            return;
        };
        let mut key = (
            conn.role.as_str(),
            method.to_string(),
            route(target, &self.templates),
        );
        if !self.rows.contains_key(&key) && self.rows.len() >= MAX_ROUTES {
            self.folded += 1;
            key = (conn.role.as_str(), "*".to_string(), "other".to_string());
        }
        let row = self.rows.entry(key).or_insert_with(Row::new);
        row.count += 1;
        row.request_bytes += q.body_bytes;
        self.first_ns = Some(self.first_ns.map_or(q.ts_ns, |f| f.min(q.ts_ns)));
        self.last_ns = self.last_ns.max(q.ts_ns);
        let Some(r) = response.as_ref() else {
            row.outcomes[4] += 1;
            return;
        };
        row.response_bytes += r.body_bytes;
        row.outcomes[outcome(r)] += 1;
        let latency_ns = r.end_ts_ns.saturating_sub(q.ts_ns);
        row.max_ns = row.max_ns.max(latency_ns);
        row.latency_us.saturating_record(latency_ns / 1_000);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, busiest first (then by route), with rates over the span of the requests seen.
    pub fn rows(&self) -> Vec<RowView> {
        let span_s = self
            .first_ns
            .map_or(0.0, |f| self.last_ns.saturating_sub(f) as f64 / 1e9);
        let mut rows: Vec<RowView> = self
            .rows
            .iter()
            .map(|((role, method, route), r)| {
                let answered = !r.latency_us.is_empty();
                let max_ms = r.max_ns as f64 / 1e6;
                // The middle of the percentile's bucket (within 0.5% of the exact value), never
                // past the exact maximum.
                let q = |p: f64| {
                    answered.then(|| {
                        let h = &r.latency_us;
                        (h.median_equivalent(h.value_at_quantile(p)) as f64 / 1e3).min(max_ms)
                    })
                };
                RowView {
                    role,
                    method: method.clone(),
                    route: route.clone(),
                    count: r.count,
                    per_second: if span_s > 0.0 {
                        r.count as f64 / span_s
                    } else {
                        0.0
                    },
                    status_2xx: r.outcomes[0],
                    status_3xx: r.outcomes[1],
                    status_4xx: r.outcomes[2],
                    status_5xx: r.outcomes[3],
                    no_response: r.outcomes[4],
                    p50_ms: q(0.5),
                    p90_ms: q(0.9),
                    p99_ms: q(0.99),
                    max_ms: answered.then_some(max_ms),
                    mean_request_bytes: r.request_bytes / r.count.max(1),
                    mean_response_bytes: r.response_bytes / (r.count - r.outcomes[4]).max(1),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (a.role, &a.route, &a.method).cmp(&(b.role, &b.route, &b.method)))
        });
        rows
    }

    /// The rows as an aligned table.
    pub fn table(&self) -> String {
        let mut lines = vec![COLUMNS.map(str::to_string)];
        lines.extend(self.rows().iter().map(|r| r.cells(r.per_second)));
        let widths: Vec<usize> = (0..16)
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for l in &lines {
            for (i, cell) in l.iter().enumerate() {
                // Names left, numbers right.
                let w = widths[i];
                let sep = if i == 0 { "" } else { "  " };
                if i < 3 {
                    let _ = write!(out, "{sep}{cell:<w$}");
                } else {
                    let _ = write!(out, "{sep}{cell:>w$}");
                }
            }
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            out.push('\n');
        }
        if self.folded > 0 {
            let _ = writeln!(
                out,
                "({} exchanges of routes past the first {MAX_ROUTES} counted as other)",
                self.folded
            );
        }
        out
    }

    /// The rows as JSON lines of kind `stats`.
    pub fn json_lines(&self) -> String {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            kind: &'static str,
            #[serde(flatten)]
            row: &'a RowView,
        }
        let mut out = String::new();
        for row in self.rows() {
            let line = serde_json::to_string(&Line {
                kind: "stats",
                row: &row,
            })
            .expect("a row serializes");
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

/// Index of a response's outcome in Row::outcomes.
fn outcome(r: &Message) -> usize {
    match r.start() {
        StartLine::Response { status, .. } => match status {
            ..=299 => 0,
            300..=399 => 1,
            400..=499 => 2,
            _ => 3,
        },
        StartLine::Request { .. } => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Role;

    #[test]
    fn variable_segments_fold_and_templates_come_first() {
        let none: &[RouteTemplate] = &[];
        for (target, want) in [
            ("/users/42", "/users/{id}"),
            ("/users/42/orders?page=2", "/users/{id}/orders"),
            ("/o/3f2a9c1e-7b4d-4e8f-9a0b-1c2d3e4f5a6b", "/o/{id}"),
            ("/blob/deadbeef00", "/blob/{id}"),
            ("/t/AbCdEfGh12345678_-xy", "/t/{id}"),
            ("/health", "/health"),
            ("/v2/api", "/v2/api"),
            ("/static/app.js", "/static/app.js"),
            ("/deadbeef", "/deadbeef"),
            ("http://host:80/users/7", "/users/{id}"),
            ("/", "/"),
        ] {
            assert_eq!(route(target, none), want, "{target}");
        }
        let t: Vec<RouteTemplate> = vec!["/users/{name}".parse().unwrap()];
        assert_eq!(route("/users/alice", &t), "/users/{name}");
        assert_eq!(route("/users/alice/x", &t), "/users/alice/x");
        assert!("users".parse::<RouteTemplate>().is_err());
    }

    fn exchange(target: &str, status: Option<u16>, latency_ms: u64, ts_ms: u64) -> Record {
        let mut q = Message::build(&format!("GET {target} HTTP/1.1"), &[], b"", 0);
        q.ts_ns = ts_ms * 1_000_000;
        let response = status.map(|s| {
            let mut r = Message::build(&format!("HTTP/1.1 {s} X"), &[], b"abcd", 4);
            r.end_ts_ns = q.ts_ns + latency_ms * 1_000_000;
            r
        });
        Record::test_exchange(Role::Server, None, Some(q), response)
    }

    #[test]
    fn percentiles_counts_and_rates_of_known_latencies() {
        let mut s = Stats::new(Vec::new());
        // 1..=100 ms: p50 50, p90 90, p99 99, max 100; one 5xx and one unanswered besides.
        for i in 1..=100 {
            s.add(&exchange(&format!("/items/{i}"), Some(200), i, i * 10));
        }
        s.add(&exchange("/items/7", Some(503), 1000, 0));
        s.add(&exchange("/items/8", None, 0, 2000));
        let rows = s.rows();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.route.as_str(), r.count), ("/items/{id}", 102));
        assert_eq!((r.status_2xx, r.status_5xx, r.no_response), (100, 1, 1));
        let near = |got: Option<f64>, want: f64| {
            let got = got.unwrap();
            assert!((got - want).abs() <= want * 0.005, "{got} vs {want}");
        };
        near(r.p50_ms, 51.0); // 101 answered: the 51st smallest
        near(r.p90_ms, 91.0);
        near(r.p99_ms, 100.0);
        assert_eq!(r.max_ms, Some(1000.0));
        // 102 requests over 2 s.
        assert!((r.per_second - 51.0).abs() < 1e-9, "{}", r.per_second);
        assert_eq!(r.mean_response_bytes, 4);
        let line = s.table().lines().nth(1).unwrap().to_string();
        assert!(
            line.starts_with("server  GET     /items/{id}") && line.contains(" 102 "),
            "{line}"
        );
        assert!(s.json_lines().starts_with(
            r#"{"kind":"stats","role":"server","method":"GET","route":"/items/{id}","count":102,"#
        ));
    }

    #[test]
    fn routes_past_the_limit_fold_into_other() {
        let mut s = Stats::new(Vec::new());
        for i in 0..MAX_ROUTES + 10 {
            s.add(&exchange(&format!("/r{i}"), Some(200), 1, 1));
        }
        assert_eq!(s.folded, 10);
        assert_eq!(s.rows().len(), MAX_ROUTES + 1);
        assert_eq!(s.rows()[0].route, "other");
    }
}
