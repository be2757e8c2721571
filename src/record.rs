//! What the pipeline hands to output: exchanges (a request and its response) and malformed
//! messages, each with what is known of its connection.

use crate::decode::{ConnMeta, Direction, Endpoints, Role};
use crate::http::Message;

/// What is known of a connection when a record is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub meta: ConnMeta,
    pub role: Role,
    pub endpoints: Option<Endpoints>,
    /// Its messages are the plaintext of TLS records, read through the TLS library's calls.
    pub tls: bool,
}

/// The process and fd that sent or received a response, where they are not those of its
/// request: one socket shared by several fds or processes (dup, fork, fd passing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Responder {
    pub tgid: u32,
    pub fd: i32,
}

/// What the tracker hands to output.
// Nearly every record is an exchange: boxing it would only add an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A request and its response; either is missing when it was not seen (the response is
    /// still due when tracing ends, or the request's head was lost). `conn.meta` names the
    /// calls that carried the request (the response's, without one); `responder`, the response's
    /// process and fd where they differ.
    Exchange {
        conn: ConnInfo,
        request: Option<Message>,
        response: Option<Message>,
        responder: Option<Responder>,
    },
    Malformed {
        conn: ConnInfo,
        direction: Direction,
        ts_ns: u64,
        reason: String,
    },
}

impl Record {
    /// The connection it came from.
    pub fn conn(&self) -> &ConnInfo {
        match self {
            Record::Exchange { conn, .. } | Record::Malformed { conn, .. } => conn,
        }
    }

    /// Heap bytes its messages hold.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Record::Exchange {
                request, response, ..
            } => [request, response]
                .iter()
                .filter_map(|m| m.as_ref())
                .map(Message::held_bytes)
                .sum(),
            Record::Malformed { reason, .. } => reason.capacity(),
        }
    }

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

#[cfg(test)]
impl Record {
    /// For tests: an exchange on fd 3 of process 1, thread 1, named "t".
    pub fn test_exchange(
        role: Role,
        endpoints: Option<Endpoints>,
        request: Option<Message>,
        response: Option<Message>,
    ) -> Record {
        Record::Exchange {
            conn: ConnInfo {
                meta: ConnMeta {
                    tgid: 1,
                    tid: 1,
                    fd: 3,
                    comm: crate::decode::Comm::new("t"),
                    thread: crate::decode::Comm::new("t"),
                },
                role,
                tls: false,
                endpoints,
            },
            request,
            response,
            responder: None,
        }
    }
}
