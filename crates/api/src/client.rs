//! The client trait every way of reaching the service implements.

use std::future::Future;

use crate::op::{ExpireCondition, Float, GetExTtl, KeyTtl, SetCondition, SetTtl};
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

    /// Concatenates `value` onto the key's value (absent: empty); the
    /// value's length after this append.
    fn append(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> impl Future<Output = Result<i64, Error>> + Send {
        let op = Op::Append {
            key: key.into(),
            value: value.into(),
        };
        async move { expect_integer("Append", self.run(op).await?) }
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

    /// Redis's `SET` with options: writes if `condition` holds; answers
    /// whether it wrote and (with `return_old`) the value before.
    fn set(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        condition: SetCondition,
        ttl: SetTtl,
        return_old: bool,
    ) -> impl Future<Output = Result<(bool, Option<Vec<u8>>), Error>> + Send {
        let op = Op::Set {
            key: key.into(),
            value: value.into(),
            condition,
            ttl,
            return_old,
        };
        async move {
            match self.run(op).await? {
                Outcome::Set { applied, previous } => Ok((applied, previous)),
                other => Err(unexpected("Set", &other)),
            }
        }
    }

    /// Adds `delta` to the key's integer (absent: 0); the new value.
    fn increment(
        &self,
        key: impl Into<Vec<u8>>,
        delta: i64,
    ) -> impl Future<Output = Result<i64, Error>> + Send {
        let op = Op::Increment {
            key: key.into(),
            delta,
        };
        async move { expect_integer("Increment", self.run(op).await?) }
    }

    /// Adds `delta` to the key's number (absent: 0); the new value as
    /// stored (see [`crate::format_float`]).
    fn increment_float(
        &self,
        key: impl Into<Vec<u8>>,
        delta: f64,
    ) -> impl Future<Output = Result<Vec<u8>, Error>> + Send {
        let op = Op::IncrementFloat {
            key: key.into(),
            delta: Float(delta),
        };
        async move {
            match self.run(op).await? {
                Outcome::Value(Some(text)) => Ok(text),
                other => Err(unexpected("IncrementFloat", &other)),
            }
        }
    }

    /// Removes the key; its value before.
    fn get_del(
        &self,
        key: impl Into<Vec<u8>>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send {
        let op = Op::GetDel { key: key.into() };
        async move { expect_value("GetDel", self.run(op).await?) }
    }

    /// Reads the key and changes its deadline as `ttl` says.
    fn get_ex(
        &self,
        key: impl Into<Vec<u8>>,
        ttl: GetExTtl,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send {
        let op = Op::GetEx {
            key: key.into(),
            ttl,
        };
        async move { expect_value("GetEx", self.run(op).await?) }
    }

    /// Gives the key a deadline `ttl_ms` from now if `condition` holds;
    /// whether it did (false: absent, or the condition failed).
    fn expire(
        &self,
        key: impl Into<Vec<u8>>,
        ttl_ms: u64,
        condition: ExpireCondition,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let op = Op::Expire {
            key: key.into(),
            ttl_ms,
            unix_ms: None,
            condition,
        };
        async move { expect_applied("Expire", self.run(op).await?) }
    }

    /// Removes the key's deadline; whether it had one.
    fn persist(&self, key: impl Into<Vec<u8>>) -> impl Future<Output = Result<bool, Error>> + Send {
        let op = Op::Persist { key: key.into() };
        async move { expect_applied("Persist", self.run(op).await?) }
    }

    /// How long the key has left.
    fn ttl(&self, key: impl Into<Vec<u8>>) -> impl Future<Output = Result<KeyTtl, Error>> + Send {
        let op = Op::Ttl { key: key.into() };
        async move {
            match self.run(op).await? {
                Outcome::Ttl(ttl) => Ok(ttl),
                other => Err(unexpected("Ttl", &other)),
            }
        }
    }

    /// The length of the key's value (absent: 0).
    fn strlen(&self, key: impl Into<Vec<u8>>) -> impl Future<Output = Result<i64, Error>> + Send {
        let op = Op::Strlen { key: key.into() };
        async move { expect_integer("Strlen", self.run(op).await?) }
    }

    /// Redis's `GETRANGE`: bytes `start..=end` of the value.
    fn get_range(
        &self,
        key: impl Into<Vec<u8>>,
        start: i64,
        end: i64,
    ) -> impl Future<Output = Result<Vec<u8>, Error>> + Send {
        let op = Op::GetRange {
            key: key.into(),
            start,
            end,
        };
        async move {
            match self.run(op).await? {
                Outcome::Value(value) => Ok(value.unwrap_or_default()),
                other => Err(unexpected("GetRange", &other)),
            }
        }
    }

    /// Redis's `SETRANGE`: overwrites from `offset`; the new length.
    fn set_range(
        &self,
        key: impl Into<Vec<u8>>,
        offset: u64,
        value: impl Into<Vec<u8>>,
    ) -> impl Future<Output = Result<i64, Error>> + Send {
        let op = Op::SetRange {
            key: key.into(),
            offset,
            value: value.into(),
        };
        async move { expect_integer("SetRange", self.run(op).await?) }
    }
}

fn expect_value(op: &str, outcome: Outcome) -> Result<Option<Vec<u8>>, Error> {
    match outcome {
        Outcome::Value(value) => Ok(value),
        other => Err(unexpected(op, &other)),
    }
}

fn expect_integer(op: &str, outcome: Outcome) -> Result<i64, Error> {
    match outcome {
        Outcome::Integer(number) => Ok(number),
        other => Err(unexpected(op, &other)),
    }
}

fn expect_applied(op: &str, outcome: Outcome) -> Result<bool, Error> {
    match outcome {
        Outcome::Applied(applied) => Ok(applied),
        other => Err(unexpected(op, &other)),
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
