//! The set of compiled flows an evaluator sees: every version still in use, so
//! runs stay pinned to the version they started on while new runs use the newest.
//!
//! Indexes over the newest versions are rebuilt on every insert (flows change rarely,
//! events are many): flows by the event types their triggers listen to, flows whose
//! patterns observe an event type, scheduled flows, and fingerprints that tell a
//! contact's state when its schedule and windows must be recomputed.

use std::sync::Arc;

use sluice_schemas::EventType;

use super::ids::stable_hash;
use crate::flow::{CompiledFlow, TriggerKind};

/// All loaded flows, by id and version.
#[derive(Debug, Clone, Default)]
pub struct FlowSet {
    /// Flow ids, sorted, each with its versions (oldest first). A sorted vector:
    /// lookups are a few string compares, and iteration order is deterministic.
    by_id: Vec<(Arc<str>, Vec<Arc<CompiledFlow>>)>,
    by_event: Vec<Vec<Arc<CompiledFlow>>>,
    observing: Vec<Vec<Arc<CompiledFlow>>>,
    scheduled: Vec<Arc<CompiledFlow>>,
    patterned: Vec<Arc<CompiledFlow>>,
    schedule_fp: u64,
    windows_fp: u64,
    remembers: Vec<(Arc<str>, u32)>,
}

impl FlowSet {
    /// An empty set.
    pub fn new() -> Self {
        FlowSet::default()
    }

    /// Adds a compiled flow (a new flow, or a new version of a known one).
    pub fn insert(&mut self, flow: Arc<CompiledFlow>) {
        let at = match self.by_id.binary_search_by(|(i, _)| (**i).cmp(&flow.id)) {
            Ok(at) => at,
            Err(at) => {
                self.by_id
                    .insert(at, (Arc::from(flow.id.as_str()), Vec::new()));
                at
            }
        };
        let versions = &mut self.by_id[at].1;
        versions.retain(|v| v.version != flow.version);
        if remembers_trigger(&flow) {
            let key = (Arc::from(flow.id.as_str()), flow.version);
            if let Err(at) = self.remembers.binary_search(&key) {
                self.remembers.insert(at, key);
            }
        }
        versions.push(flow);
        versions.sort_by_key(|v| v.version);
        self.reindex();
    }

    fn reindex(&mut self) {
        let n = EventType::ALL.len();
        self.by_event = vec![Vec::new(); n];
        self.observing = vec![Vec::new(); n];
        self.scheduled.clear();
        self.patterned.clear();
        let mut sched_fp: Vec<u8> = Vec::new();
        let mut win_fp: Vec<u8> = Vec::new();
        let newest: Vec<Arc<CompiledFlow>> = self.newest_all().cloned().collect();
        for flow in newest {
            for ty in EventType::ALL {
                if !flow.triggers_for(*ty).is_empty() {
                    self.by_event[*ty as usize].push(flow.clone());
                }
                if !flow.patterns_observing(*ty).is_empty() {
                    self.observing[*ty as usize].push(flow.clone());
                }
            }
            let stamp = |fp: &mut Vec<u8>| {
                fp.extend_from_slice(flow.id.as_bytes());
                fp.push(0);
                fp.extend_from_slice(&flow.version.to_le_bytes());
            };
            if !flow.scheduled().is_empty() {
                stamp(&mut sched_fp);
                self.scheduled.push(flow.clone());
            }
            if flow
                .triggers
                .iter()
                .any(|t| matches!(t.kind, TriggerKind::Pattern(_)))
            {
                stamp(&mut win_fp);
                self.patterned.push(flow.clone());
            }
        }
        let fp = |bytes: &[u8]| {
            if bytes.is_empty() {
                0
            } else {
                stable_hash(&[bytes]) | 1
            }
        };
        self.schedule_fp = fp(&sched_fp);
        self.windows_fp = fp(&win_fp);
    }

    /// Whether runs of this flow version keep their trigger event: the flow waits and
    /// its templates read `event`, so after a timer they still see what started them.
    pub fn remembers_trigger(&self, id: &str, version: u32) -> bool {
        self.remembers
            .binary_search_by(|(i, v)| (&**i, *v).cmp(&(id, version)))
            .is_ok()
    }

    /// The newest version of a flow.
    pub fn newest(&self, id: &str) -> Option<&Arc<CompiledFlow>> {
        self.versions(id).and_then(|versions| versions.last())
    }

    fn versions(&self, id: &str) -> Option<&Vec<Arc<CompiledFlow>>> {
        self.by_id
            .binary_search_by(|(i, _)| (**i).cmp(id))
            .ok()
            .map(|at| &self.by_id[at].1)
    }

    /// A specific version of a flow.
    pub fn version(&self, id: &str, version: u32) -> Option<&Arc<CompiledFlow>> {
        self.versions(id)?
            .iter()
            .rev()
            .find(|flow| flow.version == version)
    }

    /// The interned id of a flow (shared by every run of it).
    pub fn interned(&self, id: &str) -> Option<&Arc<str>> {
        self.by_id
            .binary_search_by(|(i, _)| (**i).cmp(id))
            .ok()
            .map(|at| &self.by_id[at].0)
    }

    /// The newest version of every flow, in id order (deterministic).
    pub fn newest_all(&self) -> impl Iterator<Item = &Arc<CompiledFlow>> {
        self.by_id
            .iter()
            .filter_map(|(_, versions)| versions.last())
    }

    /// Newest flows with an event trigger on this type, in id order.
    pub fn triggered_by(&self, ty: EventType) -> &[Arc<CompiledFlow>] {
        self.by_event.get(ty as usize).map_or(&[], Vec::as_slice)
    }

    /// Newest flows with a pattern trigger observing this type, in id order.
    pub fn observing(&self, ty: EventType) -> &[Arc<CompiledFlow>] {
        self.observing.get(ty as usize).map_or(&[], Vec::as_slice)
    }

    /// Newest flows with schedule triggers, in id order.
    pub fn scheduled(&self) -> &[Arc<CompiledFlow>] {
        &self.scheduled
    }

    /// Newest flows with pattern triggers, in id order.
    pub fn patterned(&self) -> &[Arc<CompiledFlow>] {
        &self.patterned
    }

    /// Identifies the scheduled flows' versions (0 when there are none).
    pub fn schedule_fingerprint(&self) -> u64 {
        self.schedule_fp
    }

    /// Identifies the pattern flows' versions (0 when there are none).
    pub fn windows_fingerprint(&self) -> u64 {
        self.windows_fp
    }
}

fn remembers_trigger(flow: &CompiledFlow) -> bool {
    fn reads_event(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => {
                (s.contains("{{") || s.contains("{%")) && s.contains("event")
            }
            serde_json::Value::Array(items) => items.iter().any(reads_event),
            serde_json::Value::Object(map) => map.values().any(reads_event),
            _ => false,
        }
    }
    flow.nodes.iter().any(|n| n.kind.is_waiting())
        && flow.source.get("nodes").is_some_and(reads_event)
}
