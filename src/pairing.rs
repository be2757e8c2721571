//! Pairing requests with responses, in order, pipelined ones included (what Pixie's socket tracer
//! calls the stitcher). HTTP/1.x answers requests in the order they came, so the n-th response
//! of a connection belongs to its n-th request.

use std::collections::VecDeque;

use crate::http::Message;
use crate::record::{ConnInfo, Record};

/// One exchange being put together.
#[derive(Default)]
struct Slot {
    request: Option<Message>,
    response: Option<Message>,
}

/// A connection's exchanges whose request head has been seen, oldest first.
#[derive(Default)]
pub struct Pairs {
    slots: VecDeque<Slot>,
}

impl Pairs {
    /// A request head was read: its exchange takes the next place, before its body is in, so
    /// that a response that comes first still finds it.
    pub fn request_started(&mut self) {
        self.slots.push_back(Slot::default());
    }

    /// A whole request.
    pub fn request(&mut self, m: Message) {
        match self.slots.iter_mut().find(|s| s.request.is_none()) {
            Some(slot) => slot.request = Some(m),
            None => self.slots.push_back(Slot {
                request: Some(m),
                response: None,
            }),
        }
    }

    /// A whole response; false when no request waits for one (it was not seen).
    pub fn response(&mut self, m: Message) -> bool {
        match self.slots.iter_mut().find(|s| s.response.is_none()) {
            Some(slot) => {
                slot.response = Some(m);
                true
            }
            None => false,
        }
    }

    /// Hand the exchanges that are complete, from the oldest, to `out`.
    pub fn take_complete(&mut self, conn: ConnInfo, out: &mut Vec<Record>) {
        while self
            .slots
            .front()
            .is_some_and(|s| s.request.is_some() && s.response.is_some())
        {
            self.emit_front(conn, out);
        }
    }

    /// The connection or tracing ended: hand every exchange to `out`, complete or not.
    pub fn take_all(&mut self, conn: ConnInfo, out: &mut Vec<Record>) {
        while !self.slots.is_empty() {
            self.emit_front(conn, out);
        }
    }

    fn emit_front(&mut self, conn: ConnInfo, out: &mut Vec<Record>) {
        if let Some(slot) = self.slots.pop_front() {
            out.push(Record::Exchange {
                conn,
                request: slot.request,
                response: slot.response,
            });
        }
    }
}
