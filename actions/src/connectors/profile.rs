//! The contact profile's system of record. The engine has already applied a
//! `contact.update_field` or `contact.tag` to the contact's state and announced it
//! as `contact.field_updated`; the worker only writes it through — to the
//! `contact_profile` table other services read, or to a configured CRM webhook —
//! and emits no second event.
//!
//! Every table write carries its action's `created_at` as the CQL write timestamp,
//! so writing twice is harmless and a late replay of an older change never
//! overwrites a newer one.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Mutex,
};

use async_trait::async_trait;
use scylla::statement::prepared::PreparedStatement;
use sluice_infra::cql::Cql;

use crate::{Error, Result, dedupe::cql::prepare};

/// One change to a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileChange {
    /// Sets a field, or clears it (`None`).
    Field {
        /// The field.
        field: String,
        /// Its new value.
        value: Option<String>,
    },
    /// Adds or removes a tag.
    Tag {
        /// The tag.
        tag: String,
        /// true adds, false removes.
        add: bool,
    },
}

/// A contact's profile as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// Field values.
    pub fields: BTreeMap<String, String>,
    /// Tags.
    pub tags: BTreeSet<String>,
}

/// The profile table.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// Applies `change` as of `at` (Unix ms): a change older than what is stored for
    /// the same field or tag loses.
    async fn apply(
        &self,
        tenant: &str,
        contact_id: &str,
        change: &ProfileChange,
        at: i64,
    ) -> Result<()>;

    /// The stored profile.
    async fn get(&self, tenant: &str, contact_id: &str) -> Result<Profile>;
}

type Key = (String, String);
/// Per stored cell (`f:<field>` or `t:<tag>`): write time and value (none: removed).
type Cells = HashMap<String, (i64, Option<String>)>;

/// Profiles in memory, last writer (by timestamp) wins per field and tag.
#[derive(Debug, Default)]
pub struct MemoryProfiles(Mutex<HashMap<Key, Cells>>);

#[async_trait]
impl ProfileStore for MemoryProfiles {
    async fn apply(
        &self,
        tenant: &str,
        contact_id: &str,
        change: &ProfileChange,
        at: i64,
    ) -> Result<()> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let cells = all
            .entry((tenant.to_owned(), contact_id.to_owned()))
            .or_default();
        let (key, value) = match change {
            ProfileChange::Field { field, value } => (format!("f:{field}"), value.clone()),
            ProfileChange::Tag { tag, add } => (format!("t:{tag}"), add.then(String::new)),
        };
        match cells.get(&key) {
            Some((stored, _)) if *stored > at => {}
            _ => {
                cells.insert(key, (at, value));
            }
        }
        Ok(())
    }

    async fn get(&self, tenant: &str, contact_id: &str) -> Result<Profile> {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut profile = Profile::default();
        let Some(cells) = all.get(&(tenant.to_owned(), contact_id.to_owned())) else {
            return Ok(profile);
        };
        for (key, (_, value)) in cells {
            match (key.split_once(':'), value) {
                (Some(("f", field)), Some(value)) => {
                    profile.fields.insert(field.to_owned(), value.clone());
                }
                (Some(("t", tag)), Some(_)) => {
                    profile.tags.insert(tag.to_owned());
                }
                _ => {}
            }
        }
        Ok(profile)
    }
}

/// Profiles in the `contact_profile` table.
#[derive(Debug, Clone)]
pub struct CqlProfiles {
    cql: Cql,
    set_field: PreparedStatement,
    clear_field: PreparedStatement,
    add_tag: PreparedStatement,
    remove_tag: PreparedStatement,
    select: PreparedStatement,
}

impl CqlProfiles {
    /// Prepares the statements.
    pub async fn new(cql: Cql) -> Result<Self> {
        let s = cql.session();
        const WHERE: &str = "WHERE tenant = ? AND contact_id = ?";
        Ok(CqlProfiles {
            set_field: prepare(
                s,
                &format!("UPDATE contact_profile USING TIMESTAMP ? SET fields[?] = ? {WHERE}"),
            )
            .await?,
            clear_field: prepare(
                s,
                &format!("DELETE fields[?] FROM contact_profile USING TIMESTAMP ? {WHERE}"),
            )
            .await?,
            add_tag: prepare(
                s,
                &format!("UPDATE contact_profile USING TIMESTAMP ? SET tags = tags + ? {WHERE}"),
            )
            .await?,
            remove_tag: prepare(
                s,
                &format!("UPDATE contact_profile USING TIMESTAMP ? SET tags = tags - ? {WHERE}"),
            )
            .await?,
            select: prepare(
                s,
                &format!("SELECT fields, tags FROM contact_profile {WHERE}"),
            )
            .await?,
            cql,
        })
    }
}

#[async_trait]
impl ProfileStore for CqlProfiles {
    async fn apply(
        &self,
        tenant: &str,
        contact_id: &str,
        change: &ProfileChange,
        at: i64,
    ) -> Result<()> {
        let micros = at.saturating_mul(1000);
        let session = self.cql.session();
        let result = match change {
            ProfileChange::Field {
                field,
                value: Some(value),
            } => {
                session
                    .execute_unpaged(&self.set_field, (micros, field, value, tenant, contact_id))
                    .await
            }
            ProfileChange::Field { field, value: None } => {
                session
                    .execute_unpaged(&self.clear_field, (field, micros, tenant, contact_id))
                    .await
            }
            ProfileChange::Tag { tag, add } => {
                let statement = if *add {
                    &self.add_tag
                } else {
                    &self.remove_tag
                };
                session
                    .execute_unpaged(statement, (micros, vec![tag], tenant, contact_id))
                    .await
            }
        };
        result.map_err(|e| {
            Error::cql(
                format!("writing contact_profile for {tenant}/{contact_id}"),
                e,
            )
        })?;
        Ok(())
    }

    async fn get(&self, tenant: &str, contact_id: &str) -> Result<Profile> {
        let operation = || format!("reading contact_profile for {tenant}/{contact_id}");
        let rows = self
            .cql
            .session()
            .execute_unpaged(&self.select, (tenant, contact_id))
            .await
            .map_err(|e| Error::cql(operation(), e))?
            .into_rows_result()
            .map_err(|e| Error::cql(operation(), e))?;
        type Row = (Option<BTreeMap<String, String>>, Option<BTreeSet<String>>);
        let row = rows
            .maybe_first_row::<Row>()
            .map_err(|e| Error::cql(operation(), e))?;
        Ok(row.map_or_else(Profile::default, |(fields, tags)| Profile {
            fields: fields.unwrap_or_default(),
            tags: tags.unwrap_or_default(),
        }))
    }
}
