//! The bounded LRU cache of open tenant connections, one per database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use moka::sync::Cache;
use parking_lot::Mutex;

use crate::background::Background;
use crate::conn::{self, Conn};
use crate::{DbLocation, StorageConfig, StorageError};

/// A cached connection; the mutex serializes use of the one connection. It is an async
/// mutex so that requests wait for their turn on the async runtime (`Storage` locks it
/// before taking a blocking thread): waiters never hold threads of the blocking pool.
/// Code already on a blocking or background thread takes it with `blocking_lock`.
pub(crate) type Handle = Arc<tokio::sync::Mutex<Conn>>;

/// Built template images: template -> ((schema_version, user_version), image file).
pub(crate) type ImageIndex = std::collections::HashMap<DbLocation, ((i64, i64), PathBuf)>;

/// Shared state behind `Storage`.
pub(crate) struct Inner {
    /// The configuration.
    pub cfg: StorageConfig,
    /// `root/tenants`.
    pub tenants: PathBuf,
    /// `root/images`: template schema images.
    pub images: PathBuf,
    /// Open connections, LRU-bounded by `cfg.max_open`.
    pub handles: Cache<DbLocation, Handle>,
    /// Template images by template: (schema_version, user_version, file).
    pub image_index: Mutex<ImageIndex>,
    /// Lower-priority threads for bulk work.
    pub background: Background,
}

impl Inner {
    /// Creates the directory layout.
    pub(crate) fn new(cfg: StorageConfig) -> Result<Self, StorageError> {
        let tenants = cfg.root.join("tenants");
        let images = cfg.root.join("images");
        std::fs::create_dir_all(&tenants)?;
        std::fs::create_dir_all(&images)?;
        let handles = Cache::builder().max_capacity(cfg.max_open).build();
        let background = Background::new(
            cfg.background_threads,
            cfg.background_nice,
            cfg.background_policy,
        );
        Ok(Self {
            background,
            cfg,
            tenants,
            images,
            handles,
            image_index: Mutex::default(),
        })
    }

    /// `root/tenants/<ns>/<db>.db`.
    pub(crate) fn path(&self, loc: &DbLocation) -> PathBuf {
        self.tenants
            .join(loc.namespace_id())
            .join(format!("{}.db", loc.database_id()))
    }

    /// The cached connection to `loc`, opening it on first use (`NotFound`
    /// when the file is missing). Concurrent first uses open it once.
    pub(crate) fn handle(&self, loc: &DbLocation) -> Result<Handle, StorageError> {
        if let Some(h) = self.handles.get(loc) {
            return Ok(h);
        }
        let path = self.path(loc);
        self.handles
            .try_get_with(loc.clone(), || {
                conn::open(&path, &self.cfg, false).map(|c| Arc::new(tokio::sync::Mutex::new(c)))
            })
            .map_err(|e| e.duplicate())
    }

    /// Drops the cached connection, waiting for a statement in flight (on a blocking thread).
    pub(crate) fn evict(&self, loc: &DbLocation) {
        if let Some(h) = self.handles.remove(loc) {
            drop(h.blocking_lock());
        }
    }
}

/// Removes `path`, treating a missing file as success.
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// `path` with `suffix` appended to the file name (`-wal`, `-shm`).
pub(crate) fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
