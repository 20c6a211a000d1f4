//! The dedupe, profile and topic stores' behaviour, written once and run against
//! the in-memory stores and a real CQL server (Cassandra, as ScyllaDB speaks).

use std::time::Duration;

use sluice_actions::{ProfileChange, Stores, Topic, dedupe::Claim};
use sluice_infra::{cql::Cql, cql::CqlConfig, testing};

const LEASE: Duration = Duration::from_secs(10);

async fn dedupe_behaviour(stores: &Stores, prefix: &str) {
    let store = &stores.dedupe;
    let id = format!("{prefix}-a1");
    let t0 = 1_000_000;
    assert_eq!(
        store.claim(&id, "w1", t0, LEASE).await.unwrap(),
        Claim::Acquired { attempt: 1 }
    );
    // Another worker finds it held until the lease ends.
    assert_eq!(
        store.claim(&id, "w2", t0 + 1, LEASE).await.unwrap(),
        Claim::Held {
            owner: "w1".into(),
            until: t0 + 10_000
        }
    );
    // The holder may claim again (it retries after a failure of its own).
    assert_eq!(
        store.claim(&id, "w1", t0 + 2, LEASE).await.unwrap(),
        Claim::Acquired { attempt: 1 }
    );
    // After the lease (renewed at t0 + 2) ran out, another worker takes over.
    assert_eq!(
        store.claim(&id, "w2", t0 + 10_003, LEASE).await.unwrap(),
        Claim::Acquired { attempt: 2 }
    );
    // The old holder finishing late still records the outcome, and learns it lost the claim.
    assert!(!store.complete(&id, "w1", "{\"late\":1}").await.unwrap());
    assert_eq!(
        store.claim(&id, "w3", t0 + 10_004, LEASE).await.unwrap(),
        Claim::Done {
            outcome: "{\"late\":1}".into()
        }
    );
    // A second completion does not overwrite the first.
    assert!(!store.complete(&id, "w2", "{\"second\":1}").await.unwrap());
    assert_eq!(
        store
            .claim(&id, "w2", t0 + 99_999_999, LEASE)
            .await
            .unwrap(),
        Claim::Done {
            outcome: "{\"late\":1}".into()
        }
    );

    let other = format!("{prefix}-a2");
    assert_eq!(
        store.claim(&other, "w1", t0, LEASE).await.unwrap(),
        Claim::Acquired { attempt: 1 }
    );
    assert!(store.complete(&other, "w1", "{}").await.unwrap());
    assert_eq!(
        store.claim(&other, "w2", t0, LEASE).await.unwrap(),
        Claim::Done {
            outcome: "{}".into()
        }
    );
}

async fn concurrent_claims_have_one_winner(stores: &Stores, prefix: &str) {
    let id = format!("{prefix}-race");
    let claims = futures::future::join_all((0..8).map(|w| {
        let store = stores.dedupe.clone();
        let id = id.clone();
        async move {
            store
                .claim(&id, &format!("w{w}"), 5_000, LEASE)
                .await
                .unwrap()
        }
    }))
    .await;
    let winners = claims
        .iter()
        .filter(|c| matches!(c, Claim::Acquired { .. }))
        .count();
    assert_eq!(winners, 1, "{claims:?}");
}

async fn profile_and_topic_behaviour(stores: &Stores, contact: &str) {
    let profiles = &stores.profiles;
    let set = |v: &str| ProfileChange::Field {
        field: "city".into(),
        value: Some(v.into()),
    };
    profiles
        .apply("acme", contact, &set("Berlin"), 2_000)
        .await
        .unwrap();
    // An older change replayed late loses.
    profiles
        .apply("acme", contact, &set("Paris"), 1_000)
        .await
        .unwrap();
    profiles
        .apply(
            "acme",
            contact,
            &ProfileChange::Tag {
                tag: "vip".into(),
                add: true,
            },
            2_000,
        )
        .await
        .unwrap();
    profiles
        .apply(
            "acme",
            contact,
            &ProfileChange::Tag {
                tag: "new".into(),
                add: true,
            },
            2_000,
        )
        .await
        .unwrap();
    profiles
        .apply(
            "acme",
            contact,
            &ProfileChange::Tag {
                tag: "new".into(),
                add: false,
            },
            3_000,
        )
        .await
        .unwrap();
    let profile = profiles.get("acme", contact).await.unwrap();
    assert_eq!(
        profile.fields.get("city").map(String::as_str),
        Some("Berlin")
    );
    assert_eq!(profile.tags.iter().collect::<Vec<_>>(), ["vip"]);
    profiles
        .apply(
            "acme",
            contact,
            &ProfileChange::Field {
                field: "city".into(),
                value: None,
            },
            4_000,
        )
        .await
        .unwrap();
    assert!(
        profiles
            .get("acme", contact)
            .await
            .unwrap()
            .fields
            .is_empty()
    );

    let topics = &stores.topics;
    assert_eq!(topics.get("acme", contact, -100).await.unwrap(), None);
    let topic = Topic {
        thread_id: 77,
        title: "Alice".into(),
    };
    topics.put("acme", contact, -100, &topic).await.unwrap();
    assert_eq!(
        topics.get("acme", contact, -100).await.unwrap(),
        Some(topic)
    );
}

#[tokio::test]
async fn memory_stores() {
    let stores = Stores::memory();
    dedupe_behaviour(&stores, "m").await;
    concurrent_claims_have_one_winner(&stores, "m").await;
    profile_and_topic_behaviour(&stores, "c1").await;
}

#[tokio::test]
async fn cql_stores() {
    let Some(addr) = testing::cql() else { return };
    let keyspace = testing::unique_name("sluice_actions").to_lowercase();
    let config = CqlConfig::from_url(&format!(
        "cql://{addr}/{}?replication_factor=1",
        &keyspace[..keyspace.len().min(48)]
    ))
    .unwrap();
    let cql = Cql::connect(&config).await.unwrap();
    assert!(cql.applied_migrations().await.unwrap().contains(&2));
    let stores = Stores::cql(cql).await.unwrap();
    dedupe_behaviour(&stores, "c").await;
    concurrent_claims_have_one_winner(&stores, "c").await;
    profile_and_topic_behaviour(&stores, "c1").await;
}
