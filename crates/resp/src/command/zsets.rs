//! Parsers of the sorted-set commands (`ZADD` ... `ZRANGESTORE`): one
//! [`Command::ZSet`] with the operation and its arguments checked in the
//! order Redis 7.0 checks them, so the first error a request meets is
//! Redis's.

use bytes::Bytes;

use super::args::{Args, check_pairs_fit, is, parse_float, parse_integer};
use super::error::CommandError;
use super::types::Command;

/// One end of a score range: `5`, `(5`, `-inf`, `+inf`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBoundArg {
    /// The bound (never NaN).
    pub value: f64,
    /// `(`: the bound itself is outside the range.
    pub exclusive: bool,
}

/// One end of a member range: `-`, `+`, `[a`, `(a`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBoundArg {
    /// `-`.
    Lowest,
    /// `+`.
    Highest,
    /// `[member`.
    Inclusive(Bytes),
    /// `(member`.
    Exclusive(Bytes),
}

/// Which members a range selects.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // the bounds, named as Redis names them
pub enum ZRangeArg {
    /// Ranks `start..=stop` (negative from the end).
    Rank { start: i64, stop: i64 },
    /// `BYSCORE`.
    Score {
        min: ScoreBoundArg,
        max: ScoreBoundArg,
    },
    /// `BYLEX`.
    Lex { min: LexBoundArg, max: LexBoundArg },
}

/// How `ZUNIONSTORE`, `ZINTERSTORE` and `ZDIFFSTORE` combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZCombination {
    /// `ZUNIONSTORE`.
    Union,
    /// `ZINTERSTORE`.
    Intersection,
    /// `ZDIFFSTORE`.
    Difference,
}

/// `AGGREGATE SUM | MIN | MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub enum ZAggregate {
    #[default]
    Sum,
    Min,
    Max,
}

/// A sorted-set command's operation, arguments parsed.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // named as Redis names the arguments
pub enum ZSetCommand {
    /// `ZADD` and `ZINCRBY` (`increment`, one entry).
    Add {
        entries: Vec<(f64, Bytes)>,
        only_new: bool,
        only_existing: bool,
        only_greater: bool,
        only_less: bool,
        changed: bool,
        increment: bool,
    },
    Rem {
        members: Vec<Bytes>,
    },
    Card,
    /// `ZSCORE` (`multiple`: false) and `ZMSCORE`.
    Score {
        members: Vec<Bytes>,
        multiple: bool,
    },
    Rank {
        member: Bytes,
        reverse: bool,
    },
    /// The `ZRANGE` family.
    Range {
        range: ZRangeArg,
        reverse: bool,
        limit: Option<(i64, i64)>,
        with_scores: bool,
    },
    /// `ZCOUNT` and `ZLEXCOUNT`.
    Count {
        range: ZRangeArg,
    },
    /// `ZPOPMIN`/`ZPOPMAX` (`highest`).
    Pop {
        highest: bool,
        count: Option<u64>,
    },
    /// The `ZREMRANGEBY*` family.
    RemRange {
        range: ZRangeArg,
    },
    RandMember {
        count: Option<i64>,
        with_scores: bool,
    },
    /// `ZUNIONSTORE`/`ZINTERSTORE`/`ZDIFFSTORE`: the command's key is the
    /// destination.
    Store {
        how: ZCombination,
        sources: Vec<Bytes>,
        weights: Vec<f64>,
        aggregate: ZAggregate,
    },
    /// `ZUNION`/`ZINTER`/`ZDIFF`: the command's key is the first source.
    Combine {
        how: ZCombination,
        others: Vec<Bytes>,
        weights: Vec<f64>,
        aggregate: ZAggregate,
        with_scores: bool,
    },
    /// `ZINTERCARD numkeys key ... [LIMIT limit]`: the command's key is the
    /// first source; `limit` 0 counts all.
    InterCard {
        others: Vec<Bytes>,
        limit: u64,
    },
    /// `ZSCAN key cursor [MATCH pattern] [COUNT count]`.
    Scan(super::collections::ElementScan),
    /// `ZRANGESTORE dst src ...`: the command's key is the destination.
    RangeStore {
        source: Bytes,
        range: ZRangeArg,
        reverse: bool,
        limit: Option<(i64, i64)>,
    },
}

fn zset(key: Bytes, op: ZSetCommand) -> Result<Command, CommandError> {
    Ok(Command::ZSet { key, op })
}

/// A score argument as Redis's `getDoubleFromObject` reads it: a whole
/// decimal (or `inf`), no spaces, not NaN, and no overflow or underflow
/// (`1e400` and `1e-400` are refused, as `strtod`'s `ERANGE`).
pub fn parse_score(text: &[u8]) -> Option<f64> {
    let value = parse_float(text)?;
    let spelled_infinite = text.iter().any(|byte| byte.eq_ignore_ascii_case(&b'i'));
    if value.is_infinite() && !spelled_infinite {
        return None;
    }
    let mantissa = text
        .split(|byte| byte.eq_ignore_ascii_case(&b'e'))
        .next()
        .unwrap_or_default();
    if value == 0.0 && mantissa.iter().any(|byte| (b'1'..=b'9').contains(byte)) {
        return None;
    }
    Some(value)
}

/// A score range end as `zslParseRange` reads it: `(` for open, then what
/// `strtod` reads whole (an empty string is 0, leading spaces pass), not
/// NaN.
fn score_bound(text: &[u8]) -> Option<ScoreBoundArg> {
    let (exclusive, number) = match text.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let number = std::str::from_utf8(number).ok()?.trim_start();
    let value = if number.is_empty() {
        0.0
    } else {
        number.parse::<f64>().ok()?
    };
    (!value.is_nan()).then_some(ScoreBoundArg { value, exclusive })
}

fn lex_bound(text: &Bytes) -> Option<LexBoundArg> {
    match text.first()? {
        b'+' if text.len() == 1 => Some(LexBoundArg::Highest),
        b'-' if text.len() == 1 => Some(LexBoundArg::Lowest),
        b'[' => Some(LexBoundArg::Inclusive(text.slice(1..))),
        b'(' => Some(LexBoundArg::Exclusive(text.slice(1..))),
        _ => None,
    }
}

fn score_range(min: &[u8], max: &[u8]) -> Result<ZRangeArg, CommandError> {
    match (score_bound(min), score_bound(max)) {
        (Some(min), Some(max)) => Ok(ZRangeArg::Score { min, max }),
        _ => Err(CommandError::MinMaxNotFloat),
    }
}

fn lex_range(min: &Bytes, max: &Bytes) -> Result<ZRangeArg, CommandError> {
    match (lex_bound(min), lex_bound(max)) {
        (Some(min), Some(max)) => Ok(ZRangeArg::Lex { min, max }),
        _ => Err(CommandError::MinMaxNotLex),
    }
}

/// `ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]`.
pub(crate) fn zadd(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let rest = args.rest();
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, false);
    let mut first_score = 0;
    for option in &rest {
        let flag = if is(option, "nx") {
            &mut nx
        } else if is(option, "xx") {
            &mut xx
        } else if is(option, "ch") {
            &mut ch
        } else if is(option, "incr") {
            &mut incr
        } else if is(option, "gt") {
            &mut gt
        } else if is(option, "lt") {
            &mut lt
        } else {
            break;
        };
        *flag = true;
        first_score += 1;
    }
    let pairs = &rest[first_score..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    if nx && xx {
        return Err(CommandError::ZaddNxAndXx);
    }
    // At most one of GT, LT, NX (XX goes with GT or LT).
    if [gt, lt, nx].into_iter().filter(|&set| set).count() > 1 {
        return Err(CommandError::ZaddGtLtNx);
    }
    if incr && pairs.len() > 2 {
        return Err(CommandError::ZaddIncrOnePair);
    }
    let entries = pairs
        .chunks(2)
        .map(|pair| {
            parse_score(&pair[0])
                .map(|score| (score, pair[1].clone()))
                .ok_or(CommandError::NotAFloat)
        })
        .collect::<Result<Vec<_>, _>>()?;
    zset(
        key,
        ZSetCommand::Add {
            entries,
            only_new: nx,
            only_existing: xx,
            only_greater: gt,
            only_less: lt,
            changed: ch,
            increment: incr,
        },
    )
}

/// `ZINCRBY key increment member`.
pub(crate) fn zincrby(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let delta = parse_score(&args.take()?).ok_or(CommandError::NotAFloat)?;
    let member = args.take()?;
    zset(
        key,
        ZSetCommand::Add {
            entries: vec![(delta, member)],
            only_new: false,
            only_existing: false,
            only_greater: false,
            only_less: false,
            changed: false,
            increment: true,
        },
    )
}

pub(crate) fn zrem(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let members = args.rest();
    zset(key, ZSetCommand::Rem { members })
}

pub(crate) fn zcard(args: &mut Args) -> Result<Command, CommandError> {
    zset(args.take()?, ZSetCommand::Card)
}

pub(crate) fn zscore(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let member = args.take()?;
    zset(
        key,
        ZSetCommand::Score {
            members: vec![member],
            multiple: false,
        },
    )
}

pub(crate) fn zmscore(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let members = args.rest();
    zset(
        key,
        ZSetCommand::Score {
            members,
            multiple: true,
        },
    )
}

fn rank(args: &mut Args, reverse: bool) -> Result<Command, CommandError> {
    let key = args.take()?;
    let member = args.take()?;
    zset(key, ZSetCommand::Rank { member, reverse })
}

pub(crate) fn zrank(args: &mut Args) -> Result<Command, CommandError> {
    rank(args, false)
}

pub(crate) fn zrevrank(args: &mut Args) -> Result<Command, CommandError> {
    rank(args, true)
}

/// What a `ZRANGE`-family command fixes before its options.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    /// `ZRANGE`, `ZRANGESTORE`: `BYSCORE`/`BYLEX` may say.
    Auto,
    Rank,
    Score,
    Lex,
}

/// A parsed `ZRANGE`-family request, before it becomes a command.
struct RangeRequest {
    range: ZRangeArg,
    reverse: bool,
    limit: Option<(i64, i64)>,
    with_scores: bool,
}

/// Redis 7.0's `zrangeGenericCommand`: options first (`WITHSCORES`
/// unless storing, `LIMIT offset count`, and where the command leaves
/// them open `REV`, `BYSCORE`, `BYLEX`), then the conflicts, then the
/// range (given max first when reversed by score or member).
fn range_generic(
    args: &mut Args,
    kind: RangeKind,
    reverse_fixed: Option<bool>,
    store: bool,
) -> Result<RangeRequest, CommandError> {
    let first = args.take()?;
    let second = args.take()?;
    let mut kind = kind;
    let mut reverse = reverse_fixed;
    let mut with_scores = false;
    let mut limit = None;
    while let Some(option) = args.take_optional() {
        if !store && is(&option, "withscores") {
            with_scores = true;
        } else if is(&option, "limit") && args.remaining() >= 2 {
            let offset = args.integer()?;
            let count = args.integer()?;
            limit = Some((offset, count));
        } else if reverse_fixed.is_none() && is(&option, "rev") {
            reverse = Some(true);
        } else if kind == RangeKind::Auto && is(&option, "bylex") {
            kind = RangeKind::Lex;
        } else if kind == RangeKind::Auto && is(&option, "byscore") {
            kind = RangeKind::Score;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let reverse = reverse.unwrap_or(false);
    if kind == RangeKind::Auto {
        kind = RangeKind::Rank;
    }
    if kind == RangeKind::Rank {
        // Redis refuses a LIMIT by rank unless its count is -1, and then
        // ignores it (its offset too).
        if limit.is_some_and(|(_, count)| count != -1) {
            return Err(CommandError::LimitNeedsByScoreOrLex);
        }
        limit = None;
    }
    if with_scores && kind == RangeKind::Lex {
        return Err(CommandError::WithScoresByLex);
    }
    let (min, max) = if reverse && kind != RangeKind::Rank {
        (second, first)
    } else {
        (first, second)
    };
    let range = match kind {
        RangeKind::Score => score_range(&min, &max)?,
        RangeKind::Lex => lex_range(&min, &max)?,
        RangeKind::Rank | RangeKind::Auto => {
            let start = parse_integer(&min).ok_or(CommandError::NotAnInteger)?;
            let stop = parse_integer(&max).ok_or(CommandError::NotAnInteger)?;
            ZRangeArg::Rank { start, stop }
        }
    };
    Ok(RangeRequest {
        range,
        reverse,
        limit,
        with_scores,
    })
}

fn range_command(
    args: &mut Args,
    kind: RangeKind,
    reverse: Option<bool>,
) -> Result<Command, CommandError> {
    let key = args.take()?;
    let request = range_generic(args, kind, reverse, false)?;
    zset(
        key,
        ZSetCommand::Range {
            range: request.range,
            reverse: request.reverse,
            limit: request.limit,
            with_scores: request.with_scores,
        },
    )
}

pub(crate) fn zrange(args: &mut Args) -> Result<Command, CommandError> {
    range_command(args, RangeKind::Auto, None)
}

pub(crate) fn zrevrange(args: &mut Args) -> Result<Command, CommandError> {
    range_command(args, RangeKind::Rank, Some(true))
}

pub(crate) fn zrangebyscore(args: &mut Args) -> Result<Command, CommandError> {
    range_command(args, RangeKind::Score, Some(false))
}

pub(crate) fn zrevrangebyscore(args: &mut Args) -> Result<Command, CommandError> {
    range_command(args, RangeKind::Score, Some(true))
}

pub(crate) fn zrangebylex(args: &mut Args) -> Result<Command, CommandError> {
    range_command(args, RangeKind::Lex, Some(false))
}

pub(crate) fn zrevrangebylex(args: &mut Args) -> Result<Command, CommandError> {
    range_command(args, RangeKind::Lex, Some(true))
}

/// `ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]`.
pub(crate) fn zrangestore(args: &mut Args) -> Result<Command, CommandError> {
    let destination = args.take()?;
    let source = args.take()?;
    let request = range_generic(args, RangeKind::Auto, None, true)?;
    zset(
        destination,
        ZSetCommand::RangeStore {
            source,
            range: request.range,
            reverse: request.reverse,
            limit: request.limit,
        },
    )
}

pub(crate) fn zcount(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let (min, max) = (args.take()?, args.take()?);
    let range = score_range(&min, &max)?;
    zset(key, ZSetCommand::Count { range })
}

pub(crate) fn zlexcount(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let (min, max) = (args.take()?, args.take()?);
    let range = lex_range(&min, &max)?;
    zset(key, ZSetCommand::Count { range })
}

pub(crate) fn zremrangebyrank(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let start = args.integer()?;
    let stop = args.integer()?;
    zset(
        key,
        ZSetCommand::RemRange {
            range: ZRangeArg::Rank { start, stop },
        },
    )
}

pub(crate) fn zremrangebyscore(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let (min, max) = (args.take()?, args.take()?);
    let range = score_range(&min, &max)?;
    zset(key, ZSetCommand::RemRange { range })
}

pub(crate) fn zremrangebylex(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let (min, max) = (args.take()?, args.take()?);
    let range = lex_range(&min, &max)?;
    zset(key, ZSetCommand::RemRange { range })
}

/// `ZPOPMIN`/`ZPOPMAX key [count]`: more arguments are a syntax error; a
/// count that is not a non-negative integer is "must be positive" (Redis
/// 7.0 says so for a word too).
fn pop(args: &mut Args, highest: bool) -> Result<Command, CommandError> {
    let key = args.take()?;
    if args.remaining() > 1 {
        return Err(CommandError::Syntax);
    }
    let count = match args.take_optional() {
        Some(text) => {
            let count = parse_integer(&text).ok_or(CommandError::MustBePositive)?;
            Some(u64::try_from(count).map_err(|_| CommandError::MustBePositive)?)
        }
        None => None,
    };
    zset(key, ZSetCommand::Pop { highest, count })
}

pub(crate) fn zpopmin(args: &mut Args) -> Result<Command, CommandError> {
    pop(args, false)
}

pub(crate) fn zpopmax(args: &mut Args) -> Result<Command, CommandError> {
    pop(args, true)
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`.
pub(crate) fn zrandmember(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let count = if args.remaining() > 0 {
        Some(args.random_count()?)
    } else {
        None
    };
    let with_scores = match args.take_optional() {
        Some(word) if is(&word, "withscores") && args.remaining() == 0 => true,
        Some(_) => return Err(CommandError::Syntax),
        None => false,
    };
    check_pairs_fit(count, with_scores)?;
    zset(key, ZSetCommand::RandMember { count, with_scores })
}

/// What [`combination`] parses.
struct CombinationRequest {
    sources: Vec<Bytes>,
    weights: Vec<f64>,
    aggregate: ZAggregate,
    with_scores: bool,
    limit: u64,
}

/// What a command of the `zunionInterDiffGenericCommand` family accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CombinationForm {
    /// `Z*STORE destination numkeys ...`.
    Store,
    /// `ZUNION`/`ZINTER`/`ZDIFF numkeys ... [WITHSCORES]`.
    Read,
    /// `ZINTERCARD numkeys ... [LIMIT limit]`.
    Cardinality,
}

/// `numkeys key [key ...]` and the options after them (`WEIGHTS`,
/// `AGGREGATE` but for a difference and `ZINTERCARD`; `WITHSCORES` for
/// the reads; `LIMIT` for `ZINTERCARD`), checked in Redis 7.0's order.
fn combination(
    args: &mut Args,
    how: ZCombination,
    form: CombinationForm,
) -> Result<CombinationRequest, CommandError> {
    let numkeys = args.integer()?;
    if numkeys < 1 {
        return Err(CommandError::AtLeastOneKey {
            command: args.full_name(),
        });
    }
    let numkeys = usize::try_from(numkeys).map_err(|_| CommandError::Syntax)?;
    if numkeys > args.remaining() {
        return Err(CommandError::Syntax);
    }
    let mut sources = Vec::with_capacity(numkeys);
    for _ in 0..numkeys {
        sources.push(args.take()?);
    }
    let mut weights = Vec::new();
    let mut aggregate = ZAggregate::Sum;
    let mut with_scores = false;
    let mut limit = 0;
    while let Some(option) = args.take_optional() {
        let combines = how != ZCombination::Difference && form != CombinationForm::Cardinality;
        if combines && is(&option, "weights") && args.remaining() >= numkeys {
            weights.clear();
            for _ in 0..numkeys {
                let weight = parse_score(&args.take()?).ok_or(CommandError::WeightNotAFloat)?;
                weights.push(weight);
            }
        } else if combines && is(&option, "aggregate") && args.remaining() >= 1 {
            let name = args.take()?;
            aggregate = if is(&name, "sum") {
                ZAggregate::Sum
            } else if is(&name, "min") {
                ZAggregate::Min
            } else if is(&name, "max") {
                ZAggregate::Max
            } else {
                return Err(CommandError::Syntax);
            };
        } else if form == CombinationForm::Read && is(&option, "withscores") {
            with_scores = true;
        } else if form == CombinationForm::Cardinality
            && is(&option, "limit")
            && args.remaining() >= 1
        {
            limit = parse_integer(&args.take()?)
                .and_then(|value| u64::try_from(value).ok())
                .ok_or(CommandError::LposNegative("LIMIT"))?;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(CombinationRequest {
        sources,
        weights,
        aggregate,
        with_scores,
        limit,
    })
}

/// `Z{UNION,INTER,DIFF}STORE destination numkeys key [key ...] [WEIGHTS
/// weight ...] [AGGREGATE SUM | MIN | MAX]` (no options for `DIFF`).
fn store(args: &mut Args, how: ZCombination) -> Result<Command, CommandError> {
    let destination = args.take()?;
    let request = combination(args, how, CombinationForm::Store)?;
    zset(
        destination,
        ZSetCommand::Store {
            how,
            sources: request.sources,
            weights: request.weights,
            aggregate: request.aggregate,
        },
    )
}

/// `ZUNION`/`ZINTER`/`ZDIFF numkeys key [key ...] ... [WITHSCORES]`.
fn read_combination(args: &mut Args, how: ZCombination) -> Result<Command, CommandError> {
    let mut request = combination(args, how, CombinationForm::Read)?;
    let key = request.sources.remove(0);
    zset(
        key,
        ZSetCommand::Combine {
            how,
            others: request.sources,
            weights: request.weights,
            aggregate: request.aggregate,
            with_scores: request.with_scores,
        },
    )
}

pub(crate) fn zscan(args: &mut Args) -> Result<Command, CommandError> {
    let (key, scan) = super::collections::element_scan(args)?;
    zset(key, ZSetCommand::Scan(scan))
}

pub(crate) fn zunion(args: &mut Args) -> Result<Command, CommandError> {
    read_combination(args, ZCombination::Union)
}

pub(crate) fn zinter(args: &mut Args) -> Result<Command, CommandError> {
    read_combination(args, ZCombination::Intersection)
}

pub(crate) fn zdiff(args: &mut Args) -> Result<Command, CommandError> {
    read_combination(args, ZCombination::Difference)
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`.
pub(crate) fn zintercard(args: &mut Args) -> Result<Command, CommandError> {
    let mut request = combination(
        args,
        ZCombination::Intersection,
        CombinationForm::Cardinality,
    )?;
    let key = request.sources.remove(0);
    zset(
        key,
        ZSetCommand::InterCard {
            others: request.sources,
            limit: request.limit,
        },
    )
}

pub(crate) fn zunionstore(args: &mut Args) -> Result<Command, CommandError> {
    store(args, ZCombination::Union)
}

pub(crate) fn zinterstore(args: &mut Args) -> Result<Command, CommandError> {
    store(args, ZCombination::Intersection)
}

pub(crate) fn zdiffstore(args: &mut Args) -> Result<Command, CommandError> {
    store(args, ZCombination::Difference)
}
