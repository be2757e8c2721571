//! Which exchanges are shown: the filters of the command line, ANDed across kinds and ORed
//! within one (`--method GET --method POST --status 5xx`: GET or POST, and a 5xx). Decided in
//! user space on each record before any output; what they hold back is counted.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use ipnet::IpNet;
use regex::Regex;

use crate::decode::{Endpoints, Role};
use crate::http::{Message, StartLine};
use crate::record::{ConnInfo, Record};

/// A `--status` value: one code, a class (`5xx`), a range (`400-499`), or `none` (no response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSpec {
    Code(u16),
    Range(u16, u16),
    NoResponse,
}

impl FromStr for StatusSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a status: 404, 5xx, 400-499 or none");
        let code = |t: &str| {
            t.parse::<u16>()
                .ok()
                .filter(|c| (100..=999).contains(c))
                .ok_or_else(bad)
        };
        if s.eq_ignore_ascii_case("none") {
            return Ok(StatusSpec::NoResponse);
        }
        if let Some(class) = s.strip_suffix("xx").or_else(|| s.strip_suffix("XX")) {
            let d = class
                .parse::<u16>()
                .ok()
                .filter(|d| (1..=9).contains(d))
                .ok_or_else(bad)?;
            return Ok(StatusSpec::Range(d * 100, d * 100 + 99));
        }
        if let Some((lo, hi)) = s.split_once('-') {
            let (lo, hi) = (code(lo)?, code(hi)?);
            if lo > hi {
                return Err(bad());
            }
            return Ok(StatusSpec::Range(lo, hi));
        }
        Ok(StatusSpec::Code(code(s)?))
    }
}

/// A `--peer` value: an address with or without its port, or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerSpec {
    Addr(SocketAddr),
    Net(IpNet),
}

impl FromStr for PeerSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(PeerSpec::Addr(a));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(PeerSpec::Net(IpNet::from(ip)));
        }
        s.parse::<IpNet>()
            .map(|n| PeerSpec::Net(n.trunc()))
            .map_err(|_| {
                format!("'{s}' is not an address: 10.0.0.5, 10.0.0.5:8080, [::1]:80 or 10.0.0.0/8")
            })
    }
}

impl PeerSpec {
    fn matches(&self, peer: SocketAddr) -> bool {
        let ip = unmapped(peer.ip());
        match self {
            PeerSpec::Addr(a) => unmapped(a.ip()) == ip && a.port() == peer.port(),
            PeerSpec::Net(n) => n.contains(&ip),
        }
    }
}

/// A `--header` value: `Name: substring`, the name matched case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSpec {
    name: String,
    value: String,
}

impl FromStr for HeaderSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, value) = s
            .split_once(':')
            .filter(|(n, _)| !n.trim().is_empty())
            .ok_or_else(|| format!("'{s}' is not 'Name: substring'"))?;
        Ok(HeaderSpec {
            name: name.trim().to_string(),
            value: value.trim_start().to_string(),
        })
    }
}

/// A `--path` glob: `*` within a path segment, `**` across them.
pub fn parse_glob(s: &str) -> Result<Glob, String> {
    GlobBuilder::new(s)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("'{s}' is not a glob: {e}"))
}

/// A `--path-regex` value.
pub fn parse_regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| {
        format!(
            "'{s}' is not a regular expression: {}",
            one_line(&e.to_string())
        )
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The filters, as the command line gives them.
#[derive(Debug, Clone, Default)]
pub struct FilterArgs {
    pub methods: Vec<String>,
    pub paths: Vec<Glob>,
    pub path_regexes: Vec<Regex>,
    pub hosts: Vec<String>,
    pub statuses: Vec<StatusSpec>,
    pub min_latency_ns: Option<u64>,
    pub role: Option<Role>,
    pub ports: Vec<u16>,
    pub peers: Vec<PeerSpec>,
    pub headers: Vec<HeaderSpec>,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    args: FilterArgs,
    paths: Option<GlobSet>,
}

impl Filter {
    pub fn new(args: FilterArgs) -> Result<Self, String> {
        let paths = if args.paths.is_empty() {
            None
        } else {
            let mut b = GlobSetBuilder::new();
            for g in &args.paths {
                b.add(g.clone());
            }
            Some(b.build().map_err(|e| e.to_string())?)
        };
        Ok(Self { args, paths })
    }

    /// Whether any filter is set.
    pub fn is_active(&self) -> bool {
        let a = &self.args;
        !(a.methods.is_empty()
            && self.paths.is_none()
            && a.path_regexes.is_empty()
            && a.hosts.is_empty()
            && a.statuses.is_empty()
            && a.min_latency_ns.is_none()
            && a.role.is_none()
            && a.ports.is_empty()
            && a.peers.is_empty()
            && a.headers.is_empty())
    }

    /// Whether `rec` is shown. A malformed message is shown only when no filter is set: it has
    /// no method, path or status to be judged by.
    pub fn matches(&self, rec: &Record) -> bool {
        if !self.is_active() {
            return true;
        }
        let Record::Exchange {
            conn,
            request,
            response,
            ..
        } = rec
        else {
            return false;
        };
        let (q, r) = (request.as_ref(), response.as_ref());
        let a = &self.args;
        self.conn_matches(conn)
            && (a.methods.is_empty()
                || method(q).is_some_and(|m| a.methods.iter().any(|w| w.eq_ignore_ascii_case(m))))
            && self.path_matches(q)
            && (a.hosts.is_empty()
                || host(q).is_some_and(|h| a.hosts.iter().any(|w| w.eq_ignore_ascii_case(h))))
            && (a.statuses.is_empty() || a.statuses.iter().any(|s| status_matches(*s, r)))
            && a.min_latency_ns
                .is_none_or(|min| latency_ns(q, r).is_some_and(|l| l >= min))
            && a.headers
                .iter()
                .all(|h| header_matches(h, q) || header_matches(h, r))
    }

    fn conn_matches(&self, conn: &ConnInfo) -> bool {
        let a = &self.args;
        if a.role.is_some_and(|role| role != conn.role) {
            return false;
        }
        let inet = match &conn.endpoints {
            Some(Endpoints::Inet { local, peer }) => Some((*local, *peer)),
            _ => None,
        };
        if !a.ports.is_empty()
            && !inet
                .is_some_and(|(l, p)| a.ports.contains(&l.port()) || a.ports.contains(&p.port()))
        {
            return false;
        }
        a.peers.is_empty() || inet.is_some_and(|(_, p)| a.peers.iter().any(|s| s.matches(p)))
    }

    fn path_matches(&self, q: Option<&Message>) -> bool {
        if self.paths.is_none() && self.args.path_regexes.is_empty() {
            return true;
        }
        let Some(path) = q.and_then(path) else {
            return false;
        };
        self.paths.as_ref().is_none_or(|g| g.is_match(path))
            && self.args.path_regexes.iter().all(|re| re.is_match(path))
    }
}

fn method(q: Option<&Message>) -> Option<&str> {
    match q?.start() {
        StartLine::Request { method, .. } => Some(method),
        StartLine::Response { .. } => None,
    }
}

/// The request's path: its target without the query, and without scheme and host when the
/// target is absolute (a proxy's request).
fn path(q: &Message) -> Option<&str> {
    let StartLine::Request { target, .. } = q.start() else {
        return None;
    };
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    Some(target.split(['?', '#']).next().unwrap_or(target))
}

/// The Host header without its port.
fn host(q: Option<&Message>) -> Option<&str> {
    let (_, v) = q?
        .headers()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"host"))?;
    let v = std::str::from_utf8(v).ok()?.trim();
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next();
    }
    Some(v.rsplit_once(':').map_or(v, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            v
        }
    }))
}

fn status_matches(s: StatusSpec, r: Option<&Message>) -> bool {
    let status = match r.map(Message::start) {
        Some(StartLine::Response { status, .. }) => Some(status),
        _ => None,
    };
    match (s, status) {
        (StatusSpec::NoResponse, None) => true,
        (StatusSpec::Code(c), Some(st)) => c == st,
        (StatusSpec::Range(lo, hi), Some(st)) => (lo..=hi).contains(&st),
        _ => false,
    }
}

/// From the request's first byte to the response's last, as the outputs say it.
fn latency_ns(q: Option<&Message>, r: Option<&Message>) -> Option<u64> {
    Some(r?.end_ts_ns.saturating_sub(q?.ts_ns))
}

fn header_matches(h: &HeaderSpec, m: Option<&Message>) -> bool {
    m.is_some_and(|m| {
        m.headers().any(|(n, v)| {
            n.eq_ignore_ascii_case(h.name.as_bytes())
                && String::from_utf8_lossy(v).contains(h.value.as_str())
        })
    })
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(
        role: Role,
        request: &str,
        headers: &[(&str, &str)],
        response: Option<&str>,
        latency_ms: u64,
    ) -> Record {
        let mut q = Message::build(request, headers, b"", 0);
        q.ts_ns = 1_000_000;
        q.end_ts_ns = 1_000_000;
        let r = response.map(|line| {
            let mut r = Message::build(line, &[("X-Served-By", "node-7")], b"", 0);
            r.ts_ns = 1_000_000 + latency_ms * 1_000_000;
            r.end_ts_ns = r.ts_ns;
            r
        });
        Record::test_exchange(
            role,
            Some(Endpoints::Inet {
                local: "127.0.0.1:8080".parse().unwrap(),
                peer: "10.1.2.3:40000".parse().unwrap(),
            }),
            Some(q),
            r,
        )
    }

    fn get(target: &str, status: u16) -> Record {
        exchange(
            Role::Server,
            &format!("GET {target} HTTP/1.1"),
            &[("Host", "api.example.com:8080"), ("X-Tenant", "acme-corp")],
            Some(&format!("HTTP/1.1 {status} X")),
            5,
        )
    }

    fn shown(args: FilterArgs, rec: &Record) -> bool {
        Filter::new(args).unwrap().matches(rec)
    }

    #[test]
    fn no_filter_shows_everything_and_a_filter_hides_malformed_messages() {
        let f = Filter::new(FilterArgs::default()).unwrap();
        assert!(!f.is_active());
        assert!(f.matches(&get("/a", 200)));
        let Record::Exchange { conn, .. } = get("/a", 200) else {
            unreachable!()
        };
        let malformed = Record::Malformed {
            conn,
            direction: crate::decode::Direction::In,
            ts_ns: 0,
            reason: "x".into(),
        };
        assert!(f.matches(&malformed));
        let methods = FilterArgs {
            methods: vec!["GET".into()],
            ..FilterArgs::default()
        };
        assert!(!shown(methods, &malformed));
    }

    #[test]
    fn methods_are_ored_and_compared_without_case() {
        let args = FilterArgs {
            methods: vec!["post".into(), "GET".into()],
            ..FilterArgs::default()
        };
        assert!(shown(args.clone(), &get("/a", 200)));
        let delete = exchange(
            Role::Server,
            "DELETE /a HTTP/1.1",
            &[],
            Some("HTTP/1.1 204 X"),
            1,
        );
        assert!(!shown(args, &delete));
    }

    #[test]
    fn path_globs_match_segments_and_the_path_without_its_query() {
        let glob = |g: &str| FilterArgs {
            paths: vec![parse_glob(g).unwrap()],
            ..FilterArgs::default()
        };
        assert!(shown(glob("/users/*"), &get("/users/42?x=1", 200)));
        assert!(!shown(glob("/users/*"), &get("/users/42/orders", 200)));
        assert!(shown(glob("/users/**"), &get("/users/42/orders", 200)));
        assert!(shown(
            glob("/users/*/orders"),
            &get("http://h/users/7/orders", 200)
        ));
        assert!(!shown(glob("/admin/**"), &get("/users/1", 200)));
        let re = FilterArgs {
            path_regexes: vec![parse_regex(r"^/users/\d+$").unwrap()],
            ..FilterArgs::default()
        };
        assert!(shown(re.clone(), &get("/users/42?q", 200)));
        assert!(!shown(re, &get("/users/me", 200)));
        assert!(parse_regex("(").is_err());
    }

    #[test]
    fn host_ignores_the_port_and_case() {
        let args = |h: &str| FilterArgs {
            hosts: vec![h.into()],
            ..FilterArgs::default()
        };
        assert!(shown(args("API.example.com"), &get("/", 200)));
        assert!(!shown(args("example.com"), &get("/", 200)));
        let v6 = exchange(
            Role::Server,
            "GET / HTTP/1.1",
            &[("Host", "[::1]:80")],
            None,
            0,
        );
        assert!(shown(args("::1"), &v6));
    }

    #[test]
    fn statuses_codes_classes_ranges_and_none() {
        for (spec, code, want) in [
            ("404", 404, true),
            ("404", 400, false),
            ("5xx", 503, true),
            ("5xx", 499, false),
            ("400-499", 451, true),
            ("400-499", 500, false),
            ("none", 200, false),
        ] {
            let args = FilterArgs {
                statuses: vec![spec.parse().unwrap()],
                ..FilterArgs::default()
            };
            assert_eq!(shown(args, &get("/", code)), want, "{spec} {code}");
        }
        let unanswered = exchange(Role::Server, "GET / HTTP/1.1", &[], None, 0);
        let none = FilterArgs {
            statuses: vec![StatusSpec::NoResponse],
            ..FilterArgs::default()
        };
        assert!(shown(none, &unanswered));
        let any_code = FilterArgs {
            statuses: vec!["1xx".parse().unwrap(), "200-599".parse().unwrap()],
            ..FilterArgs::default()
        };
        assert!(!shown(any_code, &unanswered));
        for bad in ["0", "10xx", "abc", "500-400", "99"] {
            assert!(bad.parse::<StatusSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn min_latency_role_port_peer_and_headers() {
        let slow = exchange(
            Role::Client,
            "GET /s HTTP/1.1",
            &[],
            Some("HTTP/1.1 200 X"),
            300,
        );
        let fast = get("/f", 200);
        let lat = FilterArgs {
            min_latency_ns: Some(250_000_000),
            ..FilterArgs::default()
        };
        assert!(shown(lat.clone(), &slow) && !shown(lat, &fast));
        let client = FilterArgs {
            role: Some(Role::Client),
            ..FilterArgs::default()
        };
        assert!(shown(client.clone(), &slow) && !shown(client, &fast));
        let port = |p| FilterArgs {
            ports: vec![p],
            ..FilterArgs::default()
        };
        assert!(shown(port(8080), &fast) && shown(port(40000), &fast) && !shown(port(81), &fast));
        let peer = |p: &str| FilterArgs {
            peers: vec![p.parse().unwrap()],
            ..FilterArgs::default()
        };
        assert!(shown(peer("10.1.2.3"), &fast));
        assert!(shown(peer("10.0.0.0/8"), &fast));
        assert!(shown(peer("10.1.2.3:40000"), &fast));
        assert!(!shown(peer("10.1.2.3:40001"), &fast));
        assert!(!shown(peer("127.0.0.1"), &fast));
        assert!("10.0.0.0/33".parse::<PeerSpec>().is_err());
        let header = |h: &str| FilterArgs {
            headers: vec![h.parse().unwrap()],
            ..FilterArgs::default()
        };
        assert!(shown(header("x-tenant: acme"), &fast));
        assert!(
            shown(header("X-Served-By: node-7"), &fast),
            "a response header"
        );
        assert!(!shown(header("X-Tenant: globex"), &fast));
        assert!("no colon".parse::<HeaderSpec>().is_err());
        // Across kinds: AND.
        let both = FilterArgs {
            role: Some(Role::Server),
            min_latency_ns: Some(250_000_000),
            ..FilterArgs::default()
        };
        assert!(!shown(both.clone(), &slow) && !shown(both, &fast));
    }
}
