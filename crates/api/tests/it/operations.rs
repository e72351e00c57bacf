//! The operations on a store and the typed client methods.

use std::sync::Mutex;

use api::{Error, KvClient, Limits, Op, Outcome, execute, read};
use cache::{Store, StoreConfig};

fn store() -> Store {
    Store::new(StoreConfig::new(1 << 20))
}

fn small_limits() -> Limits {
    Limits {
        max_key_bytes: 4,
        max_value_bytes: 8,
        ..Limits::default()
    }
}

fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: value.into(),
        ttl_ms: None,
    }
}

fn get(key: &str) -> Op {
    Op::Get { key: key.into() }
}

#[test]
fn oversized_keys_values_and_appends_are_refused_and_change_nothing() {
    let limits = small_limits();
    let mut store = store();
    assert!(matches!(
        execute(&mut store, &put("toolong", "v"), &limits, 0),
        Err(Error::TooLarge { ref what, size_bytes: 7, limit_bytes: 4 }) if what == "key"
    ));
    assert!(matches!(
        execute(&mut store, &put("k", "123456789"), &limits, 0),
        Err(Error::TooLarge { ref what, .. }) if what == "value"
    ));
    assert_eq!(
        execute(&mut store, &put("k", "12345"), &limits, 0),
        Ok(Outcome::Done)
    );
    let append = Op::Append {
        key: "k".into(),
        value: "6789".into(),
    };
    assert!(matches!(
        execute(&mut store, &append, &limits, 0),
        Err(Error::TooLarge { ref what, size_bytes: 9, limit_bytes: 8 }) if what == "appended value"
    ));
    assert_eq!(
        execute(&mut store, &get("k"), &limits, 0),
        Ok(Outcome::Value(Some(b"12345".to_vec())))
    );
}

#[test]
fn ttl_compare_and_set_and_delete_follow_the_store() {
    let limits = Limits::default();
    let mut store = store();
    let with_ttl = Op::Put {
        key: "k".into(),
        value: "v".into(),
        ttl_ms: Some(100),
    };
    assert_eq!(
        execute(&mut store, &with_ttl, &limits, 1000),
        Ok(Outcome::Done)
    );
    assert_eq!(
        read(&store, &get("k"), &limits, 1099),
        Ok(Outcome::Value(Some(b"v".to_vec())))
    );
    assert_eq!(
        read(&store, &get("k"), &limits, 1100),
        Ok(Outcome::Value(None))
    );
    let zero_ttl = Op::Put {
        key: "k".into(),
        value: "v".into(),
        ttl_ms: Some(0),
    };
    assert_eq!(
        execute(&mut store, &zero_ttl, &limits, 0),
        Err(Error::ZeroTtl)
    );
    let cas = |expected: Option<&str>, value: &str| Op::CompareAndSet {
        key: "c".into(),
        expected: expected.map(Into::into),
        value: value.into(),
        ttl_ms: None,
    };
    assert_eq!(
        execute(&mut store, &cas(Some("x"), "a"), &limits, 0),
        Ok(Outcome::Swapped(false))
    );
    assert_eq!(
        execute(&mut store, &cas(None, "a"), &limits, 0),
        Ok(Outcome::Swapped(true))
    );
    assert_eq!(
        execute(&mut store, &cas(Some("a"), "b"), &limits, 0),
        Ok(Outcome::Swapped(true))
    );
    let delete = Op::Delete { key: "c".into() };
    assert_eq!(
        execute(&mut store, &delete, &limits, 0),
        Ok(Outcome::Deleted(true))
    );
    assert_eq!(
        execute(&mut store, &delete, &limits, 0),
        Ok(Outcome::Deleted(false))
    );
}

/// A client over one local store: what `run` needs to provide.
struct LocalClient {
    store: Mutex<Store>,
}

impl KvClient for LocalClient {
    async fn run(&self, op: Op) -> Result<Outcome, Error> {
        let mut store = self.store.lock().expect("local store lock");
        execute(&mut store, &op, &Limits::default(), 0)
    }
}

/// A server that answers every operation with `Done`.
struct ConfusedClient;

impl KvClient for ConfusedClient {
    async fn run(&self, _op: Op) -> Result<Outcome, Error> {
        Ok(Outcome::Done)
    }
}

#[test]
fn typed_methods_build_the_op_and_read_its_outcome() {
    let client = LocalClient {
        store: Mutex::new(store()),
    };
    futures::executor::block_on(async {
        assert_eq!(client.get("k").await, Ok(None));
        client.put("k", "a").await.expect("put");
        client.append("k", "b").await.expect("append");
        assert_eq!(client.get("k").await, Ok(Some(b"ab".to_vec())));
        assert_eq!(
            client.compare_and_set("k", Some(b"ab".to_vec()), "c").await,
            Ok(true)
        );
        assert_eq!(client.compare_and_set("k", None, "d").await, Ok(false));
        assert_eq!(
            client.put_with_ttl("k", "e", Some(0)).await,
            Err(Error::ZeroTtl)
        );
        assert_eq!(client.delete("k").await, Ok(true));
        assert_eq!(client.get("k").await, Ok(None));
    });
}

#[test]
fn an_outcome_of_the_wrong_kind_is_an_error_not_a_panic() {
    futures::executor::block_on(async {
        assert_eq!(
            ConfusedClient.get("k").await,
            Err(Error::UnexpectedOutcome {
                op: "Get".into(),
                outcome: "Done".into()
            })
        );
        assert!(ConfusedClient.delete("k").await.is_err());
        assert!(ConfusedClient.put("k", "v").await.is_ok());
    });
}
