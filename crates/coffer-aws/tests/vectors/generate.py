#!/usr/bin/env python3
"""Generate SigV4 test vectors signed by botocore, the AWS SDK for Python.

Why: coffer-aws verifies AWS Signature Version 4 itself. Its own unit tests
sign with its own canonicalisation, which cannot catch a rule that both sides
get wrong the same way. These vectors are signed by the real SDK, so the Rust
test `tests/botocore_vectors.rs` proves that Coffer accepts what AWS clients
actually send, and rejects each vector once one byte is changed.

The output, `botocore.json` next to this script, is committed. CI does not
have botocore and never runs this script; it only reads the fixture.

Regenerate (from the repository root):

    pip install --user botocore
    python3 crates/coffer-aws/tests/vectors/generate.py
    cargo test -p coffer-aws --test botocore_vectors

The signing time is fixed (2026-01-15T12:00:00Z) and the key is the AWS
documentation's example key, so a regeneration with the same botocore version
differs only in the random `amz-sdk-invocation-id` / `ClientRequestToken`
values the SDK puts in its requests. Nothing is sent over the network: the
SDK clients are stopped just before sending, and the requests are captured.
"""

import base64
import datetime
import json
import logging
import os
import platform
import sys
from unittest import mock
from urllib.parse import urlsplit

import botocore
import botocore.auth
import botocore.session
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SIGNED_AT = datetime.datetime(2026, 1, 15, 12, 0, 0)
ENDPOINT = "https://localhost:7878"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "botocore.json")


class CanonicalRequestLog(logging.Handler):
    """Keeps the canonical request botocore logs at debug level, so that a
    failing vector shows what the SDK hashed."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.last = None

    def emit(self, record):
        if record.msg.startswith("CanonicalRequest"):
            self.last = record.args[0] if record.args else None


LOG = CanonicalRequestLog()
logging.getLogger("botocore.auth").addHandler(LOG)
logging.getLogger("botocore.auth").setLevel(logging.DEBUG)


class Captured(Exception):
    def __init__(self, request):
        super().__init__("captured")
        self.request = request


def host_of(url):
    """The Host header urllib3 will send: netloc without a default port
    (the same value botocore signs when no Host header is set)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if parts.port == default:
        return parts.hostname
    return parts.netloc


def record(name, description, method, url, headers, body, service, region, kind, expires=None):
    parts = urlsplit(url)
    # Prepared requests may hold header values as bytes (as sent on the wire).
    header_list = [[k, v.decode("utf-8") if isinstance(v, bytes) else v] for k, v in headers]
    if not any(k.lower() == "host" for k, _ in header_list):
        header_list.insert(0, ["Host", host_of(url)])
    if isinstance(body, str):
        body = body.encode("utf-8")
    body = body or b""
    vector = {
        "name": name,
        "description": description,
        "method": method,
        "path": parts.path or "/",
        "query": parts.query,
        "headers": header_list,
        "body_base64": base64.b64encode(body).decode("ascii"),
        "service": service,
        "region": region,
        "kind": kind,
        "botocore_canonical_request": LOG.last,
    }
    if expires is not None:
        vector["expires"] = expires
    LOG.last = None
    return vector


def client_call(service, operation, params, description, name, region="us-east-1"):
    """Runs a real botocore client call and captures the signed request."""
    session = botocore.session.Session()
    client = session.create_client(
        service,
        region_name=region,
        endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )

    def stop(request, **kwargs):
        raise Captured(request)

    client.meta.events.register("before-send", stop)
    try:
        getattr(client, operation)(**params)
    except Captured as c:
        req = c.request
        return record(
            name,
            description,
            req.method,
            req.url,
            list(req.headers.items()),
            req.body,
            service,
            region,
            "header",
        )
    raise RuntimeError(f"{operation} was not captured")


def raw_signed(name, description, method, url, headers, body, service, region, params=None):
    """Signs a hand-built request with SigV4Auth (header form)."""
    req = AWSRequest(method=method, url=url, data=body, params=params or {})
    for k, v in headers:
        # HTTPHeaders appends on assignment, so repeated names stay repeated.
        req.headers[k] = v
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service, region).add_auth(req)
    prepared = req.prepare()
    return record(
        name,
        description,
        prepared.method,
        prepared.url,
        list(req.headers.items()),
        prepared.body,
        service,
        region,
        "header",
    )


def presigned(name, description, url, params, service, region, expires):
    """Presigns a GET request with SigV4QueryAuth (query-string form)."""
    req = AWSRequest(method="GET", url=url, params=params)
    SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), service, region, expires=expires).add_auth(req)
    prepared = req.prepare()
    return record(
        name,
        description,
        prepared.method,
        prepared.url,
        list(req.headers.items()),
        prepared.body,
        service,
        region,
        "presigned",
        expires=expires,
    )


def main():
    vectors = []
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=SIGNED_AT):
        vectors.append(client_call(
            "secretsmanager", "get_secret_value", {"SecretId": "prod/db/password"},
            "Secrets Manager GetSecretValue from a botocore client", "sm-get-secret-value"))
        vectors.append(client_call(
            "secretsmanager", "create_secret",
            {
                "Name": "prod/api key",
                "Description": "tab\tquote\" unicode \u00e9\u2713",
                "SecretString": json.dumps({"user": "app", "password": "p@ss w/ord&=+?"}),
                "Tags": [{"Key": "team", "Value": "platform"}],
            },
            "Secrets Manager CreateSecret with a JSON body full of characters that need escaping",
            "sm-create-secret", region="eu-west-1"))
        vectors.append(client_call(
            "kms", "encrypt",
            {"KeyId": "alias/coffer", "Plaintext": b"\x00\x01secret\xff",
             "EncryptionContext": {"purpose": "test"}},
            "KMS Encrypt (X-Amz-Target TrentService.Encrypt) from a botocore client",
            "kms-encrypt", region="ap-southeast-2"))
        vectors.append(client_call(
            "kms", "decrypt", {"CiphertextBlob": b"\x01\x02\x03" * 20},
            "KMS Decrypt from a botocore client", "kms-decrypt"))
        vectors.append(raw_signed(
            "odd-whitespace-repeated-headers",
            "Repeated headers and values with leading, trailing and inner runs of spaces and tabs",
            "POST", ENDPOINT + "/",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "secretsmanager.ListSecrets"),
                ("My-Header1", "    a   b   c  "),
                ("X-Repeated", "first  value"),
                ("X-Repeated", "\tsecond\t\tvalue "),
                ("X-Repeated", "third"),
            ],
            b"{}", "secretsmanager", "us-east-1"))
        vectors.append(raw_signed(
            "query-needs-encoding",
            "Query parameters (sorted, repeated-free) with spaces, slashes, unicode, reserved characters and an empty value",
            "GET", ENDPOINT + "/",
            [("X-Amz-Target", "secretsmanager.ListSecrets")],
            b"", "secretsmanager", "us-east-1",
            params={"Path": "/prod/*", "Name": "a b+c&d=e", "Unicode": "\u00e9\u2713", "Empty": "", "tilde~": "x-_.~"}))
        vectors.append(raw_signed(
            "path-needs-normalizing",
            "A path with dot segments, a double slash and an already-encoded space",
            "GET", ENDPOINT + "/foo/../bar//baz%20q/",
            [], b"", "secretsmanager", "us-east-1"))
        vectors.append(raw_signed(
            "date-header",
            "Dated by the HTTP Date header (no X-Amz-Date), as botocore does when a Date header exists",
            "POST", ENDPOINT + "/",
            [("Date", "Thu, 01 Jan 1970 00:00:00 GMT"), ("X-Amz-Target", "TrentService.ListKeys"),
             ("Content-Type", "application/x-amz-json-1.1")],
            b"{}", "kms", "us-east-1"))
        vectors.append(raw_signed(
            "content-sha256-header",
            "Payload hash sent in x-amz-content-sha256 and signed",
            "POST", ENDPOINT + "/",
            [("X-Amz-Target", "TrentService.GenerateRandom"),
             ("Content-Type", "application/x-amz-json-1.1"),
             ("X-Amz-Content-SHA256", __import__("hashlib").sha256(b'{"NumberOfBytes":32}').hexdigest())],
            b'{"NumberOfBytes":32}', "kms", "us-east-1"))
        vectors.append(presigned(
            "presigned-get",
            "Presigned (query-string) GET with operation parameters needing encoding, valid 900 s",
            ENDPOINT + "/", {"Action": "ListSecrets", "Filter": "name=prod/*", "Note": "a b"},
            "secretsmanager", "us-east-1", 900))
        vectors.append(presigned(
            "presigned-week",
            "Presigned GET at the longest validity AWS allows (604800 s)",
            ENDPOINT + "/", {}, "kms", "us-west-2", 604800))

    out = {
        "generator": "crates/coffer-aws/tests/vectors/generate.py",
        "botocore_version": botocore.__version__,
        "python_version": platform.python_version(),
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "signed_at": SIGNED_AT.strftime("%Y%m%dT%H%M%SZ"),
        "vectors": vectors,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(vectors)} vectors to {OUT} (botocore {botocore.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
