//! A hot SKU's stock split over shard items, so that one SKU is not capped by one item's write
//! rate: where a reservation takes its units from, and the moves that rebalance, gather and
//! merge the shards. Pure arithmetic; the store writes what it decides.
//!
//! Of a (SKU, warehouse)'s counters only `available` belongs to a shard: each shard's stays at
//! or above zero, so their sum, what can still be sold, never goes below zero either. Reserved,
//! sold and written-off units are counted per (SKU, warehouse) as the sum over its items. Every
//! move here conserves the sum of `available`.

/// Most shards one (SKU, warehouse) may be split into: a rebalance writes every one of them and
/// the main item in one transaction (at most 100 items).
pub const MAX_SHARDS: u32 = 64;

/// Shard 0 is the SKU's own item: stored and sent without a shard number.
pub(crate) fn is_own_item(shard: &u32) -> bool {
    *shard == 0
}

/// The available units of each stock item of one (SKU, warehouse), by shard (0 is the SKU's own
/// item), and how many of them take reservations (the first `active`). Items past `active` were
/// shards before a merge: they take no new reservations by choice, but their units still count
/// and are taken when nothing else has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLevels {
    active: u32,
    available: Vec<i64>,
}

impl ShardLevels {
    /// `available[k]` is shard k's; `active` is clamped to 1..=the items known.
    pub fn new(active: u32, available: Vec<i64>) -> Self {
        let available = if available.is_empty() { vec![0] } else { available };
        let active = active.clamp(1, available.len() as u32);
        Self { active, available }
    }

    /// A (SKU, warehouse) kept in one item.
    pub fn single(available: i64) -> Self {
        Self::new(1, vec![available])
    }

    pub fn active(&self) -> u32 {
        self.active
    }

    /// Every item's available units, by shard.
    pub fn by_shard(&self) -> &[i64] {
        &self.available
    }

    /// What can be sold: the sum over every item.
    pub fn total(&self) -> i64 {
        self.available.iter().map(|a| (*a).max(0)).sum()
    }

    /// The shard a line of `quantity` units should take them from: the active shards in turn,
    /// starting at `seed`'s (so concurrent orders spread over them), then any former shard.
    /// None when no single item has them all, though the total may: gather first.
    pub fn pick(&self, quantity: i64, seed: u64) -> Option<u32> {
        let active = u64::from(self.active);
        let rotation = (0..active).map(|i| ((seed.wrapping_add(i)) % active) as u32);
        let former = self.active..self.available.len() as u32;
        rotation.chain(former).find(|k| self.available[*k as usize] >= quantity)
    }

    /// The shard a reservation should try before anything is read: `seed`'s among `active`.
    pub fn first_choice(active: u32, seed: u64) -> u32 {
        (seed % u64::from(active.max(1))) as u32
    }

    /// Moves (a change of `available` per shard, summing to zero) that leave shard `target` with
    /// at least `quantity`, taking from the fullest other items first. None when the total has
    /// not that many, or `target` is not an item.
    pub fn gather(&self, target: u32, quantity: i64) -> Option<Vec<i64>> {
        let target = target as usize;
        let mut missing = quantity - *self.available.get(target)?;
        if self.total() < quantity {
            return None;
        }
        let mut deltas = vec![0; self.available.len()];
        let mut donors: Vec<usize> = (0..self.available.len()).filter(|k| *k != target).collect();
        donors.sort_by_key(|k| std::cmp::Reverse(self.available[*k]));
        for donor in donors {
            if missing <= 0 {
                break;
            }
            let take = self.available[donor].max(0).min(missing);
            deltas[donor] -= take;
            deltas[target] += take;
            missing -= take;
        }
        Some(deltas)
    }

    /// Moves that spread the total over shards `0..active` as evenly as whole units allow (the
    /// lower shards get the remainder) and empty every item past them. `active` 1 is the merge
    /// back into the SKU's own item. The result has one entry per item after the move.
    pub fn spread(&self, active: u32) -> Vec<i64> {
        let active = active.clamp(1, MAX_SHARDS) as usize;
        let items = self.available.len().max(active);
        let total = self.total();
        let (each, extra) = (total / active as i64, total % active as i64);
        (0..items)
            .map(|k| {
                let target = if k < active { each + i64::from((k as i64) < extra) } else { 0 };
                target - self.available.get(k).copied().unwrap_or(0).max(0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pick_starts_at_the_seeds_shard_and_skips_shards_too_short() {
        let levels = ShardLevels::new(4, vec![5, 0, 1, 7]);
        assert_eq!(levels.pick(1, 1), Some(2));
        assert_eq!(levels.pick(2, 1), Some(3));
        assert_eq!(levels.pick(6, 0), Some(3));
        assert_eq!(levels.pick(1, 4 + 1), Some(2), "the seed wraps");
    }

    #[test]
    fn a_former_shards_units_are_taken_only_when_no_active_shard_has_them() {
        let levels = ShardLevels::new(1, vec![0, 3, 0]);
        assert_eq!(levels.pick(2, 9), Some(1));
        assert_eq!(ShardLevels::new(1, vec![4, 3]).pick(2, 9), Some(0));
    }

    #[test]
    fn no_single_shard_with_the_units_is_not_out_of_stock_but_a_gather() {
        let levels = ShardLevels::new(3, vec![2, 2, 2]);
        assert_eq!(levels.pick(5, 0), None);
        assert_eq!(levels.total(), 6);
        let deltas = levels.gather(1, 5).unwrap();
        assert_eq!(deltas.iter().sum::<i64>(), 0, "a gather conserves the total");
        assert!(levels.available[1] + deltas[1] >= 5);
        assert!(deltas.iter().zip(&levels.available).all(|(d, a)| a + d >= 0));
        assert_eq!(levels.gather(1, 7), None, "more than the total is really short");
        assert_eq!(levels.gather(9, 1), None, "no such shard");
    }

    #[test]
    fn spreading_evens_the_units_over_the_active_shards_and_empties_the_rest() {
        let levels = ShardLevels::new(2, vec![10, 1, 0]);
        let deltas = levels.spread(4);
        assert_eq!(deltas.iter().sum::<i64>(), 0);
        let after: Vec<i64> = (0..4).map(|k| levels.available.get(k).copied().unwrap_or(0) + deltas[k]).collect();
        assert_eq!(after, vec![3, 3, 3, 2]);
        let merged = ShardLevels::new(4, after.clone()).spread(1);
        assert_eq!(merged, vec![8, -3, -3, -2], "a merge moves everything into the SKU's own item");
    }

    #[test]
    fn every_move_conserves_the_total_and_leaves_no_item_below_zero() {
        for seed in 0..200u64 {
            let available: Vec<i64> = (0..(1 + seed % 7)).map(|k| ((seed * 31 + k * 17) % 13) as i64).collect();
            let levels = ShardLevels::new((seed % 5) as u32 + 1, available.clone());
            for active in 1..=9 {
                let deltas = levels.spread(active);
                assert_eq!(deltas.iter().sum::<i64>(), 0);
                let after = (0..deltas.len()).map(|k| available.get(k).copied().unwrap_or(0) + deltas[k]);
                assert!(after.clone().all(|a| a >= 0));
                let (low, high) = (after.clone().take(active as usize).min(), after.take(active as usize).max());
                assert!(high.unwrap() - low.unwrap() <= 1, "even to one unit");
            }
            if let Some(deltas) = levels.gather(0, 4) {
                assert_eq!(deltas.iter().sum::<i64>(), 0);
                assert!(available[0] + deltas[0] >= 4);
            } else {
                assert!(levels.total() < 4);
            }
        }
    }
}
