//! The most common operations' bytes are serde bytes (`op.rs`): in the
//! log and on the wire they must stay laid out as the `Vec<u8>`s they
//! were declared as before, or entries already written would not decode.

use api::Op;
use serde::{Deserialize, Serialize};

/// `Op`'s first two variants as declared before (same order, so the same
/// variant numbers).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum OpWithSeqs {
    Get {
        key: Vec<u8>,
    },
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
}

#[test]
fn get_and_put_encode_as_before() {
    let value: Vec<u8> = (0..=255u8).cycle().take(1_000).collect();
    let pairs = [
        (
            Op::Get { key: b"k".to_vec() },
            OpWithSeqs::Get { key: b"k".to_vec() },
        ),
        (
            Op::Put {
                key: b"key:000000012345".to_vec(),
                value: value.clone(),
                ttl_ms: Some(60_000),
            },
            OpWithSeqs::Put {
                key: b"key:000000012345".to_vec(),
                value,
                ttl_ms: Some(60_000),
            },
        ),
        (
            Op::Put {
                key: Vec::new(),
                value: Vec::new(),
                ttl_ms: None,
            },
            OpWithSeqs::Put {
                key: Vec::new(),
                value: Vec::new(),
                ttl_ms: None,
            },
        ),
    ];
    for (op, before) in pairs {
        let bytes = codec::encode(&before);
        assert_eq!(codec::encode(&op), bytes, "{op:?} encodes differently");
        let decoded: Op = codec::decode(&bytes, codec::ENTRY_LIMIT).expect("decodes");
        assert_eq!(decoded, op);
        let json = serde_json::to_string(&op).expect("to JSON");
        assert_eq!(json, serde_json::to_string(&before).expect("to JSON"));
        assert_eq!(serde_json::from_str::<Op>(&json).expect("from JSON"), op);
    }
}
