//! What the server remembers of browser sessions, so that a cookie alone is not the whole
//! truth: OAuth `state`s already used (a login link works once) and sessions ended by logging
//! out (the cookie a browser still holds, or a copy of it, no longer works). Both are bounded:
//! a session lives at most [`SESSION_LIFETIME`], so an ended one need not be remembered longer,
//! and past the bounds the oldest state is dropped, or every session from before now ends.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// How long a browser session lasts; then the browser goes through the Hub's OAuth again,
/// without a prompt while it is logged in to the Hub.
pub const SESSION_LIFETIME: f64 = 12.0 * 3600.0;
/// OAuth states remembered as used, and sessions remembered as ended.
const MAX_REMEMBERED: usize = 10_000;

#[derive(Default)]
struct Book {
    used_states: HashSet<String>,
    state_order: VecDeque<String>,
    /// Ended sessions, by id, with when they were issued.
    ended: HashMap<String, f64>,
    /// Sessions issued before this are over (set when `ended` overflows).
    not_before: f64,
}

#[derive(Default)]
pub struct Sessions(Mutex<Book>);

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions")
    }
}

impl Sessions {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Mark an OAuth `state` used; `false` if it already was (a replayed callback).
    pub fn use_state(&self, state: &str) -> bool {
        let mut book = self.book();
        if !book.used_states.insert(state.to_owned()) {
            return false;
        }
        book.state_order.push_back(state.to_owned());
        if book.state_order.len() > MAX_REMEMBERED {
            if let Some(oldest) = book.state_order.pop_front() {
                book.used_states.remove(&oldest);
            }
        }
        true
    }

    /// Whether the session `id` issued at `issued` may still be used at `now`.
    pub fn live(&self, id: &str, issued: f64, now: f64) -> bool {
        let book = self.book();
        issued >= book.not_before
            && issued <= now + 60.0
            && now < issued + SESSION_LIFETIME
            && !book.ended.contains_key(id)
    }

    /// End the session `id` (issued at `issued`) at `now`.
    pub fn end(&self, id: &str, issued: f64, now: f64) {
        let mut book = self.book();
        book.ended
            .retain(|_, issued| now < *issued + SESSION_LIFETIME);
        if book.ended.len() >= MAX_REMEMBERED {
            // Too many to remember one by one: end every session issued so far.
            book.ended.clear();
            book.not_before = now;
        }
        book.ended.insert(id.to_owned(), issued);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_used_once_and_the_set_stays_bounded() {
        let sessions = Sessions::default();
        assert!(sessions.use_state("s"));
        assert!(!sessions.use_state("s"));
        for i in 0..=MAX_REMEMBERED {
            sessions.use_state(&i.to_string());
        }
        assert!(sessions.book().used_states.len() <= MAX_REMEMBERED);
    }

    #[test]
    fn an_ended_session_stays_ended_and_old_ones_expire() {
        let sessions = Sessions::default();
        assert!(sessions.live("a", 1000.0, 1001.0));
        sessions.end("a", 1000.0, 1001.0);
        assert!(!sessions.live("a", 1000.0, 1002.0));
        assert!(sessions.live("b", 1000.0, 1002.0));
        assert!(!sessions.live("b", 1000.0, 1000.0 + SESSION_LIFETIME));
        // Overflow ends everything issued until then, and nothing issued later.
        for i in 0..=MAX_REMEMBERED {
            sessions.end(&i.to_string(), 2000.0, 2000.0);
        }
        assert!(!sessions.live("c", 1999.0, 2001.0));
        assert!(sessions.live("d", 2001.0, 2002.0));
        assert!(sessions.book().ended.len() <= MAX_REMEMBERED);
    }
}
