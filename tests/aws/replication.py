"""Secrets Manager's multi-Region operations with boto3 against two paired Coffer regions.

Run by tests/tests/aws_api.rs, which pairs a primary vault (its daemon serves the API and
pushes to the replica) with a replica vault (its daemon listens for the primary and serves
the API too). Every check raises on failure; the last line printed is a JSON summary.
Environment: COFFER_AWS_PRIMARY / COFFER_AWS_REPLICA (endpoints), COFFER_AWS_PRIMARY_ID /
_SECRET and COFFER_AWS_REPLICA_ID / _SECRET (an admin key of each vault),
COFFER_PRIMARY_REGION and COFFER_REPLICA_REGION (the two regions' names).
"""

import json
import os
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HOME = os.environ["COFFER_PRIMARY_REGION"]
LAB = os.environ["COFFER_REPLICA_REGION"]
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})


def client(which):
    return boto3.client(
        "secretsmanager",
        endpoint_url=os.environ[f"COFFER_AWS_{which}"],
        region_name="us-east-1",
        aws_access_key_id=os.environ[f"COFFER_AWS_{which}_ID"],
        aws_secret_access_key=os.environ[f"COFFER_AWS_{which}_SECRET"],
        config=NO_RETRY,
    )


home = client("PRIMARY")
lab = client("REPLICA")


def refused(code, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except ClientError as error:
        got = error.response["Error"]["Code"]
        message = error.response["Error"].get("Message", "")
        assert got == code, f"expected {code}, got {got}: {message}"
        return message
    raise AssertionError(f"expected {code}, but the call succeeded")


def eventually(what, check, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = check()
            if result:
                return result
            seen = result
        except ClientError as error:
            seen = error.response["Error"]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened; last seen: {seen}")
        time.sleep(0.2)


def regions(described):
    return sorted(r["Region"] for r in described.get("ReplicationStatus", []))


checks = []

# A region that is not paired is refused before anything is made.
message = refused(
    "InvalidParameterException",
    home.create_secret,
    Name="app/repl",
    SecretString="replicated-value-1",
    AddReplicaRegions=[{"Region": "nowhere-9"}],
)
assert "Invalid replica region" in message and "coffer region add" in message, message
refused("ResourceNotFoundException", home.describe_secret, SecretId="app/repl")
refused(
    "InvalidParameterException",
    home.create_secret,
    Name="app/repl",
    SecretString="replicated-value-1",
    AddReplicaRegions=[{"Region": HOME}],
)
refused("ResourceNotFoundException", home.describe_secret, SecretId="app/repl")
checks.append("bad regions on CreateSecret change nothing")

created = home.create_secret(
    Name="app/repl",
    SecretString="replicated-value-1",
    AddReplicaRegions=[{"Region": LAB}],
)
arn = created["ARN"]
assert arn.startswith(f"arn:aws:secretsmanager:{HOME}:") and arn[-7] == "-", arn
status = created["ReplicationStatus"]
assert [s["Region"] for s in status] == [LAB], status
assert status[0]["Status"] in ("InProgress", "InSync"), status
described = home.describe_secret(SecretId="app/repl")
assert described["PrimaryRegion"] == HOME, described
assert regions(described) == [LAB], described
checks.append("CreateSecret with AddReplicaRegions")

# The copy arrives, under the same ARN but for the replica's region, as in AWS.
eventually(
    "the copy on the replica",
    lambda: lab.get_secret_value(SecretId="app/repl")["SecretString"] == "replicated-value-1",
)
copy = lab.describe_secret(SecretId="app/repl")
assert copy["PrimaryRegion"] == HOME, copy
assert copy["ARN"] == arn.replace(f":{HOME}:", f":{LAB}:"), (copy["ARN"], arn)
assert "ReplicationStatus" not in copy, copy
assert lab.get_secret_value(SecretId=copy["ARN"])["SecretString"] == "replicated-value-1"
listed = lab.list_secrets(Filters=[{"Key": "primary-region", "Values": [HOME]}])["SecretList"]
assert [s["Name"] for s in listed] == ["app/repl"], listed
eventually(
    "InSync on the primary",
    lambda: home.describe_secret(SecretId="app/repl")["ReplicationStatus"][0]["Status"] == "InSync",
)
entry = home.list_secrets(Filters=[{"Key": "name", "Values": ["app/repl"]}])["SecretList"][0]
assert entry["PrimaryRegion"] == HOME, entry
synced = home.describe_secret(SecretId="app/repl")["ReplicationStatus"][0]
assert synced["StatusMessage"] and "KmsKeyId" not in synced, synced
checks.append("replica copy, ARN, PrimaryRegion and InSync status")

# Writes on the replica fail as AWS fails them, and change nothing.
for call, kwargs in [
    (lab.put_secret_value, {"SecretString": "written-on-replica"}),
    (lab.update_secret, {"Description": "changed on the replica"}),
    (lab.tag_resource, {"Tags": [{"Key": "k", "Value": "v"}]}),
    (lab.delete_secret, {"ForceDeleteWithoutRecovery": True}),
    (lab.replicate_secret_to_regions, {"AddReplicaRegions": [{"Region": HOME}]}),
    (lab.remove_regions_from_replication, {"RemoveReplicaRegions": [HOME]}),
]:
    message = refused("InvalidParameterException", call, SecretId="app/repl", **kwargs)
    assert "Operation not permitted on a replica secret" in message and HOME in message, message
after = lab.describe_secret(SecretId="app/repl")
assert lab.get_secret_value(SecretId="app/repl")["SecretString"] == "replicated-value-1"
assert after.get("Description") is None and after["Tags"] == [] and "DeletedDate" not in after, after
checks.append("writes on a replica refused")

# Bad input on the primary: AWS's codes, nothing changed.
bad = [
    ("InvalidParameterException", home.replicate_secret_to_regions,
     {"AddReplicaRegions": [{"Region": "nowhere-9"}]}),
    ("InvalidParameterException", home.replicate_secret_to_regions,
     {"AddReplicaRegions": [{"Region": HOME}]}),
    ("InvalidParameterException", home.replicate_secret_to_regions,
     {"AddReplicaRegions": [{"Region": LAB}], "ForceOverwriteReplicaSecret": True}),
    ("InvalidRequestException", home.replicate_secret_to_regions,
     {"AddReplicaRegions": [{"Region": LAB}]}),
    ("ResourceNotFoundException", home.remove_regions_from_replication,
     {"RemoveReplicaRegions": ["nowhere-9"]}),
    ("InvalidRequestException", home.stop_replication_to_replica, {}),
    ("InvalidParameterException", home.delete_secret, {"RecoveryWindowInDays": 7}),
]
for code, call, kwargs in bad:
    refused(code, call, SecretId="app/repl", **kwargs)
refused("ResourceNotFoundException", home.replicate_secret_to_regions,
        SecretId="app/none", AddReplicaRegions=[{"Region": LAB}])
message = refused("InvalidParameterException", home.delete_secret, SecretId="app/repl")
assert "still has replica regions" in message and LAB in message, message
still = home.describe_secret(SecretId="app/repl")
assert regions(still) == [LAB] and "DeletedDate" not in still, still
checks.append("bad replication requests refused, nothing changed")

# ReplicateSecretToRegions / RemoveRegionsFromReplication on an existing secret.
home.create_secret(Name="app/two", SecretString="second-secret-2")
answer = home.replicate_secret_to_regions(
    SecretId="app/two", AddReplicaRegions=[{"Region": LAB, "KmsKeyId": "alias/default"}]
)
assert [s["Region"] for s in answer["ReplicationStatus"]] == [LAB], answer
assert answer["ReplicationStatus"][0]["KmsKeyId"] == "alias/default", answer
eventually(
    "app/two on the replica",
    lambda: lab.get_secret_value(SecretId="app/two")["SecretString"] == "second-secret-2",
)
answer = home.remove_regions_from_replication(SecretId="app/two", RemoveReplicaRegions=[LAB])
assert answer["ReplicationStatus"] == [], answer
assert "ReplicationStatus" not in home.describe_secret(SecretId="app/two")


def gone_from_lab():
    try:
        lab.describe_secret(SecretId="app/two")
        return False
    except ClientError as error:
        return error.response["Error"]["Code"] == "ResourceNotFoundException"


eventually("app/two removed from the replica", gone_from_lab)
checks.append("ReplicateSecretToRegions and RemoveRegionsFromReplication")

# StopReplicationToReplica on the replica promotes it: it takes writes from then on.
promoted = lab.stop_replication_to_replica(SecretId="app/repl")
assert promoted["ARN"] == copy["ARN"], promoted
lab.put_secret_value(SecretId="app/repl", SecretString="own-value-on-lab")
assert lab.get_secret_value(SecretId="app/repl")["SecretString"] == "own-value-on-lab"
now_own = lab.describe_secret(SecretId="app/repl")
assert now_own["PrimaryRegion"] == LAB and "ReplicationStatus" not in now_own, now_own
refused("InvalidRequestException", lab.stop_replication_to_replica, SecretId="app/repl")
checks.append("StopReplicationToReplica promotes the replica")

# ARNs: stable for a secret's life, new when a secret is made again under its name.
first = home.create_secret(Name="app/arn", SecretString="arn-value-one-1")["ARN"]
assert home.describe_secret(SecretId=first)["ARN"] == first
partial = first[:-7]
assert home.get_secret_value(SecretId=partial)["SecretString"] == "arn-value-one-1"
home.put_secret_value(SecretId="app/arn", SecretString="arn-value-one-2")
assert home.describe_secret(SecretId="app/arn")["ARN"] == first
home.delete_secret(SecretId=first, ForceDeleteWithoutRecovery=True)
second = home.create_secret(Name="app/arn", SecretString="arn-value-two-1")["ARN"]
assert second != first and second[:-7] == partial, (first, second)
refused("ResourceNotFoundException", home.get_secret_value, SecretId=first)
assert home.get_secret_value(SecretId=second)["SecretString"] == "arn-value-two-1"
assert home.get_secret_value(SecretId=partial)["SecretString"] == "arn-value-two-1"
refused("ResourceNotFoundException", home.get_secret_value, SecretId=first[:-6] + "AAAAAA")
checks.append("ARN suffix from the secret's id")

print(json.dumps({"passed": checks}))
