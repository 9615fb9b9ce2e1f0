//! What the kiosk page gets to draw the current screen: built from the machine's state, the
//! config, the printer's health and the session's order (read by the actor on a blocking thread,
//! never here).

use std::path::Path;

use serde::Serialize;

use super::files::SessionFiles;
use super::machine::{Rules, State};
use super::ErrorKind;
use crate::booth::health::Blocker;
use crate::booth::OrderView;
use crate::config::{Config, Language};
use crate::store::sessions::Stage;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorView {
    pub code: ErrorKind,
    pub message: Option<String>,
}

/// Everything the kiosk page needs to draw the current screen.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub session_id: Option<i64>,
    pub stage: Stage,
    /// The shot being taken (or the last one taken), 1-based.
    pub shot: u32,
    pub shots_total: u32,
    pub countdown_ends_at: Option<i64>,
    /// When the current screen gives up and returns to idle.
    pub deadline: Option<i64>,
    pub retakes_left: u32,
    pub photos: Vec<String>,
    /// The composed print, shown on the review screen.
    pub preview: Option<String>,
    pub order: Option<OrderView>,
    pub error: Option<ErrorView>,
    pub accepting_orders: bool,
    pub blocker: Option<Blocker>,
    pub language: Language,
    /// Whole sum.
    pub price_per_copy: i64,
    pub max_copies: u32,
    /// The daemon's clock, so the page can count down correctly whatever its own clock says.
    pub now: i64,
}

impl SessionView {
    /// The attract screen.
    pub fn idle(config: &Config, blocker: Option<Blocker>, now: i64) -> SessionView {
        SessionView {
            session_id: None,
            stage: Stage::Idle,
            shot: 0,
            shots_total: config.camera.shots,
            countdown_ends_at: None,
            deadline: None,
            retakes_left: config.session.max_retakes,
            photos: Vec::new(),
            preview: None,
            order: None,
            error: None,
            accepting_orders: blocker.is_none(),
            blocker,
            language: config.booth.language,
            price_per_copy: config.booth.price_per_copy,
            max_copies: config.booth.max_copies,
            now,
        }
    }

    /// The screen for `state`; `order` is the session's order as last read.
    pub fn of(
        state: &State,
        config: &Config,
        data_dir: &Path,
        blocker: Option<Blocker>,
        order: Option<OrderView>,
        now: i64,
    ) -> SessionView {
        let mut view = SessionView::idle(config, blocker, now);
        let Some(s) = &state.session else { return view };
        let rules = Rules::from_config(config);
        let files = SessionFiles::new(data_dir, s.id);
        view.session_id = Some(s.id);
        view.stage = s.stage;
        view.shot = match s.stage {
            Stage::Countdown | Stage::Capturing => s.shots_taken + 1,
            _ => s.shots_taken,
        };
        view.shots_total = s.shots_total;
        view.countdown_ends_at = state.countdown_ends_at;
        view.deadline = state.deadline(&rules);
        view.retakes_left = rules.max_retakes.saturating_sub(s.retakes_used);
        view.photos = (1..=s.shots_taken).map(|n| files.shot_url(n)).collect();
        if matches!(
            s.stage,
            Stage::Review | Stage::ChooseCopies | Stage::AwaitingPayment | Stage::Printing | Stage::Done
        ) {
            view.preview = Some(files.preview_url());
        }
        view.order = order.filter(|o| Some(o.order_id) == s.order_id);
        if s.stage == Stage::Error {
            view.error = Some(ErrorView {
                code: ErrorKind::parse(s.error_code.as_deref().unwrap_or_default()),
                message: s.error_message.clone(),
            });
        }
        view
    }
}
