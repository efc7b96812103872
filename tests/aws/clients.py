"""Real AWS clients (boto3, botocore, the AWS CLI) against `coffer daemon --aws-listen`.

Run by tests/tests/aws_api.rs, which starts the daemon and makes the access keys. Every
check raises on failure; the last line printed is a JSON summary the Rust test reads.
Environment: COFFER_AWS_ENDPOINT, COFFER_AWS_ADMIN_ID/_SECRET (may do everything),
COFFER_AWS_READER_ID/_SECRET (may only read secrets under app/), COFFER_AWS_DISABLED_ID/
_SECRET (a disabled key), COFFER_KMS_CLI_CIPHERTEXT (made by `coffer kms encrypt`),
COFFER_AWS_OUT (a directory for files the Rust test checks).
"""

import base64
import datetime
import json
import os
import subprocess
import sys
import unittest.mock
import urllib.error
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["COFFER_AWS_ENDPOINT"]
OUT = os.environ["COFFER_AWS_OUT"]
REGION = "us-east-1"  # an SDK's usual region works unchanged
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})


def client(service, key="ADMIN", secret=None):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=os.environ[f"COFFER_AWS_{key}_ID"],
        aws_secret_access_key=secret or os.environ[f"COFFER_AWS_{key}_SECRET"],
        config=NO_RETRY,
    )


def refused(code, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except ClientError as error:
        got = error.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {error}"
        return error.response["Error"].get("Message", "")
    raise AssertionError(f"expected {code}, but the call succeeded")


checks = []


def check(name):
    def wrap(fn):
        fn()
        checks.append(name)
        return fn

    return wrap


sm = client("secretsmanager")
kms = client("kms")


@check("secrets lifecycle")
def lifecycle():
    created = sm.create_secret(Name="app/db", SecretString="first-value-1", Description="db")
    assert created["Name"] == "app/db" and created["ARN"].startswith("arn:aws:secretsmanager:")
    first = created["VersionId"]
    got = sm.get_secret_value(SecretId="app/db")
    assert got["SecretString"] == "first-value-1" and got["VersionId"] == first
    assert got["VersionStages"] == ["AWSCURRENT"], got["VersionStages"]
    # By ARN, as AWS hands it out.
    assert sm.get_secret_value(SecretId=created["ARN"])["SecretString"] == "first-value-1"
    token = "11111111-2222-4333-8444-555555555555"
    put = sm.put_secret_value(SecretId="app/db", SecretString="second-value-2", ClientRequestToken=token)
    assert put["VersionId"] == token, put
    # A retry with the same token is the same version; another value with it is refused.
    again = sm.put_secret_value(SecretId="app/db", SecretString="second-value-2", ClientRequestToken=token)
    assert again["VersionId"] == token
    refused("ResourceExistsException", sm.put_secret_value, SecretId="app/db",
            SecretString="other", ClientRequestToken=token)
    prev = sm.get_secret_value(SecretId="app/db", VersionStage="AWSPREVIOUS")
    assert prev["SecretString"] == "first-value-1" and prev["VersionId"] == first
    # Labels: a custom label, moved to the old version and read by it.
    sm.update_secret_version_stage(SecretId="app/db", VersionStage="blue", MoveToVersionId=first)
    assert sm.get_secret_value(SecretId="app/db", VersionStage="blue")["SecretString"] == "first-value-1"
    described = sm.describe_secret(SecretId="app/db")
    assert described["VersionIdsToStages"][first] == ["AWSPREVIOUS", "blue"] or \
        sorted(described["VersionIdsToStages"][first]) == ["AWSPREVIOUS", "blue"], described
    versions = sm.list_secret_version_ids(SecretId="app/db")["Versions"]
    assert {v["VersionId"] for v in versions} == {first, token}
    # Rotation with Coffer's generate rotator (configured by the Rust test), immediately.
    rotated = sm.rotate_secret(SecretId="app/rotating")
    current = sm.get_secret_value(SecretId="app/rotating")
    assert current["VersionId"] == rotated["VersionId"] and current["SecretString"] != "before-rotation"
    msg = refused("InvalidParameterException", sm.rotate_secret, SecretId="app/rotating",
                  RotationLambdaARN="arn:aws:lambda:us-east-1:000000000000:function:rot")
    assert "coffer secret rotate" in msg, msg
    # Delete with a recovery window, refuse reads, restore.
    deleted = sm.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    assert deleted["Name"] == "app/db" and "DeletionDate" in deleted
    refused("InvalidRequestException", sm.get_secret_value, SecretId="app/db")
    sm.restore_secret(SecretId="app/db")
    assert sm.get_secret_value(SecretId="app/db")["SecretString"] == "second-value-2"
    refused("InvalidParameterException", sm.delete_secret, SecretId="app/db",
            RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    refused("InvalidParameterException", sm.delete_secret, SecretId="app/db", RecoveryWindowInDays=3)
    refused("ResourceNotFoundException", sm.get_secret_value, SecretId="app/missing")
    refused("ResourceExistsException", sm.create_secret, Name="app/db", SecretString="x")


@check("binary, tags, list, batch, password")
def more_secrets():
    sm.create_secret(Name="app/blob", SecretBinary=b"\x00\x01\xfe\xff",
                     Tags=[{"Key": "team", "Value": "core"}])
    assert sm.get_secret_value(SecretId="app/blob")["SecretBinary"] == b"\x00\x01\xfe\xff"
    sm.tag_resource(SecretId="app/blob", Tags=[{"Key": "env", "Value": "prod"}])
    sm.untag_resource(SecretId="app/blob", TagKeys=["team"])
    tags = sm.describe_secret(SecretId="app/blob")["Tags"]
    assert tags == [{"Key": "env", "Value": "prod"}], tags
    names = [s["Name"] for s in sm.list_secrets(Filters=[{"Key": "name", "Values": ["app/"]}])["SecretList"]]
    assert set(names) >= {"app/db", "app/blob"}, names
    only = sm.list_secrets(Filters=[{"Key": "tag-key", "Values": ["env"]}])["SecretList"]
    assert [s["Name"] for s in only] == ["app/blob"], only
    page = sm.list_secrets(MaxResults=1)
    assert len(page["SecretList"]) == 1 and "NextToken" in page
    rest = sm.list_secrets(MaxResults=100, NextToken=page["NextToken"])
    assert page["SecretList"][0]["Name"] not in [s["Name"] for s in rest["SecretList"]]
    refused("InvalidNextTokenException", sm.list_secrets, NextToken="garbage")
    batch = sm.batch_get_secret_value(SecretIdList=["app/db", "app/missing"])
    assert [v["Name"] for v in batch["SecretValues"]] == ["app/db"]
    assert batch["Errors"][0]["ErrorCode"] == "ResourceNotFoundException", batch["Errors"]
    password = sm.get_random_password(PasswordLength=24, ExcludePunctuation=True)["RandomPassword"]
    assert len(password) == 24 and password.isalnum(), password
    refused("InvalidParameterException", sm.get_random_password, PasswordLength=5000)


@check("resource policies: stored, combined with the key's policy, deny wins")
def resource_policies():
    reader = client("secretsmanager", key="READER")
    sm.create_secret(Name="team/shared", SecretString="shared-value")
    refused("AccessDeniedException", reader.get_secret_value, SecretId="team/shared")
    grant = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/reader"},
        "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})
    sm.put_resource_policy(SecretId="team/shared", ResourcePolicy=grant, BlockPublicPolicy=True)
    assert sm.get_resource_policy(SecretId="team/shared")["ResourcePolicy"] == grant
    assert reader.get_secret_value(SecretId="team/shared")["SecretString"] == "shared-value"
    deny = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::000000000000:user/reader"},
        "Action": "secretsmanager:*", "Resource": "*"}]})
    sm.create_secret(Name="app/denied", SecretString="denied-value")
    assert reader.get_secret_value(SecretId="app/denied")["SecretString"] == "denied-value"
    sm.put_resource_policy(SecretId="app/denied", ResourcePolicy=deny)
    refused("AccessDeniedException", reader.get_secret_value, SecretId="app/denied")
    sm.delete_resource_policy(SecretId="app/denied")
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId="app/denied")
    assert reader.get_secret_value(SecretId="app/denied")["SecretString"] == "denied-value"
    public = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "secretsmanager:*", "Resource": "*"}]})
    refused("PublicPolicyException", sm.put_resource_policy, SecretId="team/shared",
            ResourcePolicy=public, BlockPublicPolicy=True)
    refused("MalformedPolicyDocumentException", sm.put_resource_policy, SecretId="team/shared",
            ResourcePolicy='{"Version": "2012-10-17", "Statement": []}')
    assert sm.get_resource_policy(SecretId="team/shared")["ResourcePolicy"] == grant
    valid = sm.validate_resource_policy(ResourcePolicy=grant)
    assert valid["PolicyValidationPassed"] is True, valid
    invalid = sm.validate_resource_policy(ResourcePolicy='{"Version": "2012-10-17"}')
    assert invalid["PolicyValidationPassed"] is False and invalid["ValidationErrors"], invalid


@check("kms envelope round trip and CLI compatibility")
def kms_round_trip():
    key = kms.create_key(Description="api key")["KeyMetadata"]
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT" and key["KeyState"] == "Enabled"
    kms.create_alias(AliasName="alias/api", TargetKeyId=key["KeyId"])
    assert kms.describe_key(KeyId="alias/api")["KeyMetadata"]["KeyId"] == key["KeyId"]
    assert kms.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyId"] == key["KeyId"]
    context = {"purpose": "test"}
    data_key = kms.generate_data_key(KeyId="alias/api", KeySpec="AES_256", EncryptionContext=context)
    assert len(data_key["Plaintext"]) == 32
    opened = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=context)
    assert opened["Plaintext"] == data_key["Plaintext"] and opened["KeyId"] == key["Arn"]
    refused("InvalidCiphertextException", kms.decrypt, CiphertextBlob=data_key["CiphertextBlob"],
            EncryptionContext={"purpose": "other"})
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"made-by-boto3")["CiphertextBlob"]
    with open(os.path.join(OUT, "from-api.b64"), "w") as f:
        f.write(base64.b64encode(blob).decode())
    other = kms.create_key()["KeyMetadata"]
    moved = kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=other["KeyId"])
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["Plaintext"] == b"made-by-boto3"
    from_cli = base64.b64decode(os.environ["COFFER_KMS_CLI_CIPHERTEXT"])
    assert kms.decrypt(CiphertextBlob=from_cli)["Plaintext"] == b"made-by-coffer-cli"
    for spec in ["RSA_2048", "HMAC_256", "ECC_NIST_P256"]:
        refused("UnsupportedOperationException", kms.create_key, KeySpec=spec)
    refused("ValidationException", kms.generate_random, NumberOfBytes=2000)
    assert len(kms.generate_random(NumberOfBytes=16)["Plaintext"]) == 16
    kms.disable_key(KeyId=other["KeyId"])
    refused("DisabledException", kms.encrypt, KeyId=other["KeyId"], Plaintext=b"x")
    aliases = [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
    assert "alias/api" in aliases, aliases


@check("kms tags, description, rotations, key policies")
def kms_metadata():
    key = kms.create_key(Description="tagged", Tags=[{"TagKey": "team", "TagValue": "core"}])["KeyMetadata"]
    kid = key["KeyId"]
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "env", "TagValue": "prod"}])
    kms.untag_resource(KeyId=kid, TagKeys=["team"])
    assert kms.list_resource_tags(KeyId=kid)["Tags"] == [{"TagKey": "env", "TagValue": "prod"}]
    refused("TagException", kms.tag_resource, KeyId=kid, Tags=[{"TagKey": "aws:x", "TagValue": "y"}])
    kms.update_key_description(KeyId=kid, Description="renamed")
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["Description"] == "renamed"
    kms.rotate_key_on_demand(KeyId=kid)
    rotations = kms.list_key_rotations(KeyId=kid)["Rotations"]
    assert len(rotations) == 1 and rotations[0]["KeyId"] == kid, rotations
    default = json.loads(kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"])
    assert default["Statement"][0]["Principal"]["AWS"] == "arn:aws:iam::000000000000:root"
    assert kms.list_key_policies(KeyId=kid)["PolicyNames"] == ["default"]
    refused("MalformedPolicyDocumentException", kms.put_key_policy, KeyId=kid, PolicyName="default",
            Policy='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}')
    # A key policy that names only another user: the admin key's own policy no longer counts.
    only_other = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/someone-else"},
        "Action": "kms:*", "Resource": "*"}]})
    kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=only_other)
    refused("AccessDeniedException", kms.encrypt, KeyId=kid, Plaintext=b"x")


@check("aws cli")
def aws_cli():
    env = dict(os.environ,
               AWS_ACCESS_KEY_ID=os.environ["COFFER_AWS_ADMIN_ID"],
               AWS_SECRET_ACCESS_KEY=os.environ["COFFER_AWS_ADMIN_SECRET"],
               AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    aws = [sys.executable, "-m", "awscli", "--endpoint-url", ENDPOINT, "--output", "json"]
    out = subprocess.run(aws + ["secretsmanager", "get-secret-value", "--secret-id", "app/db"],
                         env=env, check=True, capture_output=True, text=True).stdout
    assert json.loads(out)["SecretString"] == "second-value-2"
    subprocess.run(aws + ["secretsmanager", "put-secret-value", "--secret-id", "app/cli",
                          "--secret-string", "x"], env=env, capture_output=True, text=True)
    made = subprocess.run(aws + ["secretsmanager", "create-secret", "--name", "app/cli",
                                 "--secret-string", "from-aws-cli"],
                          env=env, check=True, capture_output=True, text=True).stdout
    assert json.loads(made)["Name"] == "app/cli"


def raw_call(target, body, key_id, secret, when=None, tamper=None):
    """Signs a request with botocore's SigV4 signer (at `when`), optionally alters it."""
    service = "secretsmanager" if target.startswith("secretsmanager") else "kms"
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=ENDPOINT + "/", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(key_id, secret), service, REGION)
    if when is None:
        signer.add_auth(request)
    else:
        class Frozen(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return when

            @classmethod
            def now(cls, tz=None):
                return when.replace(tzinfo=tz) if tz else when

        with unittest.mock.patch.object(botocore.auth.datetime, "datetime", Frozen):
            signer.add_auth(request)
    prepared = request.prepare()
    data = prepared.body
    if tamper:
        data = tamper(data)
    req = urllib.request.Request(prepared.url, data=data, method="POST",
                                 headers=dict(prepared.headers.items()))
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@check("refusals: wrong secret, tampered body, expired date, disabled key, policy")
def refusals():
    admin_id = os.environ["COFFER_AWS_ADMIN_ID"]
    put = {"SecretId": "app/db", "SecretString": "changed-by-attacker"}
    refused("InvalidSignatureException", client("secretsmanager", secret="x" * 40).put_secret_value, **put)
    status, body = raw_call("secretsmanager.PutSecretValue", put, admin_id,
                            os.environ["COFFER_AWS_ADMIN_SECRET"],
                            tamper=lambda d: d.replace(b"changed-by-attacker", b"changed-by-attackeR"))
    assert (status, body.get("__type")) == (400, "InvalidSignatureException"), (status, body)
    past = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
    status, body = raw_call("secretsmanager.PutSecretValue", put, admin_id,
                            os.environ["COFFER_AWS_ADMIN_SECRET"], when=past)
    assert (status, body.get("__type")) == (400, "InvalidSignatureException"), (status, body)
    assert "expired" in body.get("message", "").lower(), body
    status, body = raw_call("secretsmanager.GetSecretValue", {"SecretId": "app/db"}, admin_id, "")
    assert body.get("__type") in ("InvalidSignatureException", "IncompleteSignatureException"), body
    refused("UnrecognizedClientException", client("secretsmanager", key="DISABLED").put_secret_value, **put)
    unknown = boto3.client("secretsmanager", endpoint_url=ENDPOINT, region_name=REGION,
                           aws_access_key_id="AKIANOSUCHKEY0000000",
                           aws_secret_access_key="y" * 40, config=NO_RETRY)
    refused("UnrecognizedClientException", unknown.get_secret_value, SecretId="app/db")
    reader = client("secretsmanager", key="READER")
    assert reader.get_secret_value(SecretId="app/db")["SecretString"] == "second-value-2"
    refused("AccessDeniedException", reader.put_secret_value, **put)
    refused("AccessDeniedException", reader.get_secret_value, SecretId="other/secret")
    refused("AccessDeniedException", client("kms", key="READER").create_key)
    # Unsigned requests.
    req = urllib.request.Request(ENDPOINT + "/", data=b"{}", method="POST",
                                 headers={"X-Amz-Target": "secretsmanager.ListSecrets",
                                          "Content-Type": "application/x-amz-json-1.1"})
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("an unsigned request was served")
    except urllib.error.HTTPError as error:
        assert json.loads(error.read())["__type"] == "MissingAuthenticationTokenException"
    # Nothing changed.
    assert sm.get_secret_value(SecretId="app/db")["SecretString"] == "second-value-2"


print(json.dumps({"passed": checks}))
