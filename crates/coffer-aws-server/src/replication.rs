//! Secrets Manager's multi-Region operations, mapped onto Coffer's replica regions.
//!
//! An AWS Region here is a Coffer region this vault is paired with (`coffer region add`):
//! replicating a secret to it is `coffer secret replicate`, removing it is `coffer secret
//! remove-region`, and StopReplicationToReplica, called on the replica's own API as in
//! AWS, is `coffer secret promote`. A region that is not paired is AWS's "Invalid replica
//! region." A replica is read-only: every write through the API is refused as AWS refuses
//! it, naming the primary region (see `engine_errors`).

use std::collections::BTreeSet;

use coffer_aws::AwsError;
use coffer_core::service::{Request, Response};
use coffer_core::vault::replication::{RegionReplication, ReplicationStatus, SecretReplication};
use coffer_core::SecretDescription;
use serde_json::{json, Value};

use crate::arn;
use crate::call::Call;
use crate::params::Params;
use crate::secrets_manager::{allow, describe, resolve, unexpected};

/// One entry of `AddReplicaRegions`: a paired region and the key the copy is wrapped
/// under there (its default key when absent).
pub struct ReplicaRegion {
    pub region: String,
    pub key: Option<String>,
}

fn invalid_region(region: &str, why: &str) -> AwsError {
    AwsError::new(
        "InvalidParameterException",
        400,
        format!("Invalid replica region. {region:?} {why}"),
    )
}

/// Reads and checks `AddReplicaRegions` (and `ForceOverwriteReplicaSecret`) before anything
/// is changed: every region must be a paired region other than this one, named once.
pub fn add_replica_regions(
    call: &mut Call<'_>,
    p: &Params<'_>,
) -> Result<Vec<ReplicaRegion>, AwsError> {
    if p.opt_bool("ForceOverwriteReplicaSecret")?.unwrap_or(false) {
        return Err(p.invalid(
            "Coffer never overwrites a secret another region owns: delete or rename that region's secret of the same name there, then call again without ForceOverwriteReplicaSecret.",
        ));
    }
    let Some(items) = p.opt_array("AddReplicaRegions")? else {
        return Ok(Vec::new());
    };
    if items.is_empty() {
        return Err(p.invalid("AddReplicaRegions must name at least 1 Region."));
    }
    let paired = paired_regions(call)?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for item in items {
        let Some(entry) = item.as_object() else {
            return Err(AwsError::new(
                "SerializationException",
                400,
                "Each AddReplicaRegions entry must be an object with Region and KmsKeyId.",
            ));
        };
        let entry = Params::new(entry, call.service);
        let region = entry.str("Region")?;
        if region.is_empty() || region.chars().count() > 128 {
            return Err(p.invalid("Region must be 1 to 128 characters long."));
        }
        let key = entry.opt_str_len("KmsKeyId", 0, 2048)?;
        if region == call.region {
            return Err(invalid_region(
                region,
                "is this vault's own region, which holds the primary secret.",
            ));
        }
        if !paired.contains(region) {
            return Err(invalid_region(
                region,
                "is not a region paired with this vault; pair it first with `coffer region add NAME --url https://HOST:PORT --fingerprint FP` (`coffer region list` shows the paired ones).",
            ));
        }
        if !seen.insert(region.to_owned()) {
            return Err(p.invalid(format!(
                "Region {region:?} is named twice in AddReplicaRegions."
            )));
        }
        out.push(ReplicaRegion {
            region: region.to_owned(),
            key: key.filter(|k| !k.is_empty()).map(arn::key_reference),
        });
    }
    Ok(out)
}

fn paired_regions(call: &mut Call<'_>) -> Result<BTreeSet<String>, AwsError> {
    match call.execute(Request::RegionList)? {
        Response::Peers(peers) => Ok(peers.into_iter().map(|p| p.name).collect()),
        _ => Err(unexpected(call)),
    }
}

/// Starts replicating `name` to each region (checked by [`add_replica_regions`]).
pub fn replicate(
    call: &mut Call<'_>,
    name: &str,
    regions: Vec<ReplicaRegion>,
) -> Result<(), AwsError> {
    for ReplicaRegion { region, key } in regions {
        call.execute(Request::ReplicateSecret {
            name: name.to_owned(),
            region,
            key,
        })?;
    }
    Ok(())
}

/// The region holding the primary of a secret as this vault knows it: the region it is a
/// replica of, or this one.
pub fn primary_region<'d>(call: &'d Call<'_>, d: &'d SecretDescription) -> &'d str {
    d.replication
        .as_ref()
        .and_then(|r| r.primary_region.as_deref())
        .unwrap_or(&call.region)
}

/// `ReplicationStatus` as Secrets Manager reports it: one entry per replica region, its
/// `KmsKeyId` only when one was given (the region's default key otherwise).
/// `LastAccessedDate` is never given: reads happen in the replica's own vault, which does
/// not report them back.
pub fn status_json(replication: Option<&SecretReplication>) -> Vec<Value> {
    replication
        .map(|r| r.regions.iter().map(region_json).collect())
        .unwrap_or_default()
}

fn region_json(r: &RegionReplication) -> Value {
    let (status, message) = match r.status {
        ReplicationStatus::InSync => ("InSync", "Replication succeeded".to_owned()),
        ReplicationStatus::InProgress => (
            "InProgress",
            format!(
                "Replication in progress: {} change(s) not yet acknowledged by {}",
                r.pending, r.region
            ),
        ),
        ReplicationStatus::Failed => (
            "Failed",
            r.message
                .clone()
                .unwrap_or_else(|| format!("Replication to {} failed", r.region)),
        ),
    };
    let mut out = json!({"Region": r.region, "Status": status, "StatusMessage": message});
    if let Some(key) = &r.key {
        out["KmsKeyId"] = json!(key);
    }
    out
}

/// The replica regions a secret has, for the refusal to delete it while it has any.
pub fn replica_region_names(d: &SecretDescription) -> Vec<String> {
    d.replication
        .as_ref()
        .map(|r| r.regions.iter().map(|r| r.region.clone()).collect())
        .unwrap_or_default()
}

pub fn replicate_secret_to_regions(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    if !p.has("AddReplicaRegions") {
        return Err(p.invalid("AddReplicaRegions is required."));
    }
    allow(call, "ReplicateSecretToRegions", &target)?;
    let regions = add_replica_regions(call, p)?;
    let d = describe(call, &target.name)?;
    refuse_on_replica(&d)?;
    let already = replica_region_names(&d);
    if let Some(region) = regions.iter().find(|r| already.contains(&r.region)) {
        return Err(AwsError::new(
            "InvalidRequestException",
            400,
            format!(
                "Secret {} is already replicated to region {}; RemoveRegionsFromReplication first to replicate it there under another key.",
                target.name, region.region
            ),
        ));
    }
    replicate(call, &target.name, regions)?;
    let d = describe(call, &target.name)?;
    Ok(json!({"ARN": target.arn, "ReplicationStatus": status_json(d.replication.as_ref())}))
}

pub fn remove_regions_from_replication(
    call: &mut Call<'_>,
    p: &Params<'_>,
) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    let Some(regions) = p.opt_strings("RemoveReplicaRegions")? else {
        return Err(p.invalid("RemoveReplicaRegions is required."));
    };
    if regions.is_empty() {
        return Err(p.invalid("RemoveReplicaRegions must name at least 1 Region."));
    }
    if let Some(bad) = regions
        .iter()
        .find(|r| r.is_empty() || r.chars().count() > 128)
    {
        return Err(p.invalid(format!(
            "Region {bad:?} is not valid: Regions are 1 to 128 characters long."
        )));
    }
    allow(call, "RemoveRegionsFromReplication", &target)?;
    let d = describe(call, &target.name)?;
    refuse_on_replica(&d)?;
    let replicated = replica_region_names(&d);
    let mut seen = BTreeSet::new();
    for region in &regions {
        if !replicated.contains(region) {
            return Err(AwsError::new(
                "ResourceNotFoundException",
                400,
                format!(
                    "Secrets Manager can't find a replica of secret {} in region {region:?}; its replica regions are [{}].",
                    target.name,
                    replicated.join(", ")
                ),
            ));
        }
        if !seen.insert(region) {
            return Err(p.invalid(format!(
                "Region {region:?} is named twice in RemoveReplicaRegions."
            )));
        }
    }
    for region in regions {
        call.execute(Request::RemoveSecretRegion {
            name: target.name.clone(),
            region,
        })?;
    }
    let d = describe(call, &target.name)?;
    Ok(json!({"ARN": target.arn, "ReplicationStatus": status_json(d.replication.as_ref())}))
}

pub fn stop_replication_to_replica(call: &mut Call<'_>, p: &Params<'_>) -> Result<Value, AwsError> {
    let target = resolve(call, p)?;
    allow(call, "StopReplicationToReplica", &target)?;
    let d = describe(call, &target.name)?;
    if d.replication
        .as_ref()
        .and_then(|r| r.primary_region.as_ref())
        .is_none()
    {
        return Err(AwsError::new(
            "InvalidRequestException",
            400,
            format!(
                "Secret {} is not a replica of another region, so there is no replication to stop here; call StopReplicationToReplica on the replica region's endpoint, or RemoveRegionsFromReplication here.",
                target.name
            ),
        ));
    }
    call.execute(Request::PromoteSecret {
        name: target.name.clone(),
    })?;
    Ok(json!({"ARN": target.arn}))
}

/// AWS's refusal of a change made on a replica rather than on its primary.
fn refuse_on_replica(d: &SecretDescription) -> Result<(), AwsError> {
    match d
        .replication
        .as_ref()
        .and_then(|r| r.primary_region.as_ref())
    {
        Some(primary) => Err(replica_read_only(d.name.as_str(), primary)),
        None => Ok(()),
    }
}

/// AWS's words for a write on a replica, then Coffer's: where to write instead.
pub fn replica_read_only(name: &str, primary_region: &str) -> AwsError {
    AwsError::new(
        "InvalidParameterException",
        400,
        format!(
            "Operation not permitted on a replica secret. Call must be made in primary secret's region ({primary_region}); or make {name:?} a secret of this region with StopReplicationToReplica."
        ),
    )
}
