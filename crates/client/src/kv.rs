//! [`api::KvClient`] on the product [`Client`]: the same generic code runs
//! over the lab clerks and over a real cluster.
//!
//! `run(op)` maps each operation to the gRPC call that does exactly it:
//!
//! | `Op` | call |
//! |---|---|
//! | `Get`, `Ttl`, `Put`, `Append`, `Delete`, `Increment`, `Persist` | the method of that name (`Put` is `Set`) |
//! | `CompareAndSet` | `CompareAndSet` (with its TTL) |
//! | `Set` with `return_old = false` and a TTL that is `Clear` or `Ms(n > 0)` | `Set` with the condition |
//! | `Expire` without conditions | `Expire` |
//! | `Strlen`, `GetRange` | one `Get`, measured or cut here (one linearizable read) |
//!
//! Everything else (`Set` returning the old value or keeping the TTL,
//! conditional `Expire`, `GetDel`, `GetEx`, `SetRange`, `IncrementFloat`,
//! hashes, sets, lists, whole-shard and multi-key operations) has no call in
//! `distcache.v1` yet: `run` answers [`api::Error::UnexpectedOutcome`] with
//! an outcome text saying so, and sends nothing.
//!
//! Errors: a typed error of the cluster ([`ClientError::Refused`]) is that
//! [`api::Error`]; the client's own deadline is [`api::Error::Timeout`];
//! anything the [`api::Error`] type has no word for (a refused login, a
//! bad address, an invalid request such as an empty key) is
//! [`api::Error::UnexpectedOutcome`] whose outcome is the client error's
//! text.

use api::{KeyTtl, Op, Outcome, SetTtl};

use crate::client::{Client, Condition, SetOptions};
use crate::error::ClientError;

/// The outcome text of an operation the gRPC API does not offer.
pub const NOT_IN_THE_API: &str = "not offered by the gRPC API (distcache.v1)";

fn unsupported(op: &Op) -> api::Error {
    api::Error::UnexpectedOutcome {
        op: op.name().to_string(),
        outcome: NOT_IN_THE_API.to_string(),
    }
}

/// The [`api::Error`] of a failed call of `op`.
fn api_error(op_name: &str, error: ClientError) -> api::Error {
    error
        .api_error()
        .unwrap_or_else(|| api::Error::UnexpectedOutcome {
            op: op_name.to_string(),
            outcome: error.to_string(),
        })
}

impl Client {
    async fn run_op(&self, op: Op) -> Result<Outcome, ClientError> {
        Ok(match op {
            Op::Get { key } => Outcome::Value(self.get(&key).await?),
            Op::Put { key, value, ttl_ms } => {
                let options = SetOptions {
                    ttl_ms,
                    condition: Condition::Always,
                };
                self.set_with(&key, &value, options).await?;
                Outcome::Done
            }
            Op::Append { key, value } => {
                let length = self.append(&key, &value).await?;
                Outcome::Integer(i64::try_from(length).unwrap_or(i64::MAX))
            }
            Op::Delete { key } => Outcome::Deleted(self.delete(&key).await?),
            Op::CompareAndSet {
                key,
                expected,
                value,
                ttl_ms,
            } => Outcome::Swapped(
                self.compare_and_set_with_ttl(&key, expected.as_deref(), &value, ttl_ms)
                    .await?,
            ),
            Op::Set {
                key,
                value,
                condition,
                ttl,
                return_old: false,
            } if matches!(ttl, SetTtl::Clear | SetTtl::Ms(1..)) => {
                let options = SetOptions {
                    ttl_ms: match ttl {
                        SetTtl::Ms(ms) => Some(ms),
                        _ => None,
                    },
                    condition: match condition {
                        api::SetCondition::Always => Condition::Always,
                        api::SetCondition::IfAbsent => Condition::IfAbsent,
                        api::SetCondition::IfPresent => Condition::IfPresent,
                    },
                };
                let applied = self.set_with(&key, &value, options).await?;
                Outcome::Set {
                    applied,
                    previous: None,
                }
            }
            Op::Increment { key, delta } => Outcome::Integer(self.increment(&key, delta).await?),
            Op::Expire {
                key,
                ttl_ms,
                condition,
                ..
            } if condition == api::ExpireCondition::default() => {
                Outcome::Applied(self.expire(&key, ttl_ms).await?)
            }
            Op::Persist { key } => Outcome::Applied(self.persist(&key).await?),
            Op::Ttl { key } => Outcome::Ttl(match self.ttl(&key).await? {
                None => KeyTtl::Missing,
                Some(None) => KeyTtl::Persistent,
                Some(Some(ms)) => KeyTtl::RemainingMs(ms),
            }),
            Op::Strlen { key } => {
                let length = self.get(&key).await?.map_or(0, |value| value.len());
                Outcome::Integer(i64::try_from(length).unwrap_or(i64::MAX))
            }
            Op::GetRange { key, start, end } => {
                let value = self.get(&key).await?.unwrap_or_default();
                Outcome::Value(Some(api::substring(&value, start, end).to_vec()))
            }
            other => return Err(ClientError::Refused(unsupported(&other))),
        })
    }
}

impl api::KvClient for Client {
    async fn run(&self, op: Op) -> Result<Outcome, api::Error> {
        let name = op.name();
        self.run_op(op)
            .await
            .map_err(|error| api_error(name, error))
    }
}
