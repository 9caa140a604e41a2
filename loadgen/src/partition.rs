//! A run shared out between processes (runner Lambdas, or machines): part `K` of `N` sends the
//! orders whose index is `K-1` modulo `N`, so the parts together send exactly the orders of one
//! process running the whole load with the same seed, and no order twice. (k6 calls this an
//! execution segment; here the split is by order index because orders are drawn per index.)

use std::fmt;
use std::str::FromStr;

/// Part `number` of `of` (1-based, as `--partition 2/4` writes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    number: u32,
    of: u32,
}

impl Partition {
    /// The whole run: one part.
    pub const WHOLE: Self = Self { number: 1, of: 1 };

    /// Part `number` (1..=`of`) of `of`.
    pub fn new(number: u32, of: u32) -> Result<Self, PartitionError> {
        if of == 0 || number == 0 || number > of {
            return Err(PartitionError(format!("{number}/{of}")));
        }
        Ok(Self { number, of })
    }

    /// 1-based.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// Parts in all.
    pub fn of(&self) -> u32 {
        self.of
    }

    /// The distance between two of this part's indexes.
    pub fn step(&self) -> u64 {
        u64::from(self.of)
    }

    /// This part's first order index at or after `from`.
    pub fn first_at_or_after(&self, from: u64) -> u64 {
        let (n, k) = (self.step(), u64::from(self.number - 1));
        from + (k + n - from % n) % n
    }

    /// Whether order `index` is this part's.
    pub fn owns(&self, index: u64) -> bool {
        index % self.step() == u64::from(self.number - 1)
    }

    /// This part's share of `total` (workers, in-flight requests): `total / N`, the first
    /// `total % N` parts one more, so the shares add up to `total`.
    pub fn share(&self, total: usize) -> usize {
        let n = self.of as usize;
        total / n + usize::from(((self.number - 1) as usize) < total % n)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.number, self.of)
    }
}

/// A `--partition` value that is not `K/N` with `1 <= K <= N`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a part K/N with 1 <= K <= N (e.g. 2/4)")]
pub struct PartitionError(String);

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PartitionError(text.to_owned());
        let (number, of) = text.split_once('/').ok_or_else(bad)?;
        let number = number.trim().parse().map_err(|_| bad())?;
        let of = of.trim().parse().map_err(|_| bad())?;
        Self::new(number, of).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_own_every_index_exactly_once() {
        let parts: Vec<Partition> = (1..=4).map(|k| Partition::new(k, 4).unwrap()).collect();
        for index in 0..1_000u64 {
            assert_eq!(parts.iter().filter(|p| p.owns(index)).count(), 1, "{index}");
        }
        for part in &parts {
            for from in 0..20u64 {
                let first = part.first_at_or_after(from);
                assert!(part.owns(first) && first >= from && first < from + 4);
            }
        }
        assert_eq!(parts[2].first_at_or_after(0), 2);
        assert_eq!(parts[2].first_at_or_after(3), 6);
    }

    #[test]
    fn shares_add_up_to_the_whole() {
        for total in [1usize, 3, 4, 7, 8, 1000] {
            let shares: Vec<usize> = (1..=4)
                .map(|k| Partition::new(k, 4).unwrap().share(total))
                .collect();
            assert_eq!(shares.iter().sum::<usize>(), total, "{shares:?}");
            assert!(shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1);
        }
        assert_eq!(Partition::WHOLE.share(8), 8);
    }

    #[test]
    fn parsing() {
        assert_eq!("2/4".parse(), Ok(Partition::new(2, 4).unwrap()));
        assert_eq!(Partition::new(2, 4).unwrap().to_string(), "2/4");
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "-1/4", ""] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
        assert_eq!(
            "5/4".parse::<Partition>().unwrap_err().to_string(),
            "\"5/4\" is not a part K/N with 1 <= K <= N (e.g. 2/4)"
        );
    }
}
