//! The live view (--top) of a run: the terminal taken over, keys read, redrawn once a second.

use std::time::Instant;

use anyhow::{Context, Result};

use super::state::State;
use super::{Session, TOP_REFRESH};
use crate::output::top::{self, Board, Screen};
use crate::pipeline::Pipeline;

impl Session {
    /// Take the terminal over for the live view, titled with the banner.
    pub(super) fn open_screen(&self, banner: String) -> Result<()> {
        let screen = Screen::open().context("opening the terminal for --top")?;
        if let Some(board) = self.board_of(&mut self.state.borrow_mut()) {
            board.title = banner;
        }
        *self.screen.borrow_mut() = Some(screen);
        self.last_draw.set(Instant::now());
        self.draw(&mut self.state.borrow_mut())
    }

    pub(super) fn board_of<'s>(&self, s: &'s mut State) -> Option<&'s mut Board> {
        s.pipeline.as_mut().and_then(Pipeline::board)
    }

    pub(super) fn draw(&self, s: &mut State) -> Result<()> {
        if let (Some(screen), Some(board)) = (self.screen.borrow_mut().as_mut(), self.board_of(s)) {
            screen.draw(board).context("drawing the live view")?;
        }
        Ok(())
    }

    /// The live view: keys pressed, and a redraw once a second (or when the sort changed);
    /// false when q was pressed.
    pub(super) fn update_screen(&self, s: &mut State, now: Instant) -> Result<bool> {
        let commands = match self.screen.borrow().as_ref() {
            Some(screen) => screen.commands().context("reading the keyboard")?,
            None => return Ok(true),
        };
        let mut redraw = false;
        for c in commands {
            match c {
                top::Command::Quit => return Ok(false),
                top::Command::Sort(key) => {
                    if let Some(board) = self.board_of(s) {
                        board.sort_by(key);
                        redraw = true;
                    }
                }
            }
        }
        let elapsed = now.saturating_duration_since(self.last_draw.get());
        if elapsed >= TOP_REFRESH {
            self.last_draw.set(now);
            if let Some(board) = self.board_of(s) {
                board.refresh(elapsed);
            }
            redraw = true;
        }
        if redraw {
            self.draw(s)?;
        }
        Ok(true)
    }
}
