//! `POST /containers/{id}/update`: new resource limits and restart policy (the policy is
//! handed to [`super::restart::update`]). The limits are
//! merged into the container's stored `HostConfig` (zero fields leave the old value, as
//! dockerd does), written into the bundle's config.json (so the next start applies them)
//! and, when the container runs, applied live through the runtime's cgroup
//! [`runtime::cgroups::Manager::set`].

use std::path::Path;
use std::sync::Arc;

use api::backend::ApiResult;
use api::types::{ContainerUpdateRequest, ContainerUpdateResponse, Resources};
use api::ApiError;
use serde_json::{json, Value};

use super::containers::{is_running, lookup, update as update_record};
use super::{blocking, Inner};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// The smallest memory limit Docker accepts.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Merges the non-zero fields of `new` into `old`; checks them as dockerd does.
fn merge(old: &Resources, new: &Resources) -> ApiResult<Resources> {
    let mut r = old.clone();
    if new.nano_cpus > 0 && new.cpu_period > 0 {
        return Err(ApiError::InvalidParameter(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
        ));
    }
    if new.nano_cpus > 0 && new.cpu_quota > 0 {
        return Err(ApiError::InvalidParameter(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set".into(),
        ));
    }
    if new.memory != 0 {
        if new.memory > 0 && new.memory < MIN_MEMORY {
            return Err(ApiError::InvalidParameter(
                "Minimum memory limit allowed is 6MB".into(),
            ));
        }
        if new.memory_swap == 0 && old.memory_swap > 0 && new.memory > old.memory_swap {
            return Err(ApiError::InvalidParameter(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into(),
            ));
        }
        r.memory = new.memory;
    }
    if new.memory_swap != 0 {
        if new.memory_swap > 0 && r.memory > 0 && new.memory_swap < r.memory {
            return Err(ApiError::InvalidParameter(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ));
        }
        r.memory_swap = new.memory_swap;
    }
    if new.memory_reservation != 0 {
        r.memory_reservation = new.memory_reservation;
    }
    if new.cpu_shares != 0 {
        r.cpu_shares = new.cpu_shares;
    }
    if new.nano_cpus != 0 {
        r.nano_cpus = new.nano_cpus;
        r.cpu_quota = 0;
        r.cpu_period = 0;
    }
    if new.cpu_quota != 0 {
        r.cpu_quota = new.cpu_quota;
        r.nano_cpus = 0;
    }
    if new.cpu_period != 0 {
        r.cpu_period = new.cpu_period;
        r.nano_cpus = 0;
    }
    if !new.cpuset_cpus.is_empty() {
        r.cpuset_cpus = new.cpuset_cpus.clone();
    }
    if !new.cpuset_mems.is_empty() {
        r.cpuset_mems = new.cpuset_mems.clone();
    }
    if new.blkio_weight != 0 {
        if !(10..=1000).contains(&new.blkio_weight) {
            return Err(ApiError::InvalidParameter(
                "Range of blkio weight is from 10 to 1000".into(),
            ));
        }
        r.blkio_weight = new.blkio_weight;
    }
    if let Some(p) = new.pids_limit.filter(|p| *p != 0) {
        r.pids_limit = Some(p);
    }
    Ok(r)
}

/// The OCI `linux.resources` for the fields an update may change (only what is set).
fn oci_resources(r: &Resources, changed: &Resources) -> Value {
    let mut out = json!({});
    if changed.memory != 0 || changed.memory_swap != 0 || changed.memory_reservation != 0 {
        let mut m = json!({});
        if r.memory != 0 {
            m["limit"] = r.memory.into();
        }
        if r.memory_swap != 0 {
            m["swap"] = r.memory_swap.into();
        }
        if r.memory_reservation != 0 {
            m["reservation"] = r.memory_reservation.into();
        }
        out["memory"] = m;
    }
    let mut cpu = json!({});
    if changed.cpu_shares != 0 {
        cpu["shares"] = r.cpu_shares.into();
    }
    if changed.nano_cpus != 0 {
        cpu["period"] = 100_000.into();
        cpu["quota"] = (r.nano_cpus / 10_000).into();
    }
    if changed.cpu_quota != 0 {
        cpu["quota"] = r.cpu_quota.into();
    }
    if changed.cpu_period != 0 {
        cpu["period"] = r.cpu_period.into();
    }
    if !changed.cpuset_cpus.is_empty() {
        cpu["cpus"] = r.cpuset_cpus.clone().into();
    }
    if !changed.cpuset_mems.is_empty() {
        cpu["mems"] = r.cpuset_mems.clone().into();
    }
    if cpu.as_object().is_some_and(|o| !o.is_empty()) {
        out["cpu"] = cpu;
    }
    if changed.blkio_weight != 0 {
        out["blockIO"] = json!({"weight": r.blkio_weight});
    }
    if let Some(p) = changed.pids_limit.filter(|p| *p != 0) {
        out["pids"] = json!({"limit": if p < 0 { -1 } else { p }});
    }
    out
}

/// Merges `res` into the bundle's config.json `linux.resources`.
fn write_bundle(dir: &Path, res: &Value) -> ApiResult<()> {
    let p = dir.join("config.json");
    let mut spec: Value =
        serde_json::from_slice(&std::fs::read(&p).map_err(internal)?).map_err(internal)?;
    let cur = &mut spec["linux"]["resources"];
    if !cur.is_object() {
        *cur = json!({});
    }
    if let (Some(cur), Some(new)) = (cur.as_object_mut(), res.as_object()) {
        for (k, v) in new {
            match (cur.get_mut(k), v) {
                (Some(Value::Object(c)), Value::Object(n)) => {
                    for (k2, v2) in n {
                        c.insert(k2.clone(), v2.clone());
                    }
                }
                _ => {
                    cur.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let tmp = dir.join("config.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&spec).map_err(internal)?).map_err(internal)?;
    std::fs::rename(&tmp, &p).map_err(internal)
}

/// `POST /containers/{id}/update`.
pub async fn update(
    inner: &Arc<Inner>,
    key: &str,
    req: ContainerUpdateRequest,
) -> ApiResult<ContainerUpdateResponse> {
    let c = lookup(inner, key)?;
    if let Some(rp) = &req.restart_policy {
        if c.host_config.auto_remove && !matches!(rp.name.as_str(), "" | "no") {
            return Err(ApiError::InvalidParameter(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            ));
        }
        let mut hc = c.host_config.clone();
        hc.restart_policy = Some(rp.clone());
        super::restart::validate(&hc)?;
    }
    let merged = merge(&c.host_config.resources, &req.resources)?;
    let oci = oci_resources(&merged, &req.resources);
    let running = is_running(&c);
    let dir = crate::bundle::dir(&inner.opts.data_root, &c.id);
    let id = c.id.clone();
    let oci2 = oci.clone();
    blocking(move || {
        if running && oci2.as_object().is_some_and(|o| !o.is_empty()) {
            let r: oci_spec::runtime::LinuxResources =
                serde_json::from_value(oci2.clone()).map_err(internal)?;
            let m = super::stats::manager(&id)?;
            m.set(&r).map_err(|e| {
                ApiError::InvalidParameter(format!("Cannot update container {id}: {e}"))
            })?;
        }
        write_bundle(&dir, &oci2)
    })
    .await?;
    let rp = req.restart_policy.clone();
    update_record(inner, &c.id, |c| {
        c.host_config.resources = merged;
        if let Some(rp) = rp {
            c.host_config.restart_policy = Some(rp);
        }
    })?;
    super::containers::publish(inner, &c.id, "update", &[]);
    Ok(ContainerUpdateResponse { warnings: None })
}
