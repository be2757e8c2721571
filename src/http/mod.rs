//! Incremental HTTP/1.1 parsing of one direction of a connection: requests, responses, or both
//! (a connection found already open has no known role until its first message).
//!
//! Bytes arrive in whatever pieces the syscalls moved; the parser finds message boundaries itself
//! (head by httparse; body by Content-Length, chunked encoding, the status and request method, or
//! the end of the connection), so one piece may hold several pipelined messages and one message
//! may span many pieces.
//!
//! - `message`: a message, its head's parts, and head parsing;
//! - `framing`: where a body ends;
//! - `lenient`: the steps outside RFC 9112's grammar a message was read with;
//! - `resync`: finding message starts in a stream;
//! - `parse`: the per-direction parser that ties them together.

#[cfg(test)]
mod corpus;
mod framing;
mod lenient;
mod message;
mod parse;
mod resync;

pub use lenient::Lenient;
pub use message::{header_name_bit, Message, RequestKind, StartLine};
pub use parse::{parse_pieces, Parsed, Parser, ParserStats, MAX_HEAD_BYTES};
