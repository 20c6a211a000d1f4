//! `sluice flow submit`: record a compiled flow's version, then publish its artifact.

use sluice_infra::bus::{EventBus, Position, Record, TopicSpec};

use super::{headers, store::FlowStore, store::StoredFlow};
use crate::{
    Error, Result,
    flow::{ARTIFACT_FORMAT, CompiledFlow, artifact},
};

/// What a submit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// A new version was recorded and published at this position.
    Published(Position),
    /// This version was already recorded with identical content: nothing was recorded.
    /// When it is the newest version it was published again (at this position), which
    /// heals a submit that recorded it but died before publishing; an older version is
    /// not, so that it never becomes the compacted topic's newest record.
    Unchanged(Option<Position>),
}

/// The result of a submit, printed by the CLI as its one-line summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The tenant.
    pub tenant: String,
    /// The flow's id.
    pub flow_id: String,
    /// The submitted version.
    pub version: u32,
    /// The content hash.
    pub content_hash: String,
    /// The topic it went to.
    pub topic: String,
    /// What happened.
    pub outcome: SubmitOutcome,
}

impl std::fmt::Display for Submitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Submitted {
            tenant,
            flow_id,
            version,
            content_hash,
            topic,
            outcome,
        } = self;
        let hash = content_hash.get(..12).unwrap_or(content_hash);
        match outcome {
            SubmitOutcome::Published(at) => write!(
                f,
                "submitted {tenant}/{flow_id} v{version} (content {hash}) to {topic}[{}]@{}",
                at.partition, at.offset
            ),
            SubmitOutcome::Unchanged(Some(at)) => write!(
                f,
                "unchanged {tenant}/{flow_id} v{version} (content {hash}): already recorded; \
                 published again to {topic}[{}]@{}",
                at.partition, at.offset
            ),
            SubmitOutcome::Unchanged(None) => write!(
                f,
                "unchanged {tenant}/{flow_id} v{version} (content {hash}): already recorded, \
                 and a newer version exists"
            ),
        }
    }
}

/// Checks a tenant name: 1–128 characters, no `/` (the topic key is `tenant/flow_id`),
/// no whitespace or control characters.
pub fn check_tenant(tenant: &str) -> std::result::Result<(), String> {
    if tenant.is_empty() || tenant.chars().count() > 128 {
        return Err(format!(
            "tenant {tenant:?} must be 1 to 128 characters long"
        ));
    }
    if tenant
        .chars()
        .any(|c| c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "tenant {tenant:?} must not contain '/', whitespace or control characters"
        ));
    }
    Ok(())
}

/// The record that carries a flow version on the flows topic: key `tenant/flow_id`,
/// the artifact JSON as value, and headers naming tenant, flow, version and hash.
pub fn flow_record(tenant: &str, flow: &CompiledFlow) -> Result<Record> {
    let payload = serde_json::to_vec(&artifact(flow)).map_err(|e| Error::FlowRefused {
        tenant: tenant.to_owned(),
        flow_id: flow.id.clone(),
        version: flow.version,
        reason: format!("cannot encode the artifact: {e}"),
    })?;
    Ok(Record::new(format!("{tenant}/{}", flow.id), payload)
        .with_header(headers::FORMAT, ARTIFACT_FORMAT)
        .with_header(headers::TENANT, tenant)
        .with_header(headers::FLOW_ID, flow.id.as_str())
        .with_header(headers::VERSION, flow.version.to_string())
        .with_header(headers::CONTENT_HASH, flow.content_hash.as_str()))
}

/// Submits a compiled flow for a tenant: refuses a version that is not newer than the
/// newest recorded one (unless it is recorded with identical content: then nothing
/// changes), records it in `store`, then publishes its artifact to `topic` (created,
/// compacted, if missing). Recording first means a version on the topic is always in
/// the store, which is what engines load old versions from after compaction.
pub async fn submit(
    bus: &dyn EventBus,
    store: &dyn FlowStore,
    topic: &TopicSpec,
    tenant: &str,
    flow: &CompiledFlow,
    now_ms: i64,
) -> Result<Submitted> {
    let refuse = |reason: String| Error::FlowRefused {
        tenant: tenant.to_owned(),
        flow_id: flow.id.clone(),
        version: flow.version,
        reason,
    };
    check_tenant(tenant).map_err(refuse)?;
    let done = |outcome| Submitted {
        tenant: tenant.to_owned(),
        flow_id: flow.id.clone(),
        version: flow.version,
        content_hash: flow.content_hash.clone(),
        topic: topic.name.clone(),
        outcome,
    };
    let publish = || async {
        bus.ensure_topics(std::slice::from_ref(topic))
            .await
            .map_err(Error::Bus)?;
        let record = flow_record(tenant, flow)?;
        let positions = bus
            .publish(&topic.name, vec![record])
            .await
            .map_err(Error::Bus)?;
        positions.into_iter().next().ok_or_else(|| {
            Error::Bus(sluice_infra::Error::UnknownTopic(format!(
                "{}: publish returned no position",
                topic.name
            )))
        })
    };
    let same_version = store.get(tenant, &flow.id, flow.version).await?;
    let newest = store.newest(tenant, &flow.id).await?;
    if let Some(recorded) = same_version
        .as_ref()
        .filter(|r| r.content_hash == flow.content_hash)
    {
        let is_newest = newest.is_none_or(|n| n.version <= recorded.version);
        let position = if is_newest {
            Some(publish().await?)
        } else {
            None
        };
        return Ok(done(SubmitOutcome::Unchanged(position)));
    }
    if let Some(newest) = newest.filter(|n| n.version >= flow.version) {
        let also = match &same_version {
            Some(recorded) => format!(
                " (v{} is already recorded with different content, {})",
                flow.version, recorded.content_hash
            ),
            None => String::new(),
        };
        return Err(refuse(format!(
            "version must be greater than the newest recorded version {}{also}",
            newest.version
        )));
    }
    let stored = StoredFlow::new(tenant, flow, now_ms);
    store.insert_if_absent(&stored).await?;
    // Another submit of the same version may have won the race: compare what is stored.
    match store.get(tenant, &flow.id, flow.version).await? {
        Some(recorded) if recorded.content_hash == flow.content_hash => {}
        Some(recorded) => {
            return Err(refuse(format!(
                "a concurrent submit recorded this version with different content ({})",
                recorded.content_hash
            )));
        }
        None => {
            return Err(Error::Store(sluice_infra::Error::Cql {
                operation: format!("recording {tenant}/{} v{}", flow.id, flow.version),
                message: "the version was not found after inserting it".to_owned(),
                retryable: true,
            }));
        }
    }
    let position = publish().await?;
    tracing::info!(
        tenant,
        flow_id = %flow.id,
        version = flow.version,
        content_hash = %flow.content_hash,
        topic = %topic.name,
        offset = position.offset,
        "flow version submitted"
    );
    Ok(done(SubmitOutcome::Published(position)))
}
