//! The daemon's container records: a table of the daemon's one redb database (the image
//! store's `<data-root>/metadata.redb`, so images and containers share one transactional
//! store), container ID -> JSON record (name, image, config, host config, state, log path,
//! restart count). A pre-0.1 `engine.redb` is imported once and renamed `engine.redb.imported`.

use std::path::{Path, PathBuf};

use api::types::{ContainerConfig, HostConfig};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::Error;

const CONTAINERS: TableDefinition<&str, &str> = TableDefinition::new("engine_containers");
const VOLUMES: TableDefinition<&str, &str> = TableDefinition::new("volumes");

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
    /// Health-check state, for containers with a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<api::types::Health>,
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
    /// Stopped or killed by a user: its restart policy does not restart it.
    #[serde(default)]
    pub manually_stopped: bool,
    /// Its mounts (binds, volumes, tmpfs).
    pub mounts: Vec<super::volumes::MountRecord>,
}

/// The open table.
pub struct Store {
    db: std::sync::Arc<Database>,
    path: PathBuf,
}

impl Store {
    /// Opens the engine's tables in `db` (the file at `path`), importing the records of an
    /// older separate `legacy` database (`engine.redb`) if one exists.
    pub fn open(db: std::sync::Arc<Database>, path: &Path, legacy: &Path) -> Result<Store, Error> {
        let err = |m: String| Error::Store {
            path: path.to_path_buf(),
            message: m,
        };
        let tx = db.begin_write().map_err(|e| err(e.to_string()))?;
        tx.open_table(CONTAINERS).map_err(|e| err(e.to_string()))?;
        tx.open_table(VOLUMES).map_err(|e| err(e.to_string()))?;
        tx.commit().map_err(|e| err(e.to_string()))?;
        let s = Store {
            db,
            path: path.to_path_buf(),
        };
        if legacy.exists() {
            s.import_legacy(legacy)?;
        }
        Ok(s)
    }

    fn import_legacy(&self, legacy: &Path) -> Result<(), Error> {
        const OLD: TableDefinition<&str, &str> = TableDefinition::new("containers");
        let lerr = |m: String| Error::Store {
            path: legacy.to_path_buf(),
            message: m,
        };
        let old = Database::open(legacy).map_err(|e| lerr(e.to_string()))?;
        let rtx = old.begin_read().map_err(|e| lerr(e.to_string()))?;
        let mut rows = Vec::new();
        if let Ok(t) = rtx.open_table(OLD) {
            for row in t.iter().map_err(|e| lerr(e.to_string()))? {
                let (k, v) = row.map_err(|e| lerr(e.to_string()))?;
                rows.push((k.value().to_string(), v.value().to_string()));
            }
        }
        drop(rtx);
        drop(old);
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(CONTAINERS).map_err(|e| self.err(e))?;
            for (k, v) in &rows {
                t.insert(k.as_str(), v.as_str()).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        let done = legacy.with_extension("redb.imported");
        std::fs::rename(legacy, &done).map_err(|e| lerr(e.to_string()))
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

    /// Writes the record of `id` as `current` gives it while this write transaction holds
    /// the database (`None`: deletes it). Writers that change the in-memory record first and
    /// then call this leave the database with the newest state, whatever order their
    /// transactions run in (each reads the record only once it is the one writer), and a
    /// record removed from memory is never written back. `current` must not wait for a
    /// database write itself.
    pub fn sync(
        &self,
        id: &str,
        current: impl FnOnce() -> Result<Option<ContainerRecord>, String>,
    ) -> Result<(), Error> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(CONTAINERS).map_err(|e| self.err(e))?;
            match current().map_err(|e| self.err(e))? {
                Some(c) => {
                    let text = serde_json::to_string(&c).map_err(|e| self.err(e))?;
                    t.insert(id, text.as_str()).map_err(|e| self.err(e))?;
                }
                None => {
                    t.remove(id).map_err(|e| self.err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Every volume record (unreadable ones are reported and skipped).
    pub fn load_volumes(&self) -> Result<Vec<super::volumes::VolumeRecord>, Error> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(VOLUMES).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            match serde_json::from_str(v.value()) {
                Ok(r) => out.push(r),
                Err(e) => eprintln!(
                    "berth daemon: warning: skipping unreadable record of volume {}: {e}",
                    k.value()
                ),
            }
        }
        Ok(out)
    }

    /// Writes a volume record.
    pub fn put_volume(&self, v: &super::volumes::VolumeRecord) -> Result<(), Error> {
        let text = serde_json::to_string(v).map_err(|e| self.err(e))?;
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(VOLUMES).map_err(|e| self.err(e))?;
            t.insert(v.name.as_str(), text.as_str())
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Deletes a volume record.
    pub fn delete_volume(&self, name: &str) -> Result<(), Error> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = tx.open_table(VOLUMES).map_err(|e| self.err(e))?;
            t.remove(name).map_err(|e| self.err(e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_live_in_the_shared_database_and_legacy_files_are_imported() {
        let d = tempfile::tempdir().unwrap();
        let legacy = d.path().join("engine.redb");
        {
            let old = Database::create(&legacy).unwrap();
            let tx = old.begin_write().unwrap();
            {
                const OLD: TableDefinition<&str, &str> = TableDefinition::new("containers");
                let mut t = tx.open_table(OLD).unwrap();
                let rec = ContainerRecord {
                    id: "a".repeat(64),
                    name: "old".into(),
                    ..Default::default()
                };
                t.insert(
                    rec.id.as_str(),
                    serde_json::to_string(&rec).unwrap().as_str(),
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let path = d.path().join("metadata.redb");
        let db = std::sync::Arc::new(Database::create(&path).unwrap());
        let s = Store::open(db.clone(), &path, &legacy).unwrap();
        let all = s.load_all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, "old");
        assert!(!legacy.exists());
        assert!(d.path().join("engine.redb.imported").exists());
        s.sync(&"b".repeat(64), || {
            Ok(Some(ContainerRecord {
                id: "b".repeat(64),
                name: "new".into(),
                ..Default::default()
            }))
        })
        .unwrap();
        drop(s);
        // Reopened on the same database: both records, nothing imported twice.
        let s = Store::open(db, &path, &legacy).unwrap();
        assert_eq!(s.load_all().unwrap().len(), 2);
        s.sync(&"a".repeat(64), || Ok(None)).unwrap();
        assert_eq!(s.load_all().unwrap().len(), 1);
        // sync writes what the closure reads inside the transaction; None deletes.
        let b = "b".repeat(64);
        s.sync(&b, || {
            Ok(Some(ContainerRecord {
                id: b.clone(),
                name: "synced".into(),
                ..Default::default()
            }))
        })
        .unwrap();
        assert_eq!(s.load_all().unwrap()[0].name, "synced");
        assert!(s.sync(&b, || Err("poisoned".into())).is_err());
        assert_eq!(s.load_all().unwrap().len(), 1);
        s.sync(&b, || Ok(None)).unwrap();
        assert!(s.load_all().unwrap().is_empty());
    }
}
