//! Which partitions the consumer group assigns to this member, and since when.
//!
//! Every partition has an ownership generation, bumped each time the group assigns
//! it to this member or revokes it. The consumer tags each record with its
//! partition's generation when it polls it; a worker drops a record whose
//! generation is older than the partition's current one (the partition changed
//! hands since: the group redelivers the record from the committed offset, to this
//! member or another), and forgets its timers and cached states whenever the
//! generation of a partition it serves changes — another replica may have changed
//! them meanwhile.

use std::collections::BTreeMap;

use sluice_infra::bus::Delivered;

/// A record and the generation of its partition when it was polled.
#[derive(Debug)]
pub(crate) struct Polled {
    /// The ownership generation of the record's partition at the poll.
    pub(crate) generation: u64,
    /// The record.
    pub(crate) record: Delivered,
}

/// The partitions assigned to this member, and every partition's generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// Assigned partitions, ascending.
    owned: Vec<i32>,
    /// Generation per partition that was ever assigned (0 for the others).
    generations: BTreeMap<i32, u64>,
}

impl Assignment {
    /// Takes the group's current assignment (ascending); bumps the generation of
    /// every partition assigned or revoked. Returns whether anything changed.
    pub(crate) fn update(&mut self, partitions: Vec<i32>) -> bool {
        if partitions == self.owned {
            return false;
        }
        let changed = partitions
            .iter()
            .filter(|p| !self.owned.contains(p))
            .chain(self.owned.iter().filter(|p| !partitions.contains(p)));
        for &partition in changed {
            *self.generations.entry(partition).or_default() += 1;
        }
        self.owned = partitions;
        true
    }

    /// The assigned partitions, ascending.
    pub(crate) fn partitions(&self) -> &[i32] {
        &self.owned
    }

    /// The partition's ownership generation.
    pub(crate) fn generation(&self, partition: i32) -> u64 {
        self.generations.get(&partition).copied().unwrap_or(0)
    }

    /// A number that changes whenever the generation of one of the partitions
    /// `serves` selects changes (generations only grow, so their sum does).
    pub(crate) fn epoch(&self, serves: impl Fn(i32) -> bool) -> u64 {
        self.generations
            .iter()
            .filter(|(p, _)| serves(**p))
            .map(|(_, g)| g)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_change_when_a_partition_is_assigned_or_revoked() {
        let mut a = Assignment::default();
        assert!(!a.update(Vec::new()));
        assert!(a.update(vec![0, 1]));
        assert_eq!(
            (a.generation(0), a.generation(1), a.generation(2)),
            (1, 1, 0)
        );
        // Partition 1 moves away, 2 arrives; 0 stays, with its generation.
        assert!(a.update(vec![0, 2]));
        assert_eq!(
            (a.generation(0), a.generation(1), a.generation(2)),
            (1, 2, 1)
        );
        assert!(!a.update(vec![0, 2]));
        // 1 comes back: a new generation, so records polled before are stale.
        assert!(a.update(vec![0, 1, 2]));
        assert_eq!(a.generation(1), 3);
        assert_eq!(a.partitions(), [0, 1, 2]);
    }

    #[test]
    fn the_epoch_of_a_worker_changes_only_with_its_partitions() {
        let mut a = Assignment::default();
        a.update(vec![0, 1, 2, 3]);
        let even = |p: i32| p % 2 == 0;
        let before = a.epoch(even);
        a.update(vec![0, 2, 3]);
        assert_eq!(a.epoch(even), before, "partition 1 is not an even worker's");
        a.update(vec![0, 3]);
        assert_ne!(a.epoch(even), before);
    }
}
