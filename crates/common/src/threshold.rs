//! Consecutive-failure counting: `failures` consecutive failures switch to DOWN (the backup),
//! `successes` consecutive successes switch back. One type for downtime-monitor (which keeps
//! the counts inside its own per-target state) and dns-failover (a cron-run tool that keeps a
//! [`Counter`] per record in its state dir, one JSON file per key, so the streak survives
//! between runs). Flapping (fail, ok, fail, ok) never switches: every change of outcome starts
//! a new streak.

use serde::{Deserialize, Serialize};

use crate::state::StateDir;

/// How many consecutive outcomes it takes to switch. A threshold of 0 acts as 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Thresholds {
    /// Consecutive failures that switch UP → DOWN.
    pub failures: u32,
    /// Consecutive successes that switch DOWN → UP.
    pub successes: u32,
}

/// The current run of equal outcomes: at most one of the two counts is non-zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streak {
    /// Consecutive failures up to now.
    pub fails: u32,
    /// Consecutive successes up to now.
    pub oks: u32,
}

/// Which side a [`Counter`] is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Up,
    Down,
}

/// A switch the thresholds call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transition {
    /// `failures` consecutive failures while up: switch to DOWN / the backup.
    Down,
    /// `successes` consecutive successes while down: switch back.
    Up,
}

impl Streak {
    /// Whether this is the first outcome of a new streak (nothing counted in its direction yet):
    /// call before [`Streak::observe`] to note when a streak started.
    pub fn starts_new(&self, ok: bool) -> bool {
        if ok {
            self.oks == 0
        } else {
            self.fails == 0
        }
    }

    /// Count one outcome. `down` is the side the caller is on now; the result is the switch the
    /// thresholds call for, if any (the caller changes side).
    pub fn observe(&mut self, ok: bool, down: bool, thresholds: Thresholds) -> Option<Transition> {
        if ok {
            self.fails = 0;
            self.oks = self.oks.saturating_add(1);
            (down && self.oks >= thresholds.successes.max(1)).then_some(Transition::Up)
        } else {
            self.oks = 0;
            self.fails = self.fails.saturating_add(1);
            (!down && self.fails >= thresholds.failures.max(1)).then_some(Transition::Down)
        }
    }
}

/// A side plus the current streak: what a cron-run tool remembers about one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub level: Level,
    #[serde(flatten)]
    pub streak: Streak,
}

impl Default for Counter {
    fn default() -> Self {
        Counter::new()
    }
}

impl Counter {
    /// Up, nothing counted.
    pub fn new() -> Counter {
        Counter { level: Level::Up, streak: Streak::default() }
    }

    pub fn is_down(&self) -> bool {
        self.level == Level::Down
    }

    /// Count one outcome and switch side when a threshold is reached.
    pub fn observe(&mut self, ok: bool, thresholds: Thresholds) -> Option<Transition> {
        let transition = self.streak.observe(ok, self.is_down(), thresholds)?;
        self.level = match transition {
            Transition::Down => Level::Down,
            Transition::Up => Level::Up,
        };
        Some(transition)
    }

    /// The counter stored for `key` in the state dir; a new one when none is stored yet. A file
    /// that is not a counter is an error naming the file.
    pub fn load(state: &StateDir, key: &str) -> anyhow::Result<Counter> {
        Ok(state.read_json(&file_name(key))?.unwrap_or_default())
    }

    /// Store the counter for `key` (atomically replaced, see [`crate::state::write_atomic`]).
    pub fn save(&self, state: &StateDir, key: &str) -> anyhow::Result<()> {
        state.write_json(&file_name(key), self)
    }

    /// Load, count one outcome, save: one observation of a cron run.
    pub fn observe_stored(
        state: &StateDir,
        key: &str,
        ok: bool,
        thresholds: Thresholds,
    ) -> anyhow::Result<(Counter, Option<Transition>)> {
        let mut counter = Counter::load(state, key)?;
        let transition = counter.observe(ok, thresholds);
        counter.save(state, key)?;
        Ok((counter, transition))
    }
}

/// The state file of `key`: `threshold-<key>.json`, bytes other than `A-Za-z0-9_-` (and a
/// `.` that is not the first) written as `%XX`, so any key (a DNS name, `db/primary`) is one
/// safe file name and two keys never share a file.
pub fn file_name(key: &str) -> String {
    let mut name = String::from("threshold-");
    for (i, b) in key.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name.push_str(".json");
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    const T31: Thresholds = Thresholds { failures: 3, successes: 1 };

    /// Feed `+`/`-` outcomes; the transitions with the index that caused them.
    fn feed(c: &mut Counter, t: Thresholds, pattern: &str) -> Vec<(usize, Transition)> {
        pattern.chars().enumerate().filter_map(|(i, ch)| c.observe(ch == '+', t).map(|tr| (i, tr))).collect()
    }

    #[test]
    fn switches_after_exactly_the_thresholds() {
        let t = Thresholds { failures: 3, successes: 2 };
        let mut c = Counter::new();
        assert_eq!(feed(&mut c, t, "--+---++"), vec![(5, Transition::Down), (7, Transition::Up)]);
        assert_eq!(c, Counter { level: Level::Up, streak: Streak { fails: 0, oks: 2 } });
    }

    #[test]
    fn thresholds_of_one_switch_on_every_change_and_zero_acts_as_one() {
        for t in [Thresholds { failures: 1, successes: 1 }, Thresholds { failures: 0, successes: 0 }] {
            let mut c = Counter::new();
            let got = feed(&mut c, t, "+-+--+");
            assert_eq!(
                got,
                vec![(1, Transition::Down), (2, Transition::Up), (3, Transition::Down), (5, Transition::Up)]
            );
        }
    }

    #[test]
    fn flapping_never_switches() {
        let mut c = Counter::new();
        assert_eq!(feed(&mut c, Thresholds { failures: 2, successes: 2 }, &"-+".repeat(50)), vec![]);
        assert_eq!(c.level, Level::Up);
        let mut down = Counter { level: Level::Down, streak: Streak::default() };
        assert_eq!(feed(&mut down, Thresholds { failures: 2, successes: 2 }, &"+-".repeat(50)), vec![]);
        assert!(down.is_down());
    }

    #[test]
    fn staying_on_a_side_reports_no_new_transition() {
        let mut c = Counter::new();
        assert_eq!(feed(&mut c, T31, "------"), vec![(2, Transition::Down)]);
        assert_eq!(c.streak.fails, 6, "the streak keeps counting");
        assert_eq!(feed(&mut c, T31, "+++"), vec![(0, Transition::Up)]);
    }

    #[test]
    fn starts_new_marks_the_first_outcome_of_a_streak() {
        let mut s = Streak::default();
        assert!(s.starts_new(false));
        s.observe(false, false, T31);
        assert!(!s.starts_new(false) && s.starts_new(true));
    }

    #[test]
    fn reload_from_disk_continues_the_streak() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open("t", Some(dir.path())).unwrap();
        let key = "db.example.com";
        // Three cron runs, one observation each: the third failure switches.
        assert_eq!(Counter::observe_stored(&state, key, false, T31).unwrap().1, None);
        assert_eq!(Counter::observe_stored(&state, key, false, T31).unwrap().1, None);
        let (c, tr) = Counter::observe_stored(&state, key, false, T31).unwrap();
        assert_eq!((c.level, c.streak.fails, tr), (Level::Down, 3, Some(Transition::Down)));
        let text = std::fs::read_to_string(dir.path().join("threshold-db.example.com.json")).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({"level": "down", "fails": 3, "oks": 0})
        );
        // Another key is independent.
        assert_eq!(Counter::load(&state, "www").unwrap(), Counter::new());
        let (c, tr) = Counter::observe_stored(&state, key, true, T31).unwrap();
        assert_eq!((c.level, tr), (Level::Up, Some(Transition::Up)));
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open("t", Some(dir.path())).unwrap();
        for bad in ["{not json", "{\"level\": \"sideways\", \"fails\": 1, \"oks\": 0}", "", "[]"] {
            std::fs::write(dir.path().join(file_name("db")), bad).unwrap();
            let err = Counter::load(&state, "db").unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains("corrupt state file") && msg.contains("threshold-db.json"), "{bad:?}: {msg}");
            assert!(Counter::observe_stored(&state, "db", true, T31).is_err(), "not overwritten silently");
        }
    }

    #[test]
    fn keys_become_distinct_safe_file_names() {
        assert_eq!(file_name("db.example.com"), "threshold-db.example.com.json");
        assert_eq!(file_name("db/primary"), "threshold-db%2Fprimary.json");
        assert_eq!(file_name(".."), "threshold-%2E..json");
        assert_ne!(file_name("a/b"), file_name("a_b"));
        assert_ne!(file_name("a%2Fb"), file_name("a/b"));
    }
}
