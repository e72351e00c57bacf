//! The one place kvraft draws randomness (ids, not behaviour), through the
//! runtime seam: madsim's seeded RNG in simulation, the OS otherwise.

#[cfg(madsim)]
pub(crate) fn random_u64() -> u64 {
    madsim::rand::random()
}

#[cfg(not(madsim))]
pub(crate) fn random_u64() -> u64 {
    use rand::RngCore;
    rand::rngs::OsRng.next_u64()
}
