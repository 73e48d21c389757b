//! Reading one state's listing page by page, planning each page and acting between pages once
//! enough is planned. With `--idle-by=work` the listing runs up to [`LOOKAHEAD_USERS`] ahead of
//! the planning, so that the servers of later pages are asked while a page waits for its
//! slowest answer: servers that stall on different pages hold up the pass once, not once each.

use std::collections::VecDeque;

use crate::http::{ErrorKind, HttpError, Peer};
use crate::hub::{users_query, UserState};
use crate::listing::{unsettled_allowance, Cursor, RecentNames};
use crate::models::User;

use super::super::jobs::{Listing, UserJob};
use super::super::probing::Probes;
use super::super::work_mode::Asking;
use super::super::{LARGEST_PAGE, LOG};
use super::Planner;

/// How many users the listing may run ahead of the planning with `--idle-by=work`: pages of
/// them are held in memory while their servers are asked.
const LOOKAHEAD_USERS: usize = 5_000;

/// A page listed and not yet planned.
struct Listed {
    /// Its number in the listing.
    number: u64,
    users: Vec<Result<User, serde_json::Error>>,
    /// The Hub's offset of the page after it, if any.
    next: Option<u64>,
    page_limit: u64,
}

/// One state's listing under way.
struct Reading<'a> {
    state: Option<UserState>,
    /// With `--idle-by=work`, what asks servers.
    asks: Option<&'a Probes<'a>>,
    asking: Asking<'a>,
    /// Where the next page is, if there is one to list.
    fetch_at: Option<(u64, Option<u64>)>,
    listed: VecDeque<Listed>,
    /// Users listed and not yet planned.
    ahead: usize,
    pages: u64,
    reread: u64,
    failed: Option<HttpError>,
    recent: RecentNames,
    cursor: Cursor,
    acting_early: bool,
}

impl<'a> Planner<'a> {
    /// List one state's users, acting on what is planned whenever enough of it waits.
    pub(super) async fn list(&mut self, state: Option<UserState>) -> Result<(), HttpError> {
        self.listing = match state {
            Some(UserState::Ready) => Listing::Ready,
            _ => Listing::Other,
        };
        let asks = self.probes.filter(|_| self.settings.work.by_work());
        let lookahead = if asks.is_some() { LOOKAHEAD_USERS } else { 0 };
        let mut reading = Reading {
            state,
            asks,
            asking: Asking::default(),
            fetch_at: Some((0, Some(self.settings.page_size.unwrap_or(LARGEST_PAGE)))),
            listed: VecDeque::new(),
            ahead: 0,
            pages: 0,
            reread: 0,
            failed: None,
            recent: RecentNames::default(),
            cursor: Cursor::default(),
            acting_early: true,
        };
        loop {
            let room = reading.listed.is_empty() || reading.ahead < lookahead;
            if let Some(at) = reading.fetch_at.filter(|_| room) {
                self.read_page(&mut reading, at).await;
                continue;
            }
            let Some(page) = reading.listed.pop_front() else {
                break;
            };
            let (next, page_limit) = (page.next, page.page_limit);
            self.plan_page(&mut reading, page).await;
            if self.warnings.waiting() >= self.settings.act_after {
                reading.asking.during(self.deliver_warnings()).await;
            }
            let more = reading.listed.back().map_or(next, |last| last.next);
            if let Some(hub_next) = more.filter(|_| reading.failed.is_none()) {
                self.act_early(&mut reading, hub_next, page_limit).await;
            }
        }
        log::debug!(
            target: LOG,
            "Listed users (state={}) in {} pages; {} read again after acting",
            state.map_or("any", UserState::query_value), reading.pages, reading.reread
        );
        reading.failed.map_or(Ok(()), Err)
    }

    /// List the page at `(offset, limit)` and start asking its servers; a failure ends the
    /// listing, and what was listed before it is still planned.
    async fn read_page(&mut self, reading: &mut Reading<'a>, (offset, limit): (u64, Option<u64>)) {
        let (hub, settings) = (self.hub, self.settings);
        let fetching = hub.list_users(reading.state, self.include_stopped, offset, limit);
        let page = reading.asking.during(fetching).await;
        reading.fetch_at = None;
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                reading.failed = Some(e);
                return;
            }
        };
        reading.pages += 1;
        let page_limit = page.next.as_ref().map_or(1, |next| next.limit.max(1));
        // The users a correction reads again are among the last listed: at most the users acted
        // on at once (fewer than `act_after`, plus the pages listed ahead) and the unsettled
        // allowance.
        reading.recent.keep_at_least(
            (settings
                .act_after
                .saturating_add(page.items.len())
                .saturating_add(reading.ahead) as u64)
                .saturating_add(unsettled_allowance(page_limit)),
        );
        let users: Vec<_> = page
            .items
            .iter()
            .map(|item| serde_json::from_str::<User>(item.get()))
            .collect();
        if let Some(probes) = reading.asks {
            reading
                .asking
                .start((probes, hub, settings), reading.pages, &users);
        }
        let next = match page.next {
            // Rebuilt from offset/limit against our base URL: `next.url` is built from the Host
            // the Hub saw, which the culler may not be able to reach.
            Some(next) if next.offset > offset => Some(next.offset),
            Some(next) => {
                reading.failed = Some(HttpError::new(
                    ErrorKind::Decode,
                    Peer::Hub,
                    &reqwest::Method::GET,
                    &users_query(reading.state, self.include_stopped, offset, limit),
                    format!(
                        "the next page's offset {} does not move forward",
                        next.offset
                    ),
                ));
                None
            }
            None => None,
        };
        reading.fetch_at =
            next.map(|n| (reading.cursor.resume(n, 0, page_limit), Some(page_limit)));
        reading.ahead += users.len();
        reading.listed.push_back(Listed {
            number: reading.pages,
            users,
            next,
            page_limit,
        });
    }

    /// Plan a listed page's users, once its servers have answered.
    async fn plan_page(&mut self, reading: &mut Reading<'a>, page: Listed) {
        if let Some(probes) = reading.asks {
            let settings = self.settings;
            reading
                .asking
                .finish(page.number, probes, settings, &mut self.work)
                .await;
        }
        reading.ahead -= page.users.len();
        let (recent, asking) = (&mut reading.recent, &mut reading.asking);
        let planning = async {
            let mut reread = 0;
            for user in page.users {
                if !self.plan_user(user, recent).await {
                    reread += 1;
                }
            }
            reread
        };
        reading.reread += asking.during(planning).await;
    }

    /// Act on what is planned once enough of it waits, before listing on from the Hub's
    /// `hub_next`. Acting moves the users after the acted ones, so the pages listed ahead are
    /// planned first.
    async fn act_early(&mut self, reading: &mut Reading<'a>, hub_next: u64, page_limit: u64) {
        let planned: usize = self.jobs.iter().map(UserJob::culls).sum();
        if !reading.acting_early || planned < self.settings.act_after {
            return;
        }
        while let Some(page) = reading.listed.pop_front() {
            self.plan_page(reading, page).await;
        }
        let acted = self.flush(false).await;
        if !reading.cursor.unsettle(acted.unsettled, page_limit) {
            reading.acting_early = false;
            log::warn!(
                target: LOG,
                "{} users' stops or deletions are still in progress or failed; listing the rest before acting again",
                reading.cursor.unsettled()
            );
        }
        reading.fetch_at = Some((
            reading.cursor.resume(hub_next, acted.left, page_limit),
            Some(page_limit),
        ));
    }
}
