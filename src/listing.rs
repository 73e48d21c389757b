//! Listing while acting: where the next page starts after the pass has removed users it
//! already listed, and how users read twice are recognised.
//!
//! The Hub pages users by offset over a set ordered by id: `state=ready` is the users with any
//! server record (post-filtered to ready ones), `state=inactive` the users without one. A user
//! the pass removes from that set (its last server stopped, or the user deleted) moves every
//! later user one place down. So the next page must start earlier by as many listed users as may
//! have left. Starting too early only reads again users already seen, which [`RecentNames`]
//! recognises; starting too late would let users slide past the listing unseen.
//!
//! A user whose stop is still in progress (the Hub answered 202) or failed may leave at any later
//! moment, so every later page starts earlier by their number too ([`Cursor`]). That costs a
//! re-read per page for each of them, so at most a tenth of a page of them is allowed for; past
//! that the pass stops acting until its listing is done, as it would without acting early.

use std::collections::HashMap;

/// How far back the next page starts, given what the pass did since the last page.
#[derive(Debug, Default)]
pub struct Cursor {
    /// Users acted on who may still leave the listed set later (stop slow or failed).
    unsettled: u64,
}

/// At most this many unsettled users are allowed for with pages of `limit`: each costs a re-read
/// on every later page, and a page must still move the listing forward.
pub fn unsettled_allowance(limit: u64) -> u64 {
    limit / 10
}

impl Cursor {
    /// The offset to ask for next: the Hub's `next` offset, moved back by the users acted on
    /// since that page was asked for (`left`) and by those still unsettled from before.
    pub fn resume(&self, hub_next: u64, left: u64, limit: u64) -> u64 {
        hub_next.saturating_sub(left + self.unsettled.min(unsettled_allowance(limit)))
    }

    /// Count users just acted on whose leaving is still open; `false` when there are now more
    /// than can be allowed for, and the pass should stop acting before its listing is done.
    pub fn unsettle(&mut self, users: u64, limit: u64) -> bool {
        self.unsettled += users;
        self.unsettled <= unsettled_allowance(limit)
    }

    pub fn unsettled(&self) -> u64 {
        self.unsettled
    }
}

/// The names of the last users listed, to recognise a user listed again after the listing moved
/// back. Memory is bounded by what [`RecentNames::keep_at_least`] asks for, not by the Hub.
#[derive(Debug, Default)]
pub struct RecentNames {
    /// Each name, with its place in the order of recording.
    last_seen: HashMap<String, u64>,
    recorded: u64,
    keep: u64,
}

impl RecentNames {
    /// Remember at least the last `keep` names from now on.
    pub fn keep_at_least(&mut self, keep: u64) {
        self.keep = self.keep.max(keep);
    }

    /// Record a listed user; `false` if it is one of the last `keep` recorded (read again).
    /// A name read again moves up to now: a user that stays listed after a failed stop is
    /// read again at the start of every later page, and must be recognised each time.
    pub fn record(&mut self, name: &str) -> bool {
        let recorded = self.recorded;
        if let Some(at) = self.last_seen.get_mut(name) {
            if at.saturating_add(self.keep) >= recorded {
                *at = recorded.saturating_sub(1);
                return false;
            }
        }
        self.recorded += 1;
        self.last_seen.insert(name.to_owned(), recorded);
        // Forget older names now and then, so this costs O(1) per name.
        if self.last_seen.len() as u64 > self.keep.max(1).saturating_mul(2) {
            let oldest = self.recorded.saturating_sub(self.keep);
            self.last_seen.retain(|_, at| *at >= oldest);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.last_seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last_seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Hub's ordered set; `page` returns the names at `offset..offset + limit`.
    fn page(set: &[u32], offset: u64, limit: u64) -> Vec<u32> {
        set.iter()
            .skip(usize::try_from(offset).unwrap())
            .take(usize::try_from(limit).unwrap())
            .copied()
            .collect()
    }

    #[test]
    fn the_next_page_starts_back_by_the_users_that_left() {
        let cursor = Cursor::default();
        assert_eq!(cursor.resume(200, 30, 100), 170);
        assert_eq!(cursor.resume(20, 30, 100), 0);
    }

    #[test]
    fn unsettled_users_move_every_later_page_back_within_the_allowance() {
        let mut cursor = Cursor::default();
        assert!(cursor.unsettle(3, 100));
        assert_eq!(cursor.resume(400, 0, 100), 397);
        assert!(cursor.unsettle(7, 100));
        assert!(!cursor.unsettle(1, 100));
        assert_eq!(cursor.unsettled(), 11);
        // Beyond the allowance the listing still moves forward.
        assert_eq!(cursor.resume(400, 0, 100), 390);
        let mut tiny = Cursor::default();
        assert!(!tiny.unsettle(1, 5));
        assert_eq!(tiny.resume(10, 0, 5), 10);
    }

    #[test]
    fn names_read_again_are_recognised_within_the_window() {
        let mut recent = RecentNames::default();
        recent.keep_at_least(3);
        for name in ["a", "b", "c", "d"] {
            assert!(recent.record(name));
        }
        assert!(!recent.record("d"));
        assert!(!recent.record("b"));
        for name in ["e", "f", "g", "h", "i"] {
            assert!(recent.record(name));
        }
        // Old names are forgotten, so memory does not grow with the listing.
        assert!(recent.len() <= 6);
        assert!(recent.record("a"));
    }

    /// Simulate a listing of 1..=n that removes some users after each page, with pages and
    /// removals of every size: every user is seen exactly once, and none is missed.
    #[test]
    fn acting_between_pages_neither_misses_nor_repeats_a_user() {
        for n in [0u32, 1, 5, 23, 64] {
            for limit in [1u64, 2, 3, 7, 50] {
                for remove_every in [1u32, 2, 3, 5] {
                    let mut set: Vec<u32> = (1..=n).collect();
                    let mut recent = RecentNames::default();
                    let cursor = Cursor::default();
                    let mut seen = Vec::new();
                    let mut offset = 0;
                    loop {
                        let items = page(&set, offset, limit);
                        recent.keep_at_least(2 * limit);
                        let mut acted = Vec::new();
                        for &user in &items {
                            if recent.record(&user.to_string()) {
                                seen.push(user);
                                if user % remove_every == 0 {
                                    acted.push(user);
                                }
                            }
                        }
                        if offset + limit >= set.len() as u64 {
                            break;
                        }
                        set.retain(|u| !acted.contains(u));
                        offset = cursor.resume(offset + limit, acted.len() as u64, limit);
                    }
                    let expected: Vec<u32> = (1..=n).collect();
                    assert_eq!(seen, expected, "n={n} limit={limit} every={remove_every}");
                }
            }
        }
    }

    /// The first user acted on leaves only some pages later (its stop was slow): within the
    /// allowance, later pages still start early enough.
    #[test]
    fn a_user_leaving_late_is_allowed_for() {
        for n in [30u32, 61, 100] {
            for limit in [10u64, 20] {
                for leaves_after in 1..4 {
                    let mut set: Vec<u32> = (1..=n).collect();
                    let mut recent = RecentNames::default();
                    let mut cursor = Cursor::default();
                    let mut seen = Vec::new();
                    let mut offset = 0;
                    let mut pages = 0;
                    let mut slow = None;
                    loop {
                        let items = page(&set, offset, limit);
                        recent.keep_at_least(2 * limit + unsettled_allowance(limit));
                        let mut acted = Vec::new();
                        for &user in &items {
                            if recent.record(&user.to_string()) {
                                seen.push(user);
                                if user % 2 == 1 {
                                    acted.push(user);
                                }
                            }
                        }
                        pages += 1;
                        if offset + limit >= set.len() as u64 {
                            break;
                        }
                        let left = acted.len() as u64;
                        if pages == 1 {
                            slow = acted.first().copied();
                            assert!(cursor.unsettle(1, limit));
                        }
                        set.retain(|u| !acted.contains(u) || Some(*u) == slow);
                        if pages == 1 + leaves_after {
                            set.retain(|u| Some(*u) != slow);
                        }
                        offset = cursor.resume(offset + limit, left, limit);
                    }
                    let expected: Vec<u32> = (1..=n).collect();
                    assert_eq!(seen, expected, "n={n} limit={limit} after={leaves_after}");
                }
            }
        }
    }
}
