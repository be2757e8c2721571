//! What the pipeline hands to output: exchanges (a request and its response) and malformed
//! messages, each with what is known of its connection.

use crate::decode::{ConnMeta, Direction, Endpoints, Role};
use crate::http::Message;

/// What is known of a connection when a record is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    pub meta: ConnMeta,
    pub role: Role,
    pub endpoints: Option<Endpoints>,
}

/// What the tracker hands to output.
// Nearly every record is an exchange: boxing it would only add an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A request and its response; either is missing when it was not seen (the response is
    /// still due when tracing ends, or the request's head was lost).
    Exchange {
        conn: ConnInfo,
        request: Option<Message>,
        response: Option<Message>,
    },
    Malformed {
        conn: ConnInfo,
        direction: Direction,
        ts_ns: u64,
        reason: String,
    },
}

impl Record {
    /// When the record's first byte moved.
    pub fn ts_ns(&self) -> u64 {
        match self {
            Record::Exchange {
                request, response, ..
            } => request
                .as_ref()
                .or(response.as_ref())
                .map_or(0, |m| m.ts_ns),
            Record::Malformed { ts_ns, .. } => *ts_ns,
        }
    }
}
