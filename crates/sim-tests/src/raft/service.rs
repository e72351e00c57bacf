//! [`Service`]: the tester's stand-in for a replicated service, checking
//! every `ApplyMsg` every server delivers (6.5840's `applier`,
//! `applierSnap`, `checkLogs` and `ingestSnap`).
//!
//! - State Machine Safety at the service (Raft paper §5.4.3): the first
//!   server to apply an index fixes its `(term, command)`; every other
//!   server must apply the same there.
//! - In order: a server applies index `last_applied + 1` next; a snapshot
//!   moves it forward only (the lab does not check that; we do, because a
//!   service moving backwards would serve stale state).
//! - Snapshots: a server's snapshot holds `(index, hash of the commands
//!   1..=index)`; whoever installs one must find exactly the commands
//!   committed so far.
//!
//! It survives crashes (it lives outside the simulated nodes): a restarted
//! server starts over from `last_applied = 0`, as the lab's `start1` does,
//! and must be brought forward by its snapshot and log.

/// The state of one server's service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerState {
    pub last_applied: u64,
    /// Hash of the commands 1..=last_applied, in order.
    pub hash: u64,
}

/// A snapshot of the tester's service: `(last_applied, hash)`.
pub const SNAPSHOT_SIZE_BYTES: usize = 16;

#[derive(Debug)]
pub struct Service {
    /// `(server, term, command)` of each index, as first applied (index 1
    /// at position 0).
    log: Vec<(usize, u64, Vec<u8>)>,
    /// `prefix_hash[i]`: the service hash after applying indexes 1..=i+1.
    prefix_hash: Vec<u64>,
    servers: Vec<ServerState>,
}

/// The service hash after applying `command` at `index` on top of `hash`.
pub fn mix(hash: u64, index: u64, command: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut mixed = (hash ^ 0xcbf2_9ce4_8422_2325 ^ index).wrapping_mul(PRIME);
    for &byte in command {
        mixed = (mixed ^ u64::from(byte)).wrapping_mul(PRIME);
    }
    mixed
}

impl Service {
    pub fn new(servers: usize) -> Service {
        Service {
            log: Vec::new(),
            prefix_hash: Vec::new(),
            servers: vec![ServerState::default(); servers],
        }
    }

    /// The server restarted: its service starts empty (the lab's `start1`).
    pub fn restart(&mut self, server: usize) {
        self.servers[server] = ServerState::default();
    }

    pub fn server(&self, server: usize) -> ServerState {
        self.servers[server]
    }

    /// `server` applies `command` at `index` (from `term`).
    pub fn apply_command(
        &mut self,
        server: usize,
        index: u64,
        term: u64,
        command: &[u8],
    ) -> Result<(), String> {
        let state = self.servers[server];
        if index != state.last_applied + 1 {
            return Err(format!(
                "server {server} apply out of order: expected index {}, got {index}",
                state.last_applied + 1
            ));
        }
        let position = usize::try_from(index - 1).expect("index fits in memory");
        match self.log.get(position) {
            Some((first, first_term, first_command)) => {
                if *first_term != term || first_command != command {
                    return Err(format!(
                        "state machine safety (§5.4.3): commit index={index} server={server} \
                         applied term {term} {} != server={first} term {first_term} {}",
                        describe(command),
                        describe(first_command)
                    ));
                }
            }
            None => {
                assert_eq!(
                    position,
                    self.log.len(),
                    "the applied log has no gap: server {server} applied {} in order",
                    state.last_applied
                );
                self.log.push((server, term, command.to_vec()));
                self.prefix_hash.push(mix(state.hash, index, command));
            }
        }
        self.servers[server] = ServerState {
            last_applied: index,
            hash: mix(state.hash, index, command),
        };
        Ok(())
    }

    /// `server` loads a snapshot through `index` (from `term`) holding `data`.
    pub fn apply_snapshot(
        &mut self,
        server: usize,
        index: u64,
        term: u64,
        data: &[u8],
    ) -> Result<(), String> {
        let (data_index, data_hash) = decode_snapshot(data).ok_or_else(|| {
            format!(
                "server {server}: snapshot through {index} holds {} bytes, not a tester snapshot",
                data.len()
            )
        })?;
        if data_index != index {
            return Err(format!(
                "server {server}: snapshot delivered as through index {index} holds the state \
                 through {data_index}"
            ));
        }
        let state = self.servers[server];
        if index <= state.last_applied {
            return Err(format!(
                "server {server}: snapshot through {index} would move its service back from \
                 {}",
                state.last_applied
            ));
        }
        let position = usize::try_from(index - 1).expect("index fits in memory");
        let Some(&(_, committed_term, _)) = self.log.get(position) else {
            return Err(format!(
                "server {server}: snapshot through {index}, but only {} indexes were ever applied",
                self.log.len()
            ));
        };
        if committed_term != term || self.prefix_hash[position] != data_hash {
            return Err(format!(
                "snapshot consistency (§7): server {server}'s snapshot through {index} (term \
                 {term}) does not hold the commands applied at 1..={index} (term {committed_term})"
            ));
        }
        self.servers[server] = ServerState {
            last_applied: index,
            hash: data_hash,
        };
        Ok(())
    }

    /// The snapshot `server`'s service would take now.
    pub fn snapshot_data(&self, server: usize) -> Vec<u8> {
        let state = self.servers[server];
        let mut data = state.last_applied.to_le_bytes().to_vec();
        data.extend_from_slice(&state.hash.to_le_bytes());
        data
    }

    /// 6.5840's `nCommitted`: how many servers have applied `index`, and
    /// the command there.
    pub fn n_committed(&self, index: u64) -> (usize, Option<&[u8]>) {
        let count = self
            .servers
            .iter()
            .filter(|state| state.last_applied >= index)
            .count();
        let command = usize::try_from(index)
            .ok()
            .and_then(|index| index.checked_sub(1))
            .and_then(|position| self.log.get(position))
            .map(|(_, _, command)| command.as_slice());
        (count, command.filter(|_| count > 0))
    }

    /// The command at each index 1..=len applied so far.
    pub fn applied_commands(&self) -> impl Iterator<Item = &[u8]> {
        self.log.iter().map(|(_, _, command)| command.as_slice())
    }

    pub fn max_applied_index(&self) -> u64 {
        self.log.len() as u64
    }
}

fn decode_snapshot(data: &[u8]) -> Option<(u64, u64)> {
    if data.len() != SNAPSHOT_SIZE_BYTES {
        return None;
    }
    let index = u64::from_le_bytes(data[0..8].try_into().ok()?);
    let hash = u64::from_le_bytes(data[8..16].try_into().ok()?);
    Some((index, hash))
}

/// A command for messages: its value if it is a tester integer, else its
/// length.
pub fn describe(command: &[u8]) -> String {
    match <[u8; 8]>::try_from(command) {
        Ok(bytes) => u64::from_le_bytes(bytes).to_string(),
        Err(_) => format!("<{} bytes>", command.len()),
    }
}
