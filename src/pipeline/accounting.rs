//! The accounting that `--stats` ends with: every byte the followed calls moved, every request
//! head and every response the parsers found, shared out among the counters that say what
//! became of them, each counted once. The parts add up to the whole unless events were lost
//! (what they carried is not known): the difference is shown as unaccounted for.

use super::Counts;
use crate::http::ParserStats;
use crate::tracker::TrackerStats;

/// A whole and its parts, named as the summary names them; zero parts are left out of the
/// text, never of the JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub whole: u64,
    pub parts: Vec<(&'static str, u64)>,
}

impl Share {
    /// The whole less its parts: 0 when every one was counted once; more when events were
    /// lost; less would be a fault in the counts.
    pub fn unaccounted(&self) -> i128 {
        i128::from(self.whole) - self.parts.iter().map(|&(_, n)| i128::from(n)).sum::<i128>()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounting {
    pub bytes: Share,
    pub requests: Share,
    pub responses: Share,
}

impl Accounting {
    pub fn new(c: &Counts, t: &TrackerStats, parsed: &ParserStats) -> Self {
        let bytes = Share {
            whole: t.bytes_moved,
            parts: vec![
                ("in HTTP messages", parsed.message_bytes),
                ("counted but not captured", t.bytes_not_kept),
                ("moved by splice, not copied", t.bytes_spliced),
                ("moved outside the calls followed", t.bytes_unseen),
                ("of TLS records", t.bytes_tls_records),
                ("of non-HTTP traffic skipped", parsed.non_http_bytes),
                ("skipped to resynchronise", parsed.resync_bytes),
                (
                    "in a CONNECT tunnel or after a protocol switch",
                    parsed.switched_bytes,
                ),
                (
                    "in partial message heads dropped",
                    parsed.partial_head_bytes,
                ),
            ],
        };
        let requests = Share {
            whole: t.requests_seen,
            parts: vec![
                ("in exchanges shown", c.exchanges.saturating_sub(c.filtered)),
                ("in exchanges not shown: filtered", c.filtered),
                (
                    "with a head given up (counted malformed)",
                    t.request_heads_given_up,
                ),
                (
                    "given up: more than 4096 waited on one connection",
                    t.requests_given_up,
                ),
                ("given up to keep within 128 MiB held", t.requests_shed),
            ],
        };
        let responses = Share {
            whole: t.responses_seen,
            parts: vec![
                (
                    "in exchanges captured",
                    c.exchanges.saturating_sub(c.unanswered),
                ),
                ("whose request was not seen", t.unpaired_responses),
                ("sent before a whole request came", t.early_responses),
                (
                    "to bytes that were not an HTTP request",
                    t.responses_to_non_http,
                ),
                ("to requests given up, not shown", t.responses_skipped),
            ],
        };
        Self {
            bytes,
            requests,
            responses,
        }
    }

    /// The table on stderr after --stats' rows.
    pub fn table(&self) -> String {
        let mut s = String::from(
            "accounting (each byte and message counted once; unaccounted for: in events lost)\n",
        );
        for (name, share) in [
            ("bytes moved by the calls followed", &self.bytes),
            ("request heads seen", &self.requests),
            ("responses seen", &self.responses),
        ] {
            s.push_str(&format!("  {name:<54} {:>14}\n", share.whole));
            for &(part, n) in share.parts.iter().filter(|&&(_, n)| n > 0) {
                s.push_str(&format!("    {part:<52} {n:>14}\n"));
            }
            let rest = share.unaccounted();
            if rest != 0 {
                s.push_str(&format!("    {:<52} {rest:>14}\n", "unaccounted for"));
            }
        }
        s
    }

    /// One JSON line of kind `accounting`: each share's whole, parts (by the names the table
    /// uses) and what is unaccounted for.
    pub fn json_line(&self) -> String {
        let share = |s: &Share| {
            let parts: serde_json::Map<String, serde_json::Value> = s
                .parts
                .iter()
                .map(|&(k, n)| (k.to_string(), n.into()))
                .collect();
            serde_json::json!({
                "whole": s.whole,
                "parts": parts,
                "unaccounted": s.unaccounted() as i64,
            })
        };
        let line = serde_json::json!({
            "kind": "accounting",
            "bytes": share(&self.bytes),
            "requests": share(&self.requests),
            "responses": share(&self.responses),
        });
        format!("{line}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_of_each_whole_and_what_is_unaccounted_for() {
        let c = Counts {
            exchanges: 5,
            unanswered: 1,
            filtered: 2,
            ..Counts::default()
        };
        let t = TrackerStats {
            bytes_moved: 1000,
            bytes_not_kept: 100,
            requests_seen: 6,
            request_heads_given_up: 1,
            responses_seen: 5,
            unpaired_responses: 1,
            ..TrackerStats::default()
        };
        let parsed = ParserStats {
            message_bytes: 880,
            non_http_bytes: 10,
            ..ParserStats::default()
        };
        let a = Accounting::new(&c, &t, &parsed);
        assert_eq!(a.bytes.unaccounted(), 10);
        assert_eq!(a.requests.unaccounted(), 0);
        assert_eq!(a.responses.unaccounted(), 0);
        assert_eq!(
            a.table(),
            "accounting (each byte and message counted once; unaccounted for: in events lost)\n\
             \x20 bytes moved by the calls followed                                1000\n\
             \x20   in HTTP messages                                                880\n\
             \x20   counted but not captured                                        100\n\
             \x20   of non-HTTP traffic skipped                                      10\n\
             \x20   unaccounted for                                                  10\n\
             \x20 request heads seen                                                  6\n\
             \x20   in exchanges shown                                                3\n\
             \x20   in exchanges not shown: filtered                                  2\n\
             \x20   with a head given up (counted malformed)                          1\n\
             \x20 responses seen                                                      5\n\
             \x20   in exchanges captured                                             4\n\
             \x20   whose request was not seen                                        1\n"
        );
        let v: serde_json::Value = serde_json::from_str(&a.json_line()).unwrap();
        assert_eq!(v["kind"], "accounting");
        assert_eq!(v["bytes"]["whole"], 1000);
        assert_eq!(v["bytes"]["parts"]["counted but not captured"], 100);
        assert_eq!(v["bytes"]["parts"]["moved by splice, not copied"], 0);
        assert_eq!(v["bytes"]["unaccounted"], 10);
        assert_eq!(v["responses"]["unaccounted"], 0);
    }
}
