//! The daemon's container records: one redb table at `<data-root>/engine.redb`, container
//! ID -> JSON record (name, image, config, host config, state, log path, restart count).

use std::path::{Path, PathBuf};

use api::types::{ContainerConfig, HostConfig};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::Error;

const CONTAINERS: TableDefinition<&str, &str> = TableDefinition::new("containers");

/// A container's lifecycle state as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StateRecord {
    /// `created`, `running`, `paused`, `restarting`, `exited`, `dead`.
    pub status: String,
    /// The init's host pid while running.
    pub pid: i64,
    /// Last exit code.
    pub exit_code: i64,
    /// RFC 3339, or Docker's zero time.
    pub started_at: String,
    /// RFC 3339, or Docker's zero time.
    pub finished_at: String,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
    /// Why the last start failed.
    pub error: String,
}

/// One container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// Creation time, seconds since the epoch.
    pub created_unix: i64,
    /// The image as asked for.
    pub image: String,
    /// The image ID.
    pub image_id: String,
    /// The process' path and arguments.
    pub path: String,
    /// Arguments.
    pub args: Vec<String>,
    /// As created.
    pub config: ContainerConfig,
    /// As created.
    pub host_config: HostConfig,
    /// Lifecycle.
    pub state: StateRecord,
    /// The json-file log.
    pub log_path: PathBuf,
    /// Has a terminal.
    pub tty: bool,
    /// Restarts done by the daemon.
    pub restart_count: i64,
}

/// The open table.
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens (creating) the store.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let err = |m: String| Error::Store {
            path: path.to_path_buf(),
            message: m,
        };
        let db = Database::create(path).map_err(|e| err(e.to_string()))?;
        let tx = db.begin_write().map_err(|e| err(e.to_string()))?;
        tx.open_table(CONTAINERS).map_err(|e| err(e.to_string()))?;
        tx.commit().map_err(|e| err(e.to_string()))?;
        Ok(Store {
            db,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Store {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Every record (unreadable ones are reported and skipped).
    pub fn load_all(&self) -> Result<Vec<ContainerRecord>, Error> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(CONTAINERS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            match serde_json::from_str::<ContainerRecord>(v.value()) {
                Ok(r) => out.push(r),
                Err(e) => eprintln!(
                    "berth daemon: warning: skipping unreadable record of container {}: {e}",
                    k.value()
                ),
            }
        }
        Ok(out)
    }

    /// Writes a record.
    pub fn put(&self, c: &ContainerRecord) -> Result<(), Error> {
        let text = serde_json::to_string(c).map_err(|e| self.err(e))?;
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(CONTAINERS).map_err(|e| self.err(e))?;
            t.insert(c.id.as_str(), text.as_str())
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Deletes a record.
    pub fn delete(&self, id: &str) -> Result<(), Error> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(CONTAINERS).map_err(|e| self.err(e))?;
            t.remove(id).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

impl Store {
    /// The database, for other modules' tables (networks).
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }
}
