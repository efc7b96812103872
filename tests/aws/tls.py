"""boto3 over HTTPS to `coffer daemon --aws-listen … --aws-tls`, trusting only the CA the
daemon wrote: the call succeeds with it pinned and fails without it.

Run by tests/tests/aws_api.rs. Environment: COFFER_AWS_ENDPOINT (https://…),
COFFER_AWS_CA (the CA file), COFFER_AWS_ADMIN_ID / _SECRET. Prints a JSON summary last.
"""

import json
import os

import boto3
import botocore.exceptions
from botocore.config import Config

ENDPOINT = os.environ["COFFER_AWS_ENDPOINT"]
assert ENDPOINT.startswith("https://"), ENDPOINT


def client(verify, endpoint=ENDPOINT):
    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=os.environ["COFFER_AWS_ADMIN_ID"],
        aws_secret_access_key=os.environ["COFFER_AWS_ADMIN_SECRET"],
        verify=verify,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


pinned = client(os.environ["COFFER_AWS_CA"])
pinned.create_secret(Name="tls/db", SecretString="over-tls-value")
assert pinned.get_secret_value(SecretId="tls/db")["SecretString"] == "over-tls-value"

# Without the pinned CA the certificate is not trusted.
try:
    client(True).list_secrets()
    raise AssertionError("an unpinned client trusted the API's certificate")
except botocore.exceptions.SSLError:
    pass

# Plain HTTP on the TLS port gets no answer an SDK accepts.
try:
    client(False, ENDPOINT.replace("https://", "http://")).list_secrets()
    raise AssertionError("plain HTTP was answered on the TLS port")
except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
        botocore.exceptions.ClientError, botocore.exceptions.HTTPClientError):
    pass

print(json.dumps({"passed": ["pinned CA", "unpinned refused", "no plain HTTP"]}))
