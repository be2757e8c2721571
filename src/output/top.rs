//! The live view (`--top`): the statistics of what is shown, refreshed every second on the
//! terminal's alternate screen like top(1), with the requests per second of the last interval,
//! and below them the latest errors and the slowest exchanges, as the text output prints them.
//!
//! `Board` is the model (fed the records as they are printed: filtered and redacted), `draw`
//! renders it on any ratatui backend (a test renders it in memory), and `Screen` owns the real
//! terminal: raw mode and the alternate screen from its start to its drop.

use std::collections::VecDeque;
use std::io::{self, Stdout};
use std::sync::Mutex;
use std::time::Duration;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};
use ratatui::{Frame, Terminal};
use rustc_hash::FxHashMap;

use crate::http::StartLine;
use crate::record::Record;
use crate::stats::{RouteTemplate, RowView, Stats, COLUMNS};

/// Lines kept in each list below the table: more than a tall terminal shows.
const LIST_LEN: usize = 100;

/// What the table is sorted by; a key switches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Count,
    Rate,
    P99,
    Errors,
}

impl SortKey {
    fn name(self) -> &'static str {
        match self {
            SortKey::Count => "count",
            SortKey::Rate => "req/s",
            SortKey::P99 => "p99",
            SortKey::Errors => "errors",
        }
    }
}

/// What a key pressed asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Sort(SortKey),
    Quit,
}

/// The key's command: c, r, p and e sort; q, Esc and Ctrl-C quit (raw mode turns Ctrl-C into a
/// key).
pub fn command(code: KeyCode, modifiers: KeyModifiers) -> Option<Command> {
    Some(match code {
        KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => Command::Quit,
        KeyCode::Char('q') | KeyCode::Esc => Command::Quit,
        KeyCode::Char('c') => Command::Sort(SortKey::Count),
        KeyCode::Char('r') => Command::Sort(SortKey::Rate),
        KeyCode::Char('p') => Command::Sort(SortKey::P99),
        KeyCode::Char('e') => Command::Sort(SortKey::Errors),
        _ => return None,
    })
}

/// One exchange in a list: its text line, and its latency.
#[derive(Debug, Clone)]
struct Listed {
    line: String,
    latency_ns: u64,
}

/// A row as shown: its statistics and its rate over the last interval.
#[derive(Debug, Clone)]
struct Shown {
    row: RowView,
    rate: f64,
}

impl Shown {
    fn errors(&self) -> u64 {
        self.row.status_4xx + self.row.status_5xx + self.row.no_response
    }
}

/// The model of the live view.
pub struct Board {
    stats: Stats,
    /// Each row's count at the last refresh.
    counts_then: FxHashMap<(&'static str, String, String), u64>,
    shown_then: u64,
    rows: Vec<Shown>,
    rate: f64,
    /// Exchanges shown (that passed the filters), and records in all.
    pub shown: u64,
    /// Newest first: 4xx, 5xx, no response, malformed.
    errors: VecDeque<Listed>,
    /// Slowest first, of the whole session.
    slowest: Vec<Listed>,
    sort: SortKey,
    /// The first line: what is traced, and how.
    pub title: String,
}

impl Board {
    pub fn new(templates: Vec<RouteTemplate>) -> Self {
        Self {
            stats: Stats::new(templates),
            counts_then: FxHashMap::default(),
            shown_then: 0,
            rows: Vec::new(),
            rate: 0.0,
            shown: 0,
            errors: VecDeque::new(),
            slowest: Vec::new(),
            sort: SortKey::Count,
            title: String::new(),
        }
    }

    /// The statistics of the session, for the table printed when the view closes.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// One record shown, with its line of the text output.
    pub fn add(&mut self, rec: &Record, line: &str) {
        let line = line.trim_end().to_string();
        let (error, latency_ns) = match rec {
            Record::Exchange {
                request, response, ..
            } => {
                self.shown += 1;
                self.stats.add(rec);
                let status = response.as_ref().map(|r| match r.start() {
                    StartLine::Response { status, .. } => status,
                    StartLine::Request { .. } => 0,
                });
                let latency = super::latency_ns(request.as_ref(), response.as_ref());
                (status.is_none_or(|s| s >= 400), latency)
            }
            Record::Malformed { .. } => (true, None),
        };
        if let Some(ns) = latency_ns {
            let slower_than_listed = self.slowest.len() < LIST_LEN
                || self.slowest.last().is_some_and(|l| ns > l.latency_ns);
            if slower_than_listed {
                let at = self.slowest.partition_point(|l| l.latency_ns >= ns);
                self.slowest.insert(
                    at,
                    Listed {
                        line: line.clone(),
                        latency_ns: ns,
                    },
                );
                self.slowest.truncate(LIST_LEN);
            }
        }
        if error {
            self.errors.push_front(Listed {
                line,
                latency_ns: latency_ns.unwrap_or(0),
            });
            self.errors.truncate(LIST_LEN);
        }
    }

    /// Take the statistics as they are now, `elapsed` after the last refresh: the rates are
    /// over that interval.
    pub fn refresh(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-3);
        self.rows = self
            .stats
            .rows()
            .into_iter()
            .map(|row| {
                let key = (row.role, row.method.clone(), row.route.clone());
                let then = self.counts_then.insert(key, row.count).unwrap_or(0);
                let rate = (row.count - then) as f64 / secs;
                Shown { row, rate }
            })
            .collect();
        self.rate = (self.shown - self.shown_then) as f64 / secs;
        self.shown_then = self.shown;
        self.sort_rows();
    }

    pub fn sort_by(&mut self, key: SortKey) {
        self.sort = key;
        self.sort_rows();
    }

    fn sort_rows(&mut self) {
        let key = self.sort;
        self.rows.sort_by(|a, b| {
            let by = match key {
                SortKey::Count => b.row.count.cmp(&a.row.count),
                SortKey::Rate => b.rate.total_cmp(&a.rate),
                SortKey::P99 => b
                    .row
                    .p99_ms
                    .unwrap_or(-1.0)
                    .total_cmp(&a.row.p99_ms.unwrap_or(-1.0)),
                SortKey::Errors => b.errors().cmp(&a.errors()),
            };
            by.then_with(|| b.row.count.cmp(&a.row.count))
                .then_with(|| {
                    (a.row.role, &a.row.route, &a.row.method).cmp(&(
                        b.row.role,
                        &b.row.route,
                        &b.row.method,
                    ))
                })
        });
    }
}

/// Render the board: a title line, the table, then the latest errors and the slowest exchanges.
pub fn draw(frame: &mut Frame, board: &Board) {
    // The table as tall as its rows, up to half the screen; the lists share the rest.
    let table_height = (board.rows.len() + 2).min(usize::from(frame.area().height / 2)) as u16;
    let [head, table, errors, slowest] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(table_height),
        Constraint::Fill(1),
        Constraint::Fill(1),
    ])
    .areas(frame.area());
    let bold = Style::default().add_modifier(Modifier::BOLD);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(board.title.as_str()),
            Line::from(format!(
                "{} exchanges, {:.1} req/s; sorted by {} (keys: c count, r req/s, p p99, e errors, q quit)",
                board.shown,
                board.rate,
                board.sort.name()
            )),
        ]),
        head,
    );
    // The table's columns but the mean body sizes: the live view is wide enough as it is.
    const SHOWN: usize = 14;
    let rows = board
        .rows
        .iter()
        .map(|s| Row::new(s.row.cells(s.rate)[..SHOWN].to_vec()));
    let mut widths = vec![
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Min(16),
    ];
    widths.extend([Constraint::Length(8); 2]);
    widths.extend([Constraint::Length(5); 5]);
    widths.extend([Constraint::Length(8); 4]);
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(COLUMNS[..SHOWN].to_vec()).style(bold))
            .column_spacing(1),
        table,
    );
    frame.render_widget(list("latest errors", board.errors.iter(), bold), errors);
    frame.render_widget(
        list("slowest exchanges", board.slowest.iter(), bold),
        slowest,
    );
}

/// A titled list of exchanges' lines.
fn list<'a>(title: &'a str, items: impl Iterator<Item = &'a Listed>, bold: Style) -> Paragraph<'a> {
    Paragraph::new(
        items
            .map(|l| Line::from(l.line.as_str()))
            .collect::<Vec<_>>(),
    )
    .block(Block::new().title(Line::from(title).style(bold)))
}

/// Log lines said while the view is on the screen: kept, and printed when it closes.
static HELD_LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Where the logger writes while `--top` runs (env_logger's pipe target).
pub struct HeldLog;

impl io::Write for HeldLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        HELD_LOG
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The log lines held so far.
pub fn take_held_log() -> Vec<u8> {
    std::mem::take(&mut *HELD_LOG.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The terminal, in raw mode on its alternate screen until dropped.
pub struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    pub fn open() -> io::Result<Self> {
        terminal::enable_raw_mode()?;
        let mut out = io::stdout();
        if let Err(e) = execute!(out, terminal::EnterAlternateScreen, cursor::Hide) {
            let _ = terminal::disable_raw_mode();
            return Err(e);
        }
        // From here on, dropping the screen restores the terminal.
        let terminal = Terminal::new(CrosstermBackend::new(out));
        match terminal {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }

    pub fn draw(&mut self, board: &Board) -> io::Result<()> {
        self.terminal.draw(|f| draw(f, board)).map(|_| ())
    }

    /// The commands of the keys pressed since the last call, without waiting.
    pub fn commands(&self) -> io::Result<Vec<Command>> {
        let mut out = Vec::new();
        while event::poll(Duration::ZERO)? {
            if let Event::Key(k) = event::read()? {
                if k.kind != KeyEventKind::Release {
                    out.extend(command(k.code, k.modifiers));
                }
            }
        }
        Ok(out)
    }
}

fn restore() {
    let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Role;
    use crate::http::Message;
    use ratatui::backend::TestBackend;

    fn exchange(target: &str, status: Option<u16>, latency_ms: u64, at_ms: u64) -> Record {
        let mut q = Message::build(&format!("GET {target} HTTP/1.1"), &[], b"", 0);
        q.ts_ns = at_ms * 1_000_000;
        let r = status.map(|s| {
            let mut r = Message::build(&format!("HTTP/1.1 {s} X"), &[], b"", 0);
            r.ts_ns = q.ts_ns;
            r.end_ts_ns = q.ts_ns + latency_ms * 1_000_000;
            r
        });
        Record::test_exchange(Role::Server, None, Some(q), r)
    }

    fn screen(board: &Board, width: u16, height: u16) -> Vec<String> {
        let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
        t.draw(|f| draw(f, board)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    fn board() -> Board {
        let mut b = Board::new(Vec::new());
        b.title = "http-trace: pid 7".into();
        for i in 0..30 {
            let rec = exchange(&format!("/users/{i}"), Some(200), 1 + i % 3, i);
            b.add(&rec, &format!("GET /users/{i} -> 200"));
        }
        for (i, status) in [Some(500), Some(503), Some(404), None]
            .into_iter()
            .enumerate()
        {
            let rec = exchange("/pay", status, 400 + i as u64, 100 + i as u64);
            b.add(&rec, &format!("POST /pay #{i} -> {status:?}"));
        }
        b.refresh(Duration::from_secs(2));
        b
    }

    #[test]
    fn table_rates_and_lists() {
        let mut b = board();
        assert_eq!(b.shown, 34);
        assert_eq!(b.rate, 17.0);
        let s = screen(&b, 120, 24);
        assert_eq!(s[0], "http-trace: pid 7");
        assert!(
            s[1].starts_with("34 exchanges, 17.0 req/s; sorted by count"),
            "{s:#?}"
        );
        assert!(s[2].starts_with("role   method  route"), "{s:#?}");
        // 30 at 15 req/s over the 2 s; the four of /pay are errors, one without a response.
        let users: Vec<&str> = s[3].split_whitespace().collect();
        assert_eq!(
            users,
            [
                "server",
                "GET",
                "/users/{id}",
                "30",
                "15.0",
                "30",
                "0",
                "0",
                "0",
                "0",
                "2.00",
                "3.00",
                "3.00",
                "3.00"
            ],
            "{s:#?}"
        );
        assert!(s[4].starts_with("server GET     /pay "), "{s:#?}");
        let errors = s.iter().position(|l| l == "latest errors").unwrap();
        assert_eq!(
            s[errors + 1..errors + 5],
            [
                "POST /pay #3 -> None",
                "POST /pay #2 -> Some(404)",
                "POST /pay #1 -> Some(503)",
                "POST /pay #0 -> Some(500)"
            ]
        );
        let slowest = s.iter().position(|l| l == "slowest exchanges").unwrap();
        assert_eq!(s[slowest + 1], "POST /pay #2 -> Some(404)");
        // Sorted by errors, /pay comes first; the next refresh's rate is of what came since.
        b.sort_by(SortKey::Errors);
        let s = screen(&b, 120, 24);
        assert!(s[3].starts_with("server GET     /pay "), "{s:#?}");
        b.refresh(Duration::from_secs(1));
        let s = screen(&b, 120, 24);
        assert!(
            s[1].starts_with("34 exchanges, 0.0 req/s; sorted by errors"),
            "{s:#?}"
        );
    }

    #[test]
    fn keys() {
        let none = KeyModifiers::NONE;
        assert_eq!(command(KeyCode::Char('q'), none), Some(Command::Quit));
        assert_eq!(
            command(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Command::Quit)
        );
        assert_eq!(
            command(KeyCode::Char('c'), none),
            Some(Command::Sort(SortKey::Count))
        );
        assert_eq!(
            command(KeyCode::Char('p'), none),
            Some(Command::Sort(SortKey::P99))
        );
        assert_eq!(command(KeyCode::Char('x'), none), None);
    }

    #[test]
    fn lists_are_bounded() {
        let mut b = Board::new(Vec::new());
        for i in 0..(LIST_LEN as u64 * 3) {
            b.add(&exchange("/x", Some(500), i, i), &format!("{i}"));
        }
        assert_eq!(b.errors.len(), LIST_LEN);
        assert_eq!(b.slowest.len(), LIST_LEN);
        assert_eq!(b.slowest[0].line, format!("{}", LIST_LEN * 3 - 1));
        assert_eq!(b.errors[0].line, format!("{}", LIST_LEN * 3 - 1));
    }
}
