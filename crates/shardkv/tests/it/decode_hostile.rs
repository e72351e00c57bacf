//! Property test of every peer message decoder a data node runs (the
//! labrpc requests and replies of Raft, the shard controller and shardkv,
//! and the shard transfer and machine snapshot inside them): arbitrary
//! bytes, and valid encodings with bytes flipped, cut or appended, decode
//! to a value or a typed error; they never panic and never allocate past
//! labrpc's decode limit (a length prefix claiming gigabytes is refused
//! before any allocation, or the test would run out of memory).

use proptest::prelude::*;
use raft::core::{AppendEntries, Entry, EntryKind, Message, MessageBody};
use shardctrler::{ConfigOp, ControllerRequest};
use shardkv::{
    DeleteShards, Op, PullChunk, ShardKvBatch, ShardKvRequest, ShardMachine, ShardTransfer,
};

/// Tries every decoder on `bytes`; only a panic fails.
fn decode_all(bytes: &[u8]) {
    let _ = labrpc::decode::<Message>(bytes);
    let _ = labrpc::decode::<Option<Message>>(bytes);
    let _ = labrpc::decode::<ControllerRequest>(bytes);
    let _ = labrpc::decode::<shardctrler::Reply>(bytes);
    let _ = labrpc::decode::<ShardKvRequest>(bytes);
    let _ = labrpc::decode::<shardkv::Reply>(bytes);
    let _ = labrpc::decode::<ShardKvBatch>(bytes);
    let _ = labrpc::decode::<<ShardKvBatch as labrpc::Rpc>::Reply>(bytes);
    let _ = labrpc::decode::<PullChunk>(bytes);
    let _ = labrpc::decode::<<PullChunk as labrpc::Rpc>::Reply>(bytes);
    let _ = labrpc::decode::<DeleteShards>(bytes);
    let _ = labrpc::decode::<<DeleteShards as labrpc::Rpc>::Reply>(bytes);
    let _ = ShardTransfer::decode(bytes);
    let _ = ShardMachine::restore(bytes);
}

/// Valid encodings of one message of each request type, to mutate.
fn samples() -> Vec<Vec<u8>> {
    let append = Message {
        from: 0,
        to: 1,
        term: 3,
        body: MessageBody::AppendEntries(AppendEntries {
            prev_log_index: 4,
            prev_log_term: 2,
            entries: vec![Entry {
                index: 5,
                term: 3,
                kind: EntryKind::Command,
                data: b"command".to_vec().into(),
            }],
            leader_commit: 4,
        }),
    };
    let query = ControllerRequest {
        client_id: 7,
        seq: 0,
        op: ConfigOp::Query { num: None },
    };
    let put = ShardKvRequest {
        client_id: 9,
        seq: 2,
        config_num: 4,
        op: Op::Put {
            key: b"key".to_vec(),
            value: b"value".to_vec(),
            ttl_ms: Some(1000),
        },
    };
    let pull = PullChunk {
        config_num: 4,
        shard: 3,
        offset: 0,
        max_bytes: 1 << 20,
        from_gid: 2,
    };
    let delete = DeleteShards {
        config_num: 4,
        shards: vec![3, 5],
        from_gid: 2,
    };
    let batch = ShardKvBatch {
        requests: vec![put.clone(), put.clone()],
        traces: vec![
            Some(shardkv::BatchTrace {
                trace_id: 7,
                span_id: 8,
            }),
            None,
        ],
    };
    vec![
        labrpc::encode(&append).unwrap(),
        labrpc::encode(&query).unwrap(),
        labrpc::encode(&put).unwrap(),
        labrpc::encode(&batch).unwrap(),
        labrpc::encode(&pull).unwrap(),
        labrpc::encode(&delete).unwrap(),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Cut(usize),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        any::<usize>().prop_map(Mutation::Cut),
        prop::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Append),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_all(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic_a_decoder(
        sample in 0..5_usize,
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = samples()[sample].clone();
        for mutation in mutations {
            match mutation {
                Mutation::Flip { at, byte } if !bytes.is_empty() => {
                    let at = at % bytes.len();
                    bytes[at] = byte;
                }
                Mutation::Flip { .. } => {}
                Mutation::Cut(at) => bytes.truncate(at % (bytes.len() + 1)),
                Mutation::Append(tail) => bytes.extend(tail),
            }
        }
        decode_all(&bytes);
    }
}

#[test]
fn a_length_prefix_claiming_gigabytes_is_refused_without_allocating() {
    // A Raft AppendEntries whose entry count claims 2^60 entries: bincode's
    // varint for u64 is 253 followed by 8 bytes.
    let mut bytes = labrpc::encode(&Message {
        from: 0,
        to: 1,
        term: 1,
        body: MessageBody::AppendEntries(AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: Vec::new(),
            leader_commit: 0,
        }),
    })
    .unwrap();
    // The empty entries vector is the byte before leader_commit (0).
    let count_at = bytes.len() - 2;
    assert_eq!(bytes[count_at], 0, "the entry count of the sample");
    bytes.truncate(count_at);
    bytes.push(253);
    bytes.extend((1_u64 << 60).to_le_bytes());
    bytes.push(0);
    let error = labrpc::decode::<Message>(&bytes).unwrap_err();
    assert!(
        error.to_string().contains("limit") || error.to_string().contains("nexpected"),
        "refused by the decode limit or the end of input: {error}"
    );
}
