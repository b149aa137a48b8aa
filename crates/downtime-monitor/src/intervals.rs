//! Half-open time intervals `[start, end)` in Unix milliseconds, and the set operations the
//! report needs (known time, maintenance, downtime), kept sorted and merged.

/// A merged, sorted set of intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans(Vec<(i64, i64)>);

impl Spans {
    /// Build from any intervals: empty ones dropped, overlaps merged.
    pub fn new(mut items: Vec<(i64, i64)>) -> Spans {
        items.retain(|(s, e)| e > s);
        items.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(items.len());
        for (s, e) in items {
            match out.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        Spans(out)
    }

    pub fn iter(&self) -> impl Iterator<Item = &(i64, i64)> {
        self.0.iter()
    }

    /// Total length.
    pub fn total(&self) -> i64 {
        self.0.iter().map(|(s, e)| e - s).sum()
    }

    /// The parts that are in both.
    pub fn intersect(&self, other: &Spans) -> Spans {
        let (mut i, mut j, mut out) = (0, 0, Vec::new());
        while i < self.0.len() && j < other.0.len() {
            let (a, b) = (self.0[i], other.0[j]);
            let (s, e) = (a.0.max(b.0), a.1.min(b.1));
            if s < e {
                out.push((s, e));
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        Spans(out)
    }

    /// The parts of `self` not in `other`.
    pub fn subtract(&self, other: &Spans) -> Spans {
        let mut out = Vec::new();
        let mut j = 0;
        for &(s, e) in &self.0 {
            let mut cur = s;
            while j < other.0.len() && other.0[j].1 <= cur {
                j += 1;
            }
            let mut k = j;
            while k < other.0.len() && other.0[k].0 < e {
                if other.0[k].0 > cur {
                    out.push((cur, other.0[k].0));
                }
                cur = cur.max(other.0[k].1);
                k += 1;
            }
            if cur < e {
                out.push((cur, e));
            }
        }
        Spans(out)
    }

    /// Clip to `[from, to)`.
    pub fn clip(&self, from: i64, to: i64) -> Spans {
        self.intersect(&Spans::new(vec![(from, to)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_intersect_subtract() {
        let a = Spans::new(vec![(10, 20), (0, 5), (4, 8), (30, 30)]);
        assert_eq!(a.0, vec![(0, 8), (10, 20)]);
        assert_eq!(a.total(), 18);
        let b = Spans::new(vec![(6, 12), (15, 40)]);
        assert_eq!(a.intersect(&b).0, vec![(6, 8), (10, 12), (15, 20)]);
        assert_eq!(a.subtract(&b).0, vec![(0, 6), (12, 15)]);
        assert_eq!(a.clip(3, 11).0, vec![(3, 8), (10, 11)]);
        assert_eq!(Spans::new(vec![(0, 10)]).subtract(&Spans::new(vec![(0, 10)])).total(), 0);
    }
}
