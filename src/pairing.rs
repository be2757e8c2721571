//! Pairing requests with responses, in order, pipelined ones included (what Pixie's socket tracer
//! calls the stitcher). HTTP/1.x answers requests in the order they came, so the n-th response
//! of a connection belongs to its n-th request.

use std::collections::VecDeque;

use crate::decode::ConnMeta;
use crate::http::Message;
use crate::record::{ConnInfo, Record, Responder};

/// One exchange being put together, with the calls that carried each message (a socket's fds
/// and processes can differ from message to message).
#[derive(Default)]
struct Slot {
    request: Option<Message>,
    response: Option<Message>,
    /// Its response went by where the stream could not be followed: reported without one.
    response_lost: bool,
    request_by: Option<ConnMeta>,
    response_by: Option<ConnMeta>,
    /// A request given up (its head was too large or malformed): its response is taken and
    /// dropped, and nothing reported; the parser reported and counted the request.
    given_up: bool,
}

/// Exchanges waiting for their response on one connection, at most. Past it, the oldest whole
/// request is given up (counted) and the response that answers it skipped: a server that reads
/// ahead of its answers (pipelining) cannot make the tracer hold every request it read.
pub const MAX_WAITING: usize = 4096;

impl Slot {
    /// A whole request whose response is still due.
    fn waiting(&self) -> bool {
        self.request.is_some() && self.response.is_none() && !self.response_lost
    }
}

/// Responses held for their request at most, per connection; past it the oldest is counted as
/// one whose request was not seen.
pub const MAX_HELD_RESPONSES: usize = 64;

/// A response that found no request waiting. Its request may still come: events are numbered
/// as their calls end, so a response received on one thread can take a lower number than the
/// request another thread sent before it (a relay's reader and writer) when the sender's exit
/// is the slower (copying a splice's pages). A request whose head moved before the response's
/// first bytes, arriving later, is its request (Pixie's stitcher pairs by time the same way).
struct HeldResponse {
    message: Message,
    by: ConnMeta,
}

/// A connection's exchanges whose request head has been seen, oldest first.
#[derive(Default)]
pub struct Pairs {
    slots: VecDeque<Slot>,
    /// Responses no request waited for, oldest first, held for a request still to come.
    held_responses: VecDeque<HeldResponse>,
    /// Responses held and then given up (no request came for them) since the caller last took
    /// the count: their requests were not seen.
    pub unpaired: u64,
    /// Responses still to come for requests given up: each is skipped, not paired.
    skip_responses: u64,
    /// Requests given up since the caller last took the count.
    pub given_up: u64,
    /// Responses skipped (their requests were given up) since the caller last took the count.
    pub skipped_responses: u64,
    /// Heap bytes of the requests held (Message::held_bytes).
    held: usize,
}

impl Pairs {
    /// A request head was read, its first bytes moved at `ts_ns`: its exchange takes the next
    /// place, before its body is in, so that a response that comes first still finds it.
    /// `by`: the call that read or wrote it. True when a response held is its answer (its
    /// framing was read without the request's method).
    pub fn request_started(&mut self, by: ConnMeta, ts_ns: u64) -> bool {
        // Responses held that came before this request moved answered requests not seen.
        while self
            .held_responses
            .front()
            .is_some_and(|h| h.message.ts_ns <= ts_ns)
        {
            self.give_up_held();
        }
        self.make_room();
        let held = self.held_responses.pop_front();
        if let Some(h) = &held {
            self.held -= h.message.held_bytes();
        }
        let answered = held.is_some();
        self.slots.push_back(Slot {
            request_by: Some(by),
            response_by: held.as_ref().map(|h| h.by),
            response: held.map(|h| h.message),
            ..Slot::default()
        });
        answered
    }

    /// The oldest response held is given up: its request was not seen.
    fn give_up_held(&mut self) {
        if let Some(h) = self.held_responses.pop_front() {
            self.held -= h.message.held_bytes();
            self.unpaired += 1;
        }
    }

    /// Give up every response held (the connection ended, or its stream lost its place).
    pub fn give_up_held_responses(&mut self) {
        while !self.held_responses.is_empty() {
            self.give_up_held();
        }
    }

    /// A request that is given up (its head was too large or malformed) takes the next place:
    /// its response is skipped, so that the next one is paired with the next request.
    pub fn request_given_up(&mut self) {
        self.make_room();
        self.slots.push_back(Slot {
            given_up: true,
            ..Slot::default()
        });
    }

    /// A whole request.
    pub fn request(&mut self, m: Message, by: ConnMeta) {
        match self
            .slots
            .iter_mut()
            .find(|s| s.request.is_none() && !s.given_up)
        {
            Some(slot) => {
                self.held += m.held_bytes();
                slot.request = Some(m);
                slot.request_by.get_or_insert(by);
            }
            None => {
                self.held += m.held_bytes();
                self.make_room();
                self.slots.push_back(Slot {
                    request: Some(m),
                    request_by: Some(by),
                    ..Slot::default()
                });
            }
        }
    }

    /// At MAX_WAITING exchanges, give up the oldest if its request is whole and its response
    /// still due (one whose request is still coming in stays: its place is not known yet).
    fn make_room(&mut self) {
        if self.slots.len() < MAX_WAITING {
            return;
        }
        if self.slots.front().is_some_and(Slot::waiting) {
            self.give_up_front();
            self.given_up += 1;
        }
    }

    fn give_up_front(&mut self) {
        if let Some(slot) = self.slots.pop_front() {
            self.held -= slot.request.as_ref().map_or(0, Message::held_bytes);
            self.skip_responses += 1;
        }
    }

    /// Heap bytes of the requests held.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Give up the whole requests waiting for their responses from the oldest, as at
    /// MAX_WAITING, to free memory; returns how many.
    pub fn shed(&mut self) -> u64 {
        let mut n = 0;
        while self.slots.front().is_some_and(Slot::waiting) {
            self.give_up_front();
            n += 1;
        }
        n
    }

    /// A whole response; false when no request waits for one (it was not seen). With `hold`,
    /// such a response is held for a request still to come (HeldResponse) and true returned.
    pub fn response(&mut self, m: Message, by: ConnMeta, hold: bool) -> bool {
        if self.skip_responses > 0 {
            // The answer to the oldest request given up: responses come in request order.
            self.skip_responses -= 1;
            self.skipped_responses += 1;
            return true;
        }
        match self
            .slots
            .iter_mut()
            .find(|s| s.response.is_none() && !s.response_lost)
        {
            Some(slot) if slot.given_up => {
                slot.response_lost = true;
                self.skipped_responses += 1;
                true
            }
            Some(slot) => {
                slot.response = Some(m);
                slot.response_by = Some(by);
                true
            }
            None if hold => {
                if self.held_responses.len() >= MAX_HELD_RESPONSES {
                    self.give_up_held();
                }
                self.held += m.held_bytes();
                self.held_responses
                    .push_back(HeldResponse { message: m, by });
                true
            }
            None => false,
        }
    }

    /// The responses' stream lost its place at `ts_ns`: the requests received before then that
    /// still wait were answered in what went by unseen. Their exchanges are done, without a
    /// response, so that the next response found is not paired with one of them. (A response
    /// to a pipelined request the lost bytes did not hold is then reported as one whose request
    /// was not seen: not paired with the wrong request.)
    pub fn responses_lost(&mut self, ts_ns: u64) {
        for slot in &mut self.slots {
            let before = slot.request.as_ref().is_some_and(|q| q.ts_ns < ts_ns);
            if before && slot.response.is_none() {
                slot.response_lost = true;
            }
        }
    }

    /// Hand the exchanges that are complete, from the oldest, to `out`.
    pub fn take_complete(&mut self, conn: &ConnInfo, out: &mut Vec<Record>) {
        while self.slots.front().is_some_and(|s| {
            (s.request.is_some() || s.given_up) && (s.response.is_some() || s.response_lost)
        }) {
            self.emit_front(conn, out);
        }
    }

    /// The connection or tracing ended: hand every exchange to `out`, complete or not.
    pub fn take_all(&mut self, conn: &ConnInfo, out: &mut Vec<Record>) {
        self.give_up_held_responses();
        while !self.slots.is_empty() {
            self.emit_front(conn, out);
        }
    }

    fn emit_front(&mut self, conn: &ConnInfo, out: &mut Vec<Record>) {
        let slot = self.slots.pop_front();
        self.held -= slot
            .as_ref()
            .and_then(|s| s.request.as_ref())
            .map_or(0, Message::held_bytes);
        if let Some(slot) = slot.filter(|s| !s.given_up) {
            let responder = match (slot.request_by, slot.response_by) {
                (Some(q), Some(r)) if (q.tgid, q.fd) != (r.tgid, r.fd) => Some(Responder {
                    tgid: r.tgid,
                    fd: r.fd,
                }),
                _ => None,
            };
            let meta = slot.request_by.or(slot.response_by).unwrap_or(conn.meta);
            out.push(Record::Exchange {
                conn: ConnInfo {
                    meta,
                    ..conn.clone()
                },
                request: slot.request,
                response: slot.response,
                responder,
            });
        }
    }
}
