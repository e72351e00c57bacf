//! Consistent hash ring: balance, minimal movement, weights, determinism.

use std::collections::BTreeMap;

use cache::ring::{HashRing, RingError};

const KEYS: u64 = 200_000;

fn ring_of(nodes: u64, vnodes: u32) -> HashRing<u64> {
    let mut ring = HashRing::new(vnodes);
    for node in 0..nodes {
        ring.add_node(node, 1).expect("valid weight");
    }
    ring
}

fn owners(ring: &HashRing<u64>) -> Vec<u64> {
    (0..KEYS)
        .map(|key| *ring.node_for(&key).expect("non-empty ring"))
        .collect()
}

fn load(owners: &[u64]) -> BTreeMap<u64, u64> {
    let mut load = BTreeMap::new();
    for owner in owners {
        *load.entry(*owner).or_insert(0) += 1;
    }
    load
}

#[test]
fn most_loaded_of_ten_nodes_is_within_115_percent_of_mean() {
    let load = load(&owners(&ring_of(10, 200)));
    let most = *load.values().max().expect("ten nodes") as f64;
    let ratio = most / (KEYS as f64 / 10.0);
    println!("max/mean load with 10 nodes x 200 vnodes over {KEYS} keys: {ratio:.4}");
    assert!(ratio <= 1.15, "most-loaded node holds {ratio:.4}x the mean");
}

#[test]
fn adding_or_removing_one_of_n_nodes_moves_about_one_nth() {
    let nodes = 10;
    let ring = ring_of(nodes, 200);
    let before = owners(&ring);

    let mut grown = ring.clone();
    grown.add_node(nodes, 1).expect("valid weight");
    let after_add = owners(&grown);
    let moved_add = before
        .iter()
        .zip(&after_add)
        .filter(|(old, new)| old != new)
        .count();
    assert!(
        after_add
            .iter()
            .zip(&before)
            .all(|(new, old)| new == old || *new == nodes),
        "keys may only move to the new node"
    );
    let fraction_add = moved_add as f64 / KEYS as f64;

    let mut shrunk = ring.clone();
    assert!(shrunk.remove_node(&3));
    let after_remove = owners(&shrunk);
    let moved_remove = before
        .iter()
        .zip(&after_remove)
        .filter(|(old, new)| old != new)
        .count();
    assert!(
        before
            .iter()
            .zip(&after_remove)
            .all(|(old, new)| old == new || *old == 3),
        "only the removed node's keys may move"
    );
    let fraction_remove = moved_remove as f64 / KEYS as f64;

    println!(
        "moved on add: {fraction_add:.4} (ideal 1/11), on remove: {fraction_remove:.4} (ideal 1/10)"
    );
    assert!(
        (fraction_add - 1.0 / 11.0).abs() < 0.03,
        "add moved {fraction_add}"
    );
    assert!(
        (fraction_remove - 1.0 / 10.0).abs() < 0.03,
        "remove moved {fraction_remove}"
    );
}

#[test]
fn weights_scale_ownership() {
    let mut ring = HashRing::new(200);
    ring.add_node("light".to_owned(), 1).expect("valid");
    ring.add_node("heavy".to_owned(), 3).expect("valid");
    let heavy = (0..KEYS)
        .filter(|key| ring.node_for(key).map(String::as_str) == Some("heavy"))
        .count();
    let share = heavy as f64 / KEYS as f64;
    assert!((share - 0.75).abs() < 0.05, "heavy node owns {share}");
    assert_eq!(
        ring.add_node("bad".to_owned(), 0),
        Err(RingError::BadWeight { weight: 0 })
    );
}

#[test]
fn placement_is_independent_of_insertion_order() {
    let forward = ring_of(5, 50);
    let mut backward = HashRing::new(50);
    for node in (0..5).rev() {
        backward.add_node(node, 1).expect("valid");
    }
    assert_eq!(owners(&forward), owners(&backward));
    assert_eq!(HashRing::<u64>::new(10).node_for(&1u64), None);
}
