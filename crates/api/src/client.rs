//! The client trait every way of reaching the service implements.

use std::future::Future;

use crate::{Error, Op, Outcome};

/// A client of the key/value service: one required method, [`run`], and
/// the typed operations on top of it.
///
/// Implemented by kvraft's clerk (one Raft group), shardkv's clerk (the
/// sharded service) and the product client; test harnesses wrap any of
/// them (to record histories, say) by implementing [`run`] alone.
///
/// The implementer guarantees that [`run`] returns only final answers: it
/// consumes the internal errors ([`Error::WrongLeader`],
/// [`Error::WrongGroup`], [`Error::NotApplied`], [`Error::Busy`]) by
/// retrying until its deadline, then answers [`Error::Timeout`].
///
/// [`run`]: KvClient::run
pub trait KvClient: Send + Sync {
    /// Runs one operation to a final answer.
    fn run(&self, op: Op) -> impl Future<Output = Result<Outcome, Error>> + Send;

    /// The key's value (absent or expired: `None`).
    fn get(
        &self,
        key: impl Into<Vec<u8>>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send {
        let op = Op::Get { key: key.into() };
        async move {
            match self.run(op).await? {
                Outcome::Value(value) => Ok(value),
                other => Err(unexpected("Get", &other)),
            }
        }
    }

    fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.put_with_ttl(key, value, None)
    }

    /// Put whose entry expires `ttl_ms` logical ms after it is applied.
    fn put_with_ttl(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let op = Op::Put {
            key: key.into(),
            value: value.into(),
            ttl_ms,
        };
        async move { expect_done("Put", self.run(op).await?) }
    }

    /// Concatenates `value` onto the key's value (absent: empty).
    fn append(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let op = Op::Append {
            key: key.into(),
            value: value.into(),
        };
        async move { expect_done("Append", self.run(op).await?) }
    }

    /// Removes the key; whether it was there.
    fn delete(&self, key: impl Into<Vec<u8>>) -> impl Future<Output = Result<bool, Error>> + Send {
        let op = Op::Delete { key: key.into() };
        async move {
            match self.run(op).await? {
                Outcome::Deleted(existed) => Ok(existed),
                other => Err(unexpected("Delete", &other)),
            }
        }
    }

    /// Sets the key to `value` if it holds `expected` (`None`: absent);
    /// whether it swapped.
    fn compare_and_set(
        &self,
        key: impl Into<Vec<u8>>,
        expected: Option<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let op = Op::CompareAndSet {
            key: key.into(),
            expected,
            value: value.into(),
            ttl_ms: None,
        };
        async move {
            match self.run(op).await? {
                Outcome::Swapped(swapped) => Ok(swapped),
                other => Err(unexpected("CompareAndSet", &other)),
            }
        }
    }
}

fn expect_done(op: &str, outcome: Outcome) -> Result<(), Error> {
    match outcome {
        Outcome::Done => Ok(()),
        other => Err(unexpected(op, &other)),
    }
}

fn unexpected(op: &str, outcome: &Outcome) -> Error {
    Error::UnexpectedOutcome {
        op: op.to_string(),
        outcome: format!("{outcome:?}"),
    }
}
