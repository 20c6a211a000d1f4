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
pub const MIGRATIONS: &[Migration] = &[
    Migration {
    version: 1,
    description: "contact state, versioned by input position",
    statements: &["CREATE TABLE IF NOT EXISTS contact_state (
            tenant text,
            contact_id text,
            version bigint,
            state blob,
            PRIMARY KEY ((tenant, contact_id))
        ) WITH comment = 'Each contact''s newest state; the write timestamp is the version'"],
    },
    Migration {
        version: 2,
        description: "action workers: once-only claims, contact profile, Telegram forum topics",
        statements: &[
            "CREATE TABLE IF NOT EXISTS action_dedupe (
            action_id text PRIMARY KEY,
            owner text,
            lease_until bigint,
            attempts int,
            done boolean,
            outcome text
        ) WITH default_time_to_live = 604800
          AND comment = 'One claim per action id: lease holder, then the outcome; expires after 7 days'",
            "CREATE TABLE IF NOT EXISTS contact_profile (
            tenant text,
            contact_id text,
            fields map<text, text>,
            tags set<text>,
            PRIMARY KEY ((tenant, contact_id))
        ) WITH comment = 'System of record for profile fields and tags, written by the action workers; \
each write is timestamped with its action''s created_at, so a late replay never wins'",
            "CREATE TABLE IF NOT EXISTS telegram_forum_topics (
            tenant text,
            contact_id text,
            chat_id bigint,
            thread_id bigint,
            title text,
            PRIMARY KEY ((tenant, contact_id), chat_id)
        ) WITH comment = 'Support desk: the forum topic of each contact in the managers'' supergroup'",
        ],
    },
    Migration {
        version: 3,
        description: "flow catalog: every submitted version of every flow",
        statements: &["CREATE TABLE IF NOT EXISTS flows (
            tenant text,
            flow_id text,
            version int,
            source text,
            content_hash text,
            submitted_at timestamp,
            PRIMARY KEY ((tenant, flow_id), version)
        ) WITH CLUSTERING ORDER BY (version DESC)
          AND comment = 'Every submitted flow version (source as canonical JSON); runs stay pinned to old ones'"],
    },
    Migration {
        version: 4,
        description: "durable timers: rows bucketed by (shard, minute), expiring whole by TTL",
        statements: &[
            "CREATE TABLE IF NOT EXISTS timers (
            shard int,
            bucket bigint,
            due_at bigint,
            tenant text,
            contact_id text,
            run bigint,
            wait_token int,
            cancelled boolean,
            PRIMARY KEY ((shard, bucket), due_at, tenant, contact_id, run, wait_token)
        ) WITH default_time_to_live = 604800
          AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'HOURS', 'compaction_window_size': 6}
          AND comment = 'Pending timers by (shard, due-time bucket); never deleted: cancelled ones are marked, all expire by TTL'",
            "CREATE TABLE IF NOT EXISTS timer_buckets (
            shard int,
            bucket bigint,
            PRIMARY KEY ((shard), bucket)
        ) WITH default_time_to_live = 604800
          AND comment = 'Which timer buckets of a shard may hold timers; expires with them'",
            "CREATE TABLE IF NOT EXISTS timer_ids (
            tenant text,
            contact_id text,
            run bigint,
            wait_token int,
            due_at bigint,
            PRIMARY KEY ((tenant, contact_id), run, wait_token)
        ) WITH default_time_to_live = 604800
          AND comment = 'Each timer''s current due time by id (a sentinel once cancelled or fired)'",
        ],
    },
];

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
