//! [`Router`]: openraft's network in one process. A request is handed
//! to the target node's [`Raft`] by a direct call (no encoding), as our
//! `LocalNetwork` hands ours to `RaftNode::handle_message`.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::{Arc, RwLock};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft, RaftNetwork, RaftNetworkFactory};

use super::{NodeId, TypeConfig};

/// The nodes by id. Clones share them.
#[derive(Clone, Default)]
pub struct Router {
    nodes: Arc<RwLock<BTreeMap<NodeId, Raft<TypeConfig>>>>,
}

impl Router {
    /// Makes `raft` reachable as `id`.
    pub fn register(&self, id: NodeId, raft: Raft<TypeConfig>) {
        self.nodes
            .write()
            .expect("router lock poisoned")
            .insert(id, raft);
    }
}

/// One node's requests to `target`.
pub struct Connection {
    target: NodeId,
    router: Router,
}

impl Connection {
    /// The target's node, looked up per request as our `LocalNetwork`
    /// does.
    fn target_node(&self) -> Option<Raft<TypeConfig>> {
        self.router
            .nodes
            .read()
            .expect("router lock poisoned")
            .get(&self.target)
            .cloned()
    }

    fn unreachable<E: Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        let error = std::io::Error::other(format!("node {} not registered", self.target));
        RPCError::Unreachable(Unreachable::new(&error))
    }
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            target,
            router: self.clone(),
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.target_node()
            .ok_or_else(|| self.unreachable())?
            .append_entries(request)
            .await
            .map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.target_node()
            .ok_or_else(|| self.unreachable())?
            .install_snapshot(request)
            .await
            .map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.target_node()
            .ok_or_else(|| self.unreachable())?
            .vote(request)
            .await
            .map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
    }
}
