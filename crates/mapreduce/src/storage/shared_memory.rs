//! [`SharedMemoryDir`]: the simulation's shared "network filesystem".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{JobDir, StorageError, check_name};

/// An in-memory directory shared by every clone: one per simulated test,
/// cloned into every node, as if all nodes mounted the same NFS export.
///
/// Atomicity: [`JobDir::write_atomic`] inserts the complete contents under
/// the final name in one step under a lock. A madsim node can only be
/// killed at an `await`, and this call has none, so a killed worker either
/// published the whole file or nothing; there is no partial state to model.
/// (The real [`super::LocalDir`] gets the same guarantee from temp + rename.)
///
/// Contents outlive node kills and restarts: they belong to the test, not
/// to a node, just as files on a shared filesystem outlive a crashed client.
#[derive(Clone, Default)]
pub struct SharedMemoryDir {
    files: Arc<Mutex<BTreeMap<String, Arc<Vec<u8>>>>>,
}

impl SharedMemoryDir {
    pub fn new() -> SharedMemoryDir {
        SharedMemoryDir::default()
    }

    fn files(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Vec<u8>>>> {
        // Each critical section is one map operation, so a poisoned lock
        // still guards consistent contents.
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every file whose name starts with `prefix`, with its contents (for
    /// tests that compare directories).
    pub fn snapshot(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        self.files()
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, bytes)| (name.clone(), bytes.as_ref().clone()))
            .collect()
    }

    /// Total bytes stored.
    pub fn size_bytes(&self) -> usize {
        self.files().values().map(|bytes| bytes.len()).sum()
    }
}

impl JobDir for SharedMemoryDir {
    fn read(&self, name: &str) -> Result<Vec<u8>, StorageError> {
        match self.files().get(name) {
            Some(bytes) => Ok(bytes.as_ref().clone()),
            None => Err(StorageError::NotFound {
                name: name.to_string(),
            }),
        }
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        check_name(name)?;
        self.files()
            .insert(name.to_string(), Arc::new(bytes.to_vec()));
        Ok(())
    }

    /// Nothing to do: the shared memory is the durable medium here (it
    /// outlives every node).
    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        // BTreeMap iteration is sorted, as the trait promises.
        Ok(self
            .files()
            .keys()
            .filter(|name| name.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn remove(&self, name: &str) -> Result<(), StorageError> {
        match self.files().remove(name) {
            Some(_) => Ok(()),
            None => Err(StorageError::NotFound {
                name: name.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_files_and_names_are_checked() {
        let dir = SharedMemoryDir::new();
        let other_node = dir.clone();
        dir.write_atomic("mr-0-1", b"abc").unwrap();
        assert_eq!(other_node.read("mr-0-1").unwrap(), b"abc");
        dir.write_atomic("mr-0-1", b"new").unwrap();
        assert_eq!(other_node.read("mr-0-1").unwrap(), b"new");
        dir.write_atomic("mr-out-0", b"").unwrap();
        assert_eq!(other_node.list("mr-").unwrap(), vec!["mr-0-1", "mr-out-0"]);
        assert_eq!(other_node.list("mr-out").unwrap(), vec!["mr-out-0"]);
        other_node.remove("mr-0-1").unwrap();
        assert!(matches!(
            dir.read("mr-0-1"),
            Err(StorageError::NotFound { .. })
        ));
        assert!(dir.remove("mr-0-1").is_err());
        for bad in ["", ".hidden", "a/b"] {
            assert!(matches!(
                dir.write_atomic(bad, b"x"),
                Err(StorageError::InvalidName { .. })
            ));
        }
    }
}
