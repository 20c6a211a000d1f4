//! Flows in production: `sluice flow submit` records a flow version and publishes it
//! ([`submit()`]), and every engine replica holds all flows of all tenants in a
//! [`FlowCatalog`] that it loads at start and follows live.
//!
//! ## Where flows live
//! - The compacted topic `sluice.flows` (one partition), key `tenant/flow_id`, value the
//!   artifact JSON of [`crate::flow::artifact`] (self-describing: its `format` tag, the
//!   source and its content hash; engines recompile the source), headers naming the
//!   [`headers`]. It tells running replicas about new versions within a poll.
//! - The CQL table `flows` ([`CqlFlowStore`]), one row per (tenant, flow, version), all
//!   versions kept. Submit records there *first*, then publishes, so whatever is on the
//!   topic is also in the table. Compaction keeps only each flow's newest record on the
//!   topic, but contacts' runs stay pinned to the version they started on; so a catalog
//!   starts from the table (every version) and then reads the topic (the newest ones,
//!   and everything submitted after it started).
//!
//! ## Submit rules
//! A version must be greater than the newest recorded one for that tenant and flow.
//! Submitting a recorded version with identical content changes nothing (and, when it is
//! the newest, publishes it again: that heals a submit that died between recording and
//! publishing); with different content it is refused.

mod flow_catalog;
mod store;
mod submit;
#[cfg(test)]
mod tests;

pub use flow_catalog::{CatalogConfig, CatalogStatus, FlowCatalog, TenantFlows};
pub use store::{CqlFlowStore, FlowStore, MemoryFlowStore, StoredFlow};
pub use submit::{SubmitOutcome, Submitted, check_tenant, flow_record, submit};

use sluice_infra::bus::TopicSpec;

/// Header names on flow records.
pub mod headers {
    /// The artifact's format tag (`sluice.flow.compiled/1`).
    pub const FORMAT: &str = "sluice.format";
    /// The tenant.
    pub const TENANT: &str = "sluice.tenant";
    /// The flow's id.
    pub const FLOW_ID: &str = "sluice.flow_id";
    /// The flow's version, decimal.
    pub const VERSION: &str = "sluice.flow_version";
    /// The content hash (BLAKE3 of the canonical source, hex).
    pub const CONTENT_HASH: &str = "sluice.content_hash";
}

/// The flows topic as Sluice creates it when missing: compacted, one partition (one
/// ordered log that every replica reads whole).
pub fn flows_topic(name: &str, replication: i32) -> TopicSpec {
    TopicSpec {
        name: name.to_owned(),
        partitions: 1,
        replication,
        compacted: true,
    }
}
