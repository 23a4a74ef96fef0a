"""A real S3 API for the tests: moto's server mode over HTTP on 127.0.0.1, in a subprocess.

Not moto's in-process mocks: requests, retries, streaming and error mapping
are boto3's real ones, and the server is started and killed by the test run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """moto's S3 over HTTP on 127.0.0.1, dummy credentials in the environment, killed at the end."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    env = {**os.environ, "MOTO_PORT": str(port)}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", str(log.parent / "no-config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(log.parent / "no-credentials"))
        try:
            yield url
        finally:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3(moto_server):
    import boto3

    return boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")


def upload_tree(s3, bucket: str, prefix: str, root: Path) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file():
            s3.put_object(Bucket=bucket, Key=prefix + p.relative_to(root).as_posix(), Body=p.read_bytes())


def user_without_policy(moto_server: str, name: str) -> dict:
    """An IAM user with no policy: once auth is on, every S3 request of theirs is denied."""
    import boto3

    iam = boto3.client("iam", endpoint_url=moto_server, region_name="us-east-1")
    iam.create_user(UserName=name)
    return iam.create_access_key(UserName=name)["AccessKey"]


@contextmanager
def moto_auth(moto_server: str) -> Iterator[None]:
    """moto enforces IAM only while auth is switched on (``/moto-api/reset-auth``)."""

    def set_auth(count: str) -> None:
        req = urllib.request.Request(
            moto_server + "/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(req, timeout=5).read()

    set_auth("0")
    try:
        yield
    finally:
        set_auth("inf")
