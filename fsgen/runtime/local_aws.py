"""Credentials for a local endpoint: what fsgen's own boto3 clients add when they talk to
``fsgen serve`` (or any server) on loopback and the machine has no AWS credentials.

A SageMaker or Kinesis client signs every request, so botocore refuses to send one without
credentials (NoCredentialsError) even though a local endpoint never checks them. When the
endpoint is a loopback address and boto3's chain (environment, shared files, profile) finds
none, the client gets the fixed dummy pair :data:`LOCAL_CREDENTIALS`, and ``us-east-1`` when no
region is configured. Real credentials, when present, are always used as they are; a
non-loopback endpoint (or AWS itself) never gets dummy ones.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

LOCAL_CREDENTIALS = {"aws_access_key_id": "fsgen-local", "aws_secret_access_key": "fsgen-local"}
LOCAL_REGION = "us-east-1"


def is_loopback(endpoint_url: str | None) -> bool:
    """True for ``http(s)://`` URLs naming localhost, 127.0.0.0/8 or ::1."""
    if not endpoint_url:
        return False
    host = urlsplit(endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_client_kwargs(
    endpoint_url: str | None, region: str | None = None, service: str | None = None
) -> dict[str, str]:
    """Extra ``boto3.client(...)`` keyword arguments for ``endpoint_url`` (when None and
    ``service`` is given: boto3's ``AWS_ENDPOINT_URL_<SERVICE>`` / ``AWS_ENDPOINT_URL``):
    ``region_name`` (``region``, else the configured one, else us-east-1 for a loopback
    endpoint) and, for a loopback endpoint without configured credentials, the dummy ones."""
    if endpoint_url is None and service is not None:
        variable = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_").replace(" ", "_")
        endpoint_url = os.environ.get(variable) or os.environ.get("AWS_ENDPOINT_URL")
    if not is_loopback(endpoint_url):
        return {"region_name": region} if region else {}
    import botocore.credentials
    import botocore.session

    session = botocore.session.get_session()
    resolver = botocore.credentials.create_credential_resolver(session)
    for slow in ("iam-role", "container-role"):  # metadata services: network, not config
        resolver.remove(slow)
    out: dict[str, str] = {}
    if resolver.load_credentials() is None:
        out.update(LOCAL_CREDENTIALS)
    if region or not session.get_config_variable("region"):
        out["region_name"] = region or LOCAL_REGION
    return out


__all__ = ["LOCAL_CREDENTIALS", "is_loopback", "local_client_kwargs"]
