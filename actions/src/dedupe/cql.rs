//! The CQL dedupe store: table `action_dedupe` (migration 2), one row per action
//! id, expiring by the table's `default_time_to_live`.
//!
//! Claims and completions are lightweight transactions. That costs a Paxos round
//! per write (about four times a plain write), and correctness needs it here: two
//! workers racing for one action (a rebalance, a restart while the old process is
//! still finishing) must not both win.

use std::time::Duration;

use async_trait::async_trait;
use scylla::{
    client::session::Session,
    response::query_result::QueryRowsResult,
    statement::prepared::PreparedStatement,
    value::{CqlValue, Row},
};
use sluice_infra::cql::Cql;

use super::{Claim, DedupeStore, lease_end};
use crate::{Error, Result};

const INSERT: &str = "INSERT INTO action_dedupe (action_id, owner, lease_until, attempts, done) \
     VALUES (?, ?, ?, 1, false) IF NOT EXISTS";
const TAKE_OVER: &str = "UPDATE action_dedupe SET owner = ?, lease_until = ?, attempts = ? \
     WHERE action_id = ? IF owner = ? AND lease_until = ? AND done = false";
const COMPLETE_OWN: &str = "UPDATE action_dedupe SET done = true, outcome = ? \
     WHERE action_id = ? IF owner = ? AND done = false";
const COMPLETE_ANY: &str = "UPDATE action_dedupe SET done = true, outcome = ? \
     WHERE action_id = ? IF done = false";

/// A [`DedupeStore`] on the shared CQL session.
#[derive(Debug, Clone)]
pub struct CqlDedupe {
    cql: Cql,
    insert: PreparedStatement,
    take_over: PreparedStatement,
    complete_own: PreparedStatement,
    complete_any: PreparedStatement,
}

/// The columns an LWT that was not applied returns.
#[derive(Debug, Default)]
struct Current {
    applied: bool,
    owner: String,
    lease_until: i64,
    attempts: i32,
    done: bool,
    outcome: Option<String>,
}

impl CqlDedupe {
    /// Prepares the statements on `cql` (already migrated by [`Cql::connect`]).
    pub async fn new(cql: Cql) -> Result<Self> {
        let session = cql.session();
        Ok(CqlDedupe {
            insert: prepare(session, INSERT).await?,
            take_over: prepare(session, TAKE_OVER).await?,
            complete_own: prepare(session, COMPLETE_OWN).await?,
            complete_any: prepare(session, COMPLETE_ANY).await?,
            cql,
        })
    }

    async fn run(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        action_id: &str,
    ) -> Result<Current> {
        let operation = || format!("action_dedupe: lightweight transaction for action {action_id}");
        let rows = self
            .cql
            .session()
            .execute_unpaged(statement, values)
            .await
            .map_err(|e| Error::cql(operation(), e))?
            .into_rows_result()
            .map_err(|e| Error::cql(operation(), e))?;
        current(&rows).map_err(|e| Error::cql(operation(), e))
    }
}

pub(crate) async fn prepare(session: &Session, statement: &str) -> Result<PreparedStatement> {
    session
        .prepare(statement)
        .await
        .map_err(|e| Error::cql(format!("preparing {statement}"), e))
}

fn current(rows: &QueryRowsResult) -> Result<Current, String> {
    let specs = rows.column_specs();
    let names: Vec<String> = specs.iter().map(|s| s.name().to_owned()).collect();
    let row: Row = rows.single_row().map_err(|e| e.to_string())?;
    let mut out = Current::default();
    for (name, value) in names.iter().zip(row.columns) {
        match (name.as_str(), value) {
            ("[applied]", Some(CqlValue::Boolean(v))) => out.applied = v,
            ("owner", Some(CqlValue::Text(v))) => out.owner = v,
            ("lease_until", Some(CqlValue::BigInt(v))) => out.lease_until = v,
            ("attempts", Some(CqlValue::Int(v))) => out.attempts = v,
            ("done", Some(CqlValue::Boolean(v))) => out.done = v,
            ("outcome", Some(CqlValue::Text(v))) => out.outcome = Some(v),
            _ => {}
        }
    }
    Ok(out)
}

fn found(current: Current) -> Claim {
    if current.done {
        Claim::Done {
            outcome: current.outcome.unwrap_or_default(),
        }
    } else {
        Claim::Held {
            owner: current.owner,
            until: current.lease_until,
        }
    }
}

#[async_trait]
impl DedupeStore for CqlDedupe {
    async fn claim(
        &self,
        action_id: &str,
        owner: &str,
        now: i64,
        lease: Duration,
    ) -> Result<Claim> {
        let until = lease_end(now, lease);
        let inserted = self
            .run(&self.insert, (action_id, owner, until), action_id)
            .await?;
        if inserted.applied {
            return Ok(Claim::Acquired { attempt: 1 });
        }
        let mine = inserted.owner == owner;
        if inserted.done || (!mine && inserted.lease_until > now) {
            return Ok(found(inserted));
        }
        // Our own claim (tried again after a failure of ours): renew it. Another
        // holder's lease ran out before it finished: take the action over. Either
        // way on condition that nobody else did first.
        let attempt = if mine {
            inserted.attempts
        } else {
            inserted.attempts.saturating_add(1)
        };
        let taken = self
            .run(
                &self.take_over,
                (
                    owner,
                    until,
                    attempt,
                    action_id,
                    &inserted.owner,
                    inserted.lease_until,
                ),
                action_id,
            )
            .await?;
        if taken.applied {
            Ok(Claim::Acquired { attempt })
        } else {
            Ok(found(taken))
        }
    }

    async fn complete(&self, action_id: &str, owner: &str, outcome: &str) -> Result<bool> {
        let own = self
            .run(&self.complete_own, (outcome, action_id, owner), action_id)
            .await?;
        if own.applied {
            return Ok(true);
        }
        if !own.done {
            // Another worker took the claim over after our lease ran out and has not
            // finished; the action did happen, so record it.
            self.run(&self.complete_any, (outcome, action_id), action_id)
                .await?;
        }
        Ok(false)
    }
}
