//! Raft messages over labrpc: one method, `raft.Message`, whose reply is the
//! core's answer (None if the node refused the message or is gone).

use crate::core::Message;

impl labrpc::Rpc for Message {
    const NAME: &'static str = "raft.Message";
    type Reply = Option<Message>;
}
