//! Which offsets may be committed: per partition, everything below the lowest
//! action that is not finished yet. Actions finish out of order (channels run
//! concurrently, some wait for quiet hours), and a commit must never skip one.

use std::collections::{BTreeSet, HashMap};

use sluice_infra::bus::Position;

#[derive(Debug, Default)]
struct Partition {
    pending: BTreeSet<i64>,
    /// The highest offset read.
    high: i64,
    /// The last offset committed (or the one before the first read).
    committed: i64,
}

/// Offsets read and not finished, per partition of one topic.
#[derive(Debug, Default)]
pub(crate) struct Offsets {
    partitions: HashMap<i32, Partition>,
}

impl Offsets {
    /// Notes that `position` was read. False when it is already pending (read
    /// again after a rebalance): the caller must not start it twice.
    pub(crate) fn track(&mut self, position: Position) -> bool {
        let partition = self
            .partitions
            .entry(position.partition)
            // Reading starts after the group's committed offset: nothing below the
            // first record read needs committing.
            .or_insert_with(|| Partition {
                committed: position.offset - 1,
                high: position.offset - 1,
                ..Partition::default()
            });
        partition.high = partition.high.max(position.offset);
        partition.pending.insert(position.offset)
    }

    /// Notes that the action at `position` is finished.
    pub(crate) fn finish(&mut self, position: Position) {
        if let Some(partition) = self.partitions.get_mut(&position.partition) {
            partition.pending.remove(&position.offset);
        }
    }

    /// The positions to commit now: per partition, the last offset below the lowest
    /// pending one, when that moved since the last call.
    pub(crate) fn committable(&mut self) -> Vec<Position> {
        let mut out = Vec::new();
        for (&number, partition) in &mut self.partitions {
            let upto = match partition.pending.first() {
                Some(&lowest) => lowest - 1,
                None => partition.high,
            };
            if upto > partition.committed {
                partition.committed = upto;
                out.push(Position {
                    partition: number,
                    offset: upto,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, offset: i64) -> Position {
        Position { partition, offset }
    }

    #[test]
    fn commits_stop_below_the_lowest_unfinished_action() {
        let mut offsets = Offsets::default();
        for offset in 0..5 {
            assert!(offsets.track(at(0, offset)));
        }
        assert!(offsets.track(at(1, 7)));
        assert!(!offsets.track(at(0, 3)), "already pending");
        assert!(offsets.committable().is_empty());
        offsets.finish(at(0, 1));
        offsets.finish(at(0, 2));
        assert!(
            offsets.committable().is_empty(),
            "offset 0 is still running"
        );
        offsets.finish(at(0, 0));
        assert_eq!(offsets.committable(), vec![at(0, 2)]);
        assert!(offsets.committable().is_empty(), "nothing moved");
        offsets.finish(at(0, 4));
        offsets.finish(at(1, 7));
        let mut committed = offsets.committable();
        committed.sort_by_key(|p| p.partition);
        assert_eq!(committed, vec![at(1, 7)]);
        offsets.finish(at(0, 3));
        assert_eq!(offsets.committable(), vec![at(0, 4)]);
    }
}
