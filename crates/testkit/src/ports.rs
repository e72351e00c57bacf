//! Free loopback ports for test clusters and benches.
//!
//! Ports come from `PORT_MIN..PORT_END`, below the kernel's ephemeral range
//! (32768 and up on Linux): a node restarted on its ports must not find
//! one taken meanwhile by some outgoing connection, which picks its local
//! port from the ephemeral range. Test binaries run in parallel (and the
//! tests inside one binary too), so:
//!
//! * within one process, consecutive blocks are `BLOCK_STRIDE` ports apart
//!   and never overlap (a process-wide counter);
//! * different processes start at different places (from the process id);
//! * every port of a block is bound once before it is handed out, so a
//!   block someone holds now is skipped.
//!
//! Between the check and the node binding its port another process could
//! still take one; the wide range and the spread starts make that rare.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};

/// First port handed out.
pub const PORT_MIN: u16 = 10_000;
/// Past the last port handed out (below the ephemeral range's 32768).
pub const PORT_END: u16 = 32_000;
/// Distance between consecutive blocks of one process: the largest block.
pub const BLOCK_STRIDE: u16 = 100;
/// Blocks tried before giving up.
const ATTEMPTS_MAX: u64 = 200;

static NEXT_BLOCK: AtomicU64 = AtomicU64::new(0);

/// A base port `base` such that `base..base + span` were all free just now.
///
/// # Panics
/// If `span` is larger than [`BLOCK_STRIDE`], or no free block is found in
/// `ATTEMPTS_MAX` tries.
pub fn free_port_block(span: u16) -> u16 {
    assert!(
        span > 0 && span <= BLOCK_STRIDE,
        "a block of {span} ports: 1 to {BLOCK_STRIDE}"
    );
    let blocks = u64::from((PORT_END - PORT_MIN) / BLOCK_STRIDE);
    // Spread the processes' starting blocks over the range.
    let start = u64::from(std::process::id()).wrapping_mul(7919) % blocks;
    for _ in 0..ATTEMPTS_MAX {
        let block = (start + NEXT_BLOCK.fetch_add(1, Ordering::Relaxed)) % blocks;
        let base = PORT_MIN + u16::try_from(block).expect("fewer blocks than ports") * BLOCK_STRIDE;
        if (base..base + span).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
            return base;
        }
    }
    panic!("no free block of {span} loopback ports in {ATTEMPTS_MAX} tries");
}

/// `count` free ports, consecutive (one block).
pub fn free_ports(count: usize) -> Vec<u16> {
    let span = u16::try_from(count).expect("a few ports");
    let base = free_port_block(span);
    (base..base + span).collect()
}

/// `count` free loopback addresses, consecutive ports (one block): a
/// group's `peer_addrs`.
pub fn free_addrs(count: usize) -> Vec<SocketAddr> {
    free_ports(count)
        .into_iter()
        .map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_one_process_never_overlap_and_stay_below_the_ephemeral_range() {
        let first = free_ports(10);
        let second = free_ports(10);
        assert!(first.iter().all(|port| !second.contains(port)));
        for port in first.iter().chain(&second) {
            assert!((PORT_MIN..PORT_END).contains(port), "port {port}");
        }
        let addrs = free_addrs(3);
        assert_eq!(addrs.len(), 3);
        assert!(addrs.iter().all(|addr| addr.ip().is_loopback()));
        assert_eq!(addrs[1].port(), addrs[0].port() + 1);
    }
}
