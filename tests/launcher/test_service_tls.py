"""The launcher serves the demand stream over TLS and picks up a renewed certificate without a restart."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import pytest

from launcher.aws.session import AWSClients, AWSSettings
from launcher.service import LauncherService
from localcluster.cluster import LocalCluster
from localcluster.ec2 import CREDENTIALS
from localcluster.stack import JitnodeStack
from tests.extender.helpers import eventually_async
from tests.tlsfiles import SecretVolume, client_context, https_get, self_signed


async def test_demand_stream_certificate_reloads_without_restart(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    a, b = self_signed("launcher-a"), self_signed("launcher-b")
    volume = SecretVolume(tmp_path / "tls")
    volume.write(a.cert_pem, a.key_pem)
    stack = JitnodeStack(ec2=local_cluster.ec2)
    stack.cluster = local_cluster  # reuse the running cluster: only its launcher settings are needed
    base = stack.launcher_config()
    config = dataclasses.replace(
        base,
        server=dataclasses.replace(
            base.server,
            port=0,
            tls_cert_file=volume.cert_file,
            tls_key_file=volume.key_file,
            tls_reload_interval=0.05,
        ),
        aws=dataclasses.replace(base.aws, instance_types=("m5.large",)),
    )
    clients = AWSClients(
        AWSSettings(
            region=local_cluster.ec2.region,
            endpoint_url=local_cluster.ec2.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
    )
    async with await local_cluster.api_client() as api:
        service = LauncherService(config, api, clients)
        url = await service.start()
        try:
            assert url.startswith("https://")
            port = int(url.rsplit(":", 1)[1])
            peer, response = await https_get(port, "/healthz", client_context(a))
            assert peer == a.der
            assert response.startswith(b"HTTP/1.1 200")

            volume.write(b.cert_pem, b.key_pem)  # the Secret is renewed in place

            async def serves_b() -> bool:
                return (await https_get(port, "/healthz", client_context(a, b)))[0] == b.der

            await eventually_async(serves_b, within=5, step=0.02)
            with pytest.raises(ssl.SSLCertVerificationError):
                await https_get(port, "/healthz", client_context(a))
        finally:
            await service.stop()


async def test_a_bad_certificate_fails_the_start(local_cluster: LocalCluster, tmp_path: Path) -> None:
    bad = tmp_path / "tls.crt"
    bad.write_bytes(b"not a certificate")
    stack = JitnodeStack(ec2=local_cluster.ec2)
    stack.cluster = local_cluster
    base = stack.launcher_config()
    config = dataclasses.replace(
        base, server=dataclasses.replace(base.server, port=0, tls_cert_file=str(bad), tls_key_file=str(bad))
    )
    clients = AWSClients(
        AWSSettings(region=local_cluster.ec2.region, endpoint_url=local_cluster.ec2.endpoint)
    )
    async with await local_cluster.api_client() as api:
        service = LauncherService(config, api, clients)
        with pytest.raises((ssl.SSLError, OSError)):
            await service.start()
        await service.stop()
