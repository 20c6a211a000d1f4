//! The CQL schema, as an ordered list of idempotent migrations.
//!
//! Each migration's statements use `IF NOT EXISTS` (or are otherwise safe to run
//! twice), so replicas that start together may all run them. Applied versions are
//! recorded in `schema_migrations`; never edit a published migration, add one.

/// One step of the schema's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its number; migrations run in ascending order.
    pub version: i32,
    /// What it does, recorded with it.
    pub description: &'static str,
    /// CQL statements, run in order inside the keyspace.
    pub statements: &'static [&'static str],
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "contact state, versioned by input position",
    statements: &["CREATE TABLE IF NOT EXISTS contact_state (
            tenant text,
            contact_id text,
            version bigint,
            state blob,
            PRIMARY KEY ((tenant, contact_id))
        ) WITH comment = 'Each contact''s newest state; the write timestamp is the version'"],
}];

/// The bookkeeping table, created before any migration runs.
pub(crate) const SCHEMA_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
        version int PRIMARY KEY,
        description text,
        applied_at timestamp
    )";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_ascend_without_gaps() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, i as i32 + 1, "{}", migration.description);
            assert!(!migration.statements.is_empty());
        }
    }
}
