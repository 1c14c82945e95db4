//! The behaviour every `Store` must have. Each adapter's tests call
//! [`run_all`] on a fresh, empty store; a failed expectation panics.

use super::{ChangesName, ObjectKey, PutCondition, SnapshotHash, Store, StoreError};
use crate::cache::Slug;
use bytes::Bytes;

fn toolkit(slug: &str) -> ObjectKey {
    ObjectKey::Toolkit(Slug::parse(slug).unwrap())
}

pub async fn run_all(store: &dyn Store) {
    run(store, true).await;
}

/// Everything but the conditional delete the lease's release relies on:
/// for an S3 implementation known to ignore `DELETE If-Match` (s3s-fs),
/// which can hold the cache but not a safe lease (the README says which
/// guarantees the lease needs).
pub async fn run_all_but_conditional_delete(store: &dyn Store) {
    run(store, false).await;
}

async fn run(store: &dyn Store, with_conditional_delete: bool) {
    assert!(
        store.list().await.unwrap().is_empty(),
        "the suite needs an empty store"
    );
    absent_objects(store).await;
    put_get_round_trip(store).await;
    create_only(store).await;
    compare_and_swap(store).await;
    if with_conditional_delete {
        conditional_delete(store).await;
    }
    delete_is_idempotent(store).await;
    list_names_only_our_objects(store).await;
    change_records_live_apart(store).await;
    snapshots_live_apart(store).await;
    large_objects(store).await;
}

async fn absent_objects(store: &dyn Store) {
    let key = toolkit("absent");
    assert!(store.get(&key).await.unwrap().is_none());
    assert!(store.etag(&key).await.unwrap().is_none());
}

async fn put_get_round_trip(store: &dyn Store) {
    let key = toolkit("roundtrip");
    let body = Bytes::from_static(br#"{"slug":"roundtrip","tools":[]}"#);
    let etag = store
        .put(&key, body.clone(), PutCondition::Overwrite)
        .await
        .unwrap();
    let got = store.get(&key).await.unwrap().expect("written object");
    assert_eq!(got.body, body);
    assert_eq!(got.etag, etag, "get returns the tag that put returned");
    assert_eq!(store.etag(&key).await.unwrap(), Some(etag.clone()));

    let newer = Bytes::from_static(br#"{"slug":"roundtrip","tools":[1]}"#);
    let etag2 = store
        .put(&key, newer.clone(), PutCondition::Overwrite)
        .await
        .unwrap();
    assert_ne!(etag, etag2, "new content, new tag");
    assert_eq!(store.get(&key).await.unwrap().unwrap().body, newer);
    store.delete(&key).await.unwrap();
}

async fn create_only(store: &dyn Store) {
    let key = ObjectKey::Lease;
    let first = store
        .put(
            &key,
            Bytes::from_static(b"{\"owner\":\"a\"}"),
            PutCondition::IfAbsent,
        )
        .await
        .expect("create on an empty key");
    let second = store
        .put(
            &key,
            Bytes::from_static(b"{\"owner\":\"b\"}"),
            PutCondition::IfAbsent,
        )
        .await;
    assert!(
        matches!(second, Err(StoreError::PreconditionFailed { .. })),
        "create-only on an existing key must fail, got {second:?}"
    );
    let kept = store.get(&key).await.unwrap().unwrap();
    assert_eq!(kept.body, Bytes::from_static(b"{\"owner\":\"a\"}"));
    assert_eq!(kept.etag, first);
    store.delete(&key).await.unwrap();
}

async fn compare_and_swap(store: &dyn Store) {
    let key = ObjectKey::Meta;
    let missing = store
        .put(
            &key,
            Bytes::from_static(b"{}"),
            PutCondition::IfMatch(super::ETag("\"nope\"".into())),
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::PreconditionFailed { .. })),
        "if-match on an absent key must fail, got {missing:?}"
    );
    let v1 = store
        .put(
            &key,
            Bytes::from_static(b"{\"v\":1}"),
            PutCondition::Overwrite,
        )
        .await
        .unwrap();
    let v2 = store
        .put(
            &key,
            Bytes::from_static(b"{\"v\":2}"),
            PutCondition::IfMatch(v1.clone()),
        )
        .await
        .expect("if-match with the current tag");
    let stale = store
        .put(
            &key,
            Bytes::from_static(b"{\"v\":3}"),
            PutCondition::IfMatch(v1),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed { .. })),
        "if-match with an old tag must fail, got {stale:?}"
    );
    let now = store.get(&key).await.unwrap().unwrap();
    assert_eq!(now.body, Bytes::from_static(b"{\"v\":2}"));
    assert_eq!(now.etag, v2);
    store.delete(&key).await.unwrap();
}

async fn conditional_delete(store: &dyn Store) {
    let key = ObjectKey::Lease;
    let first = store
        .put(
            &key,
            Bytes::from_static(b"{\"owner\":\"a\"}"),
            PutCondition::Overwrite,
        )
        .await
        .unwrap();
    let second = store
        .put(
            &key,
            Bytes::from_static(b"{\"owner\":\"b\"}"),
            PutCondition::Overwrite,
        )
        .await
        .unwrap();
    let refused = store.delete_if_match(&key, &first).await;
    assert!(
        matches!(refused, Err(StoreError::PreconditionFailed { .. })),
        "a delete with an old tag must fail, got {refused:?}"
    );
    assert!(
        store.get(&key).await.unwrap().is_some(),
        "and must keep the object"
    );
    store
        .delete_if_match(&key, &second)
        .await
        .expect("a delete with the current tag");
    assert!(store.get(&key).await.unwrap().is_none());
    store
        .delete_if_match(&key, &second)
        .await
        .expect("a conditional delete of an absent object is fine");
}

async fn delete_is_idempotent(store: &dyn Store) {
    let key = toolkit("gone");
    store
        .put(&key, Bytes::from_static(b"{}"), PutCondition::Overwrite)
        .await
        .unwrap();
    store.delete(&key).await.unwrap();
    assert!(store.get(&key).await.unwrap().is_none());
    store
        .delete(&key)
        .await
        .expect("deleting an absent object is fine");
}

async fn list_names_only_our_objects(store: &dyn Store) {
    let keys = [
        toolkit("b-toolkit"),
        toolkit("a_toolkit"),
        ObjectKey::Meta,
        ObjectKey::LastRun,
    ];
    for key in &keys {
        store
            .put(key, Bytes::from_static(b"{}"), PutCondition::Overwrite)
            .await
            .unwrap();
    }
    let listed = store.list().await.unwrap();
    let mut want = keys.to_vec();
    want.sort();
    assert_eq!(
        listed.iter().map(|o| o.key.clone()).collect::<Vec<_>>(),
        want
    );
    assert!(listed.iter().all(|o| o.size == 2));
    for object in &listed {
        let got = store.get(&object.key).await.unwrap().unwrap();
        assert_eq!(
            object.etag, got.etag,
            "{}: the listing gives get's tag",
            object.key
        );
    }
    // Rewriting one object changes its listed tag and no other.
    let changed = store
        .put(
            &keys[0],
            Bytes::from_static(b"[1]"),
            PutCondition::Overwrite,
        )
        .await
        .unwrap();
    let relisted = store.list().await.unwrap();
    for (before, after) in listed.iter().zip(&relisted) {
        if after.key == keys[0] {
            assert_eq!(after.etag, changed);
            assert_ne!(after.etag, before.etag);
        } else {
            assert_eq!(after.etag, before.etag, "{}", after.key);
        }
    }
    for key in &keys {
        store.delete(key).await.unwrap();
    }
    assert!(store.list().await.unwrap().is_empty());
}

async fn change_records_live_apart(store: &dyn Store) {
    let names = [
        ChangesName::new("2026-01-02T00:00:00.000Z", "b").unwrap(),
        ChangesName::new("2026-01-01T00:00:00.000Z", "a").unwrap(),
    ];
    for (i, name) in names.iter().enumerate() {
        store
            .put(
                &ObjectKey::Changes(name.clone()),
                Bytes::from(format!("{{\"n\":{i}}}")),
                PutCondition::IfAbsent,
            )
            .await
            .unwrap();
    }
    store
        .put(
            &ObjectKey::Meta,
            Bytes::from_static(b"{}"),
            PutCondition::Overwrite,
        )
        .await
        .unwrap();
    let listed: Vec<ObjectKey> = store
        .list_changes()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    let mut want: Vec<ObjectKey> = names.iter().cloned().map(ObjectKey::Changes).collect();
    want.sort();
    assert_eq!(listed, want, "change records, oldest first");
    let top: Vec<ObjectKey> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        top,
        [ObjectKey::Meta],
        "the plain listing leaves change records out"
    );
    let got = store
        .get(&ObjectKey::Changes(names[1].clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.body, Bytes::from_static(b"{\"n\":1}"));
    for name in &names {
        store
            .delete(&ObjectKey::Changes(name.clone()))
            .await
            .unwrap();
    }
    store.delete(&ObjectKey::Meta).await.unwrap();
    assert!(store.list_changes().await.unwrap().is_empty());
}

async fn snapshots_live_apart(store: &dyn Store) {
    let snapshot = |slug: &str, hash: &str| {
        ObjectKey::Snapshot(
            Slug::parse(slug).unwrap(),
            SnapshotHash::parse(hash).unwrap(),
        )
    };
    let keys = [
        snapshot("github", "bb"),
        snapshot("github", "aa"),
        snapshot("a-b", "01"),
    ];
    let mut tags = Vec::new();
    for key in &keys {
        tags.push(
            store
                .put(key, Bytes::from_static(b"{}"), PutCondition::Overwrite)
                .await
                .unwrap(),
        );
    }
    store
        .put(
            &toolkit("github"),
            Bytes::from_static(b"{}"),
            PutCondition::Overwrite,
        )
        .await
        .unwrap();
    let listed = store.list_snapshots().await.unwrap();
    let mut want = keys.to_vec();
    want.sort();
    assert_eq!(
        listed.iter().map(|o| o.key.clone()).collect::<Vec<_>>(),
        want
    );
    for object in &listed {
        let i = keys.iter().position(|k| *k == object.key).unwrap();
        assert_eq!(
            object.etag, tags[i],
            "{}: the listing gives put's tag",
            object.key
        );
    }
    let top: Vec<ObjectKey> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        top,
        [toolkit("github")],
        "the plain listing leaves snapshots out"
    );
    for key in keys.iter().chain([&toolkit("github")]) {
        store.delete(key).await.unwrap();
    }
    assert!(store.list_snapshots().await.unwrap().is_empty());
}

async fn large_objects(store: &dyn Store) {
    let key = toolkit("large");
    let body = Bytes::from(vec![b'x'; 3 * 1024 * 1024]);
    store
        .put(&key, body.clone(), PutCondition::Overwrite)
        .await
        .unwrap();
    assert_eq!(store.get(&key).await.unwrap().unwrap().body, body);
    store.delete(&key).await.unwrap();
}
