//! An idle stretch: what identifies one, so that a warning given for a stretch holds for that
//! stretch alone. A server used again, restarted, or kept alive starts another.
//!
//! The state file keeps it as text (`warnings.stretch`), in the form the state files written
//! before this type read the same.

/// When a stretch began.
#[derive(Debug, Clone, PartialEq)]
pub enum Began {
    /// The Hub's `last_activity`, as it sent it (`None`: never active).
    Hub(Option<String>),
    /// Seconds since the epoch, in the culler's count: the Hub's time looked through the
    /// culler's own probes, or the work a server's sensor saw.
    At(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stretch {
    pub began: Began,
    /// The server's `started`, or the user's `created`: a restart is another stretch.
    pub started: Option<String>,
    /// When the keep-alive in force was set: from then on, another stretch, so that an earlier
    /// warning allows no cull.
    pub kept_since: Option<f64>,
}

/// Times reached by different sums of the same clock readings differ in their last bits.
const SAME_INSTANT: f64 = 1e-3;

impl Stretch {
    /// By the Hub's activity times, as it sent them.
    pub fn by_hub(last_activity: Option<&str>, started: Option<&str>) -> Self {
        Stretch {
            began: Began::Hub(last_activity.map(str::to_owned)),
            started: started.map(str::to_owned),
            kept_since: None,
        }
    }

    /// By when it began, in the culler's count.
    pub fn since(began: f64, started: Option<&str>) -> Self {
        Stretch {
            began: Began::At(began),
            started: started.map(str::to_owned),
            kept_since: None,
        }
    }

    #[must_use]
    pub fn kept_since(self, set_at: f64) -> Self {
        Stretch {
            kept_since: Some(set_at),
            ..self
        }
    }

    /// Whether `self` and `other` are one stretch.
    pub fn same(&self, other: &Stretch) -> bool {
        let began = match (&self.began, &other.began) {
            (Began::At(x), Began::At(y)) => (x - y).abs() < SAME_INSTANT,
            (a, b) => a == b,
        };
        began && self.started == other.started && self.kept_since == other.kept_since
    }

    /// As the state file keeps it: `last|started`, or `since SECONDS|started`, then
    /// `|kept SECONDS` when kept.
    pub fn to_text(&self) -> String {
        let began = match &self.began {
            Began::Hub(last) => last.clone().unwrap_or_default(),
            Began::At(at) => format!("since {at:.6}"),
        };
        let started = self.started.as_deref().unwrap_or("");
        match self.kept_since {
            Some(set_at) => format!("{began}|{started}|kept {set_at}"),
            None => format!("{began}|{started}"),
        }
    }

    /// What [`Stretch::to_text`] wrote. Text of another form is read as the Hub's: it then
    /// matches no stretch of this culler's, which warns again rather than cull unwarned.
    pub fn from_text(text: &str) -> Self {
        let (rest, kept_since) = match text.rsplit_once("|kept ") {
            Some((rest, kept)) => match kept.parse::<f64>() {
                Ok(set_at) => (rest, Some(set_at)),
                Err(_) => (text, None),
            },
            None => (text, None),
        };
        let (began, started) = rest.split_once('|').unwrap_or((rest, ""));
        let began = match began.strip_prefix("since ").map(str::parse::<f64>) {
            Some(Ok(at)) => Began::At(at),
            _ => Began::Hub(Some(began).filter(|b| !b.is_empty()).map(str::to_owned)),
        };
        Stretch {
            began,
            started: Some(started).filter(|s| !s.is_empty()).map(str::to_owned),
            kept_since,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_s_text_reads_back_as_written_before() {
        for text in [
            "2026-11-27T10:00:00.000000Z|2026-11-27T09:00:00.000000Z",
            "|",
            "since 1795773600.250000|2026-11-27T09:00:00.000000Z",
            "since 1795773600.250000||kept 1795773610.5",
            "2026-11-27T10:00:00Z||kept 1795773610",
        ] {
            assert_eq!(Stretch::from_text(text).to_text(), text);
        }
        let kept = Stretch::from_text("since 1795773600.250000|s|kept 1795773610.5");
        assert_eq!(kept.began, Began::At(1_795_773_600.25));
        assert_eq!(kept.started.as_deref(), Some("s"));
        assert_eq!(kept.kept_since, Some(1_795_773_610.5));
        assert_eq!(Stretch::by_hub(None, None), Stretch::from_text("|"));
    }

    #[test]
    fn one_stretch_by_its_start_whatever_sum_reached_it() {
        let (t, now, later) = (1_795_773_600.123_456_7, 1_795_777_200.3, 1_795_780_800.9);
        let a = Stretch::since(now - (now - t), Some("x"));
        let b = Stretch::since(later - (later - t), Some("x"));
        assert!(a.same(&b), "{a:?} {b:?}");
        assert!(a.clone().kept_since(5.0).same(&b.clone().kept_since(5.0)));
        assert!(!a.same(&Stretch::since(t + 1.0, Some("x"))));
        assert!(!a.same(&Stretch::since(t, Some("y"))));
        assert!(!a.clone().kept_since(5.0).same(&b));
        let hub = Stretch::by_hub(Some("a"), Some("b"));
        assert!(hub.same(&Stretch::by_hub(Some("a"), Some("b"))));
        assert!(!hub.same(&Stretch::by_hub(Some("a"), Some("c"))));
        assert!(!hub.same(&Stretch::since(t, Some("b"))));
        // Read back from the state file, a stretch is the one it was written for.
        assert!(Stretch::from_text(&a.to_text()).same(&b));
    }
}
