//! The data directory's owner: `data_dir/IDENTITY` names the cluster and
//! the node that created the directory. A node refuses a directory that
//! belongs to another node or cluster, or that holds replica state with no
//! identity (something else wrote it), before it touches any file there.
//!
//! ```text
//!   data_dir/
//!     IDENTITY          cluster_id = "..."  node_id = N
//!     controller/       the controller replica's Raft log and snapshot
//!     data/             the data replica's Raft log and snapshot
//! ```

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const IDENTITY_FILE_NAME: &str = "IDENTITY";
pub const CONTROLLER_DIR_NAME: &str = "controller";
pub const DATA_DIR_NAME: &str = "data";
/// The data replica's disk tier files (`[disk_tier]`): a cache of its
/// state, cleared when the replica starts.
pub const DISK_DIR_NAME: &str = "disk";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    cluster_id: String,
    node_id: u64,
}

/// Why a data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "data directory {dir} belongs to node {found_node} of cluster {found_cluster:?}, \
         not node {node_id} of cluster {cluster_id:?}; refusing to start"
    )]
    Foreign {
        dir: PathBuf,
        found_cluster: String,
        found_node: u64,
        cluster_id: String,
        node_id: u64,
    },
    #[error(
        "data directory {dir} holds replica state but no {IDENTITY_FILE_NAME} file; \
         refusing to start (point data_dir at this node's own directory)"
    )]
    Unowned { dir: PathBuf },
    #[error("data directory {dir}: {IDENTITY_FILE_NAME} is unreadable: {detail}")]
    Corrupt { dir: PathBuf, detail: String },
    #[error("data directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Claims `dir` for `(cluster_id, node_id)`: creates it and its identity
/// file if new; checks the identity if not.
pub async fn claim(dir: &Path, cluster_id: &str, node_id: u64) -> Result<(), IdentityError> {
    let io_error = |source| IdentityError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let path = dir.join(IDENTITY_FILE_NAME);
    match files::read(&path).await.map_err(io_error)? {
        Some(bytes) => {
            let text = String::from_utf8(bytes).map_err(|error| IdentityError::Corrupt {
                dir: dir.to_path_buf(),
                detail: error.to_string(),
            })?;
            let found: Identity =
                toml::from_str(&text).map_err(|error| IdentityError::Corrupt {
                    dir: dir.to_path_buf(),
                    detail: error.message().to_string(),
                })?;
            if found.cluster_id != cluster_id || found.node_id != node_id {
                return Err(IdentityError::Foreign {
                    dir: dir.to_path_buf(),
                    found_cluster: found.cluster_id,
                    found_node: found.node_id,
                    cluster_id: cluster_id.to_string(),
                    node_id,
                });
            }
            Ok(())
        }
        None => {
            for name in [CONTROLLER_DIR_NAME, DATA_DIR_NAME] {
                if files::exists(&dir.join(name)).await {
                    return Err(IdentityError::Unowned {
                        dir: dir.to_path_buf(),
                    });
                }
            }
            files::create_dir_all(dir).await.map_err(io_error)?;
            let identity = Identity {
                cluster_id: cluster_id.to_string(),
                node_id,
            };
            let text = toml::to_string(&identity)
                .map_err(|error| io_error(io::Error::other(error.to_string())))?;
            files::write_durably(&path, text.as_bytes())
                .await
                .map_err(io_error)
        }
    }
}

/// The file operations identity needs, in each world.
#[cfg(not(madsim))]
mod files {
    use std::io::{self, Write};
    use std::path::Path;

    // Startup only, before the node serves anything: a few small files, so
    // blocking the calling thread briefly is acceptable.
    pub async fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub async fn exists(path: &Path) -> bool {
        path.exists()
    }

    pub async fn create_dir_all(dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    pub async fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
        let temporary = path.with_extension("tmp");
        {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&temporary, path)?;
        let parent = path.parent().unwrap_or(Path::new("."));
        std::fs::File::open(parent)?.sync_all()
    }
}

#[cfg(madsim)]
mod files {
    use std::io;
    use std::path::Path;

    pub async fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
        match madsim::fs::read(path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// madsim's disk is flat (no directories): a replica directory "exists"
    /// once its Raft hard state file does.
    pub async fn exists(path: &Path) -> bool {
        madsim::fs::metadata(path.join(raft::storage::HARD_STATE_FILE_NAME))
            .await
            .is_ok()
    }

    pub async fn create_dir_all(_dir: &Path) -> io::Result<()> {
        Ok(())
    }

    pub async fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
        let file = madsim::fs::File::create(path).await?;
        file.write_all_at(bytes, 0).await?;
        file.sync_all().await
    }
}
