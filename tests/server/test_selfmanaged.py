"""--self-managed-tls: the options, the Secret's life over simulated time (verified the way a
client verifies), and one replica's rounds against an in-memory API with resourceVersions.
The real API server, real replicas and traffic through rotations: tests/e2e/test_self_managed_tls.py."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import ipaddress
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from tests.support import stopped_afterwards
from webhook.cli import build_parser, main
from webhook.server.selfmanaged import Conflict, Material, SelfManagedTLS, Settings, plan

HOST = "guard.guard-system.svc"
V, R = dt.timedelta(seconds=100), dt.timedelta(seconds=30)


def settings(hosts: tuple[str, ...] = (HOST, "127.0.0.1"), validity: dt.timedelta = V,
             renew_before: dt.timedelta = R) -> Settings:
    return Settings("guard-system", "guard-tls", "guard", hosts, validity, renew_before)


def verifies(cert: x509.Certificate | None, trusted: tuple[x509.Certificate, ...], at: dt.datetime,
             host: str = HOST) -> bool:
    """Whether a client trusting `trusted` accepts `cert` for `host` at time `at`."""
    assert cert is not None
    name = x509.DNSName(host) if not host[0].isdigit() else x509.IPAddress(ipaddress.ip_address(host))
    verifier = PolicyBuilder().store(Store(list(trusted))).time(at).build_server_verifier(name)
    try:
        verifier.verify(cert, [])
    except VerificationError:
        return False
    return True


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("90d", 90 * 86400), ("720h", 720 * 3600), ("30m", 1800), ("10s", 10)])
def test_durations(text: str, seconds: int) -> None:
    args = build_parser().parse_args(["serve", "--certificate-validity", text])
    assert args.certificate_validity == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["3x", "1.5h", "0s", "10", "h", "-5m", "1h30m"])
def test_bad_durations_exit_2(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", f"--renew-before={text}"])
    assert exit_.value.code == 2
    assert f"argument --renew-before: {text!r} is not a duration such as 90d, 720h, 30m or 10s" in capsys.readouterr().err


def test_defaults_and_host_list() -> None:
    args = build_parser().parse_args(["serve", "--self-managed-tls", "guard-system/guard-tls",
                                      "--tls-hosts", "Guard.guard-system.svc, 0:0::1,guard.guard-system.svc,"])
    assert args.self_managed_tls == ("guard-system", "guard-tls")
    assert args.tls_hosts == ("guard.guard-system.svc", "::1")
    assert (args.certificate_validity, args.renew_before) == (dt.timedelta(days=90), dt.timedelta(days=30))


@pytest.mark.parametrize(("argv", "message"), [
    (["--self-managed-tls", "guard-tls"], "argument --self-managed-tls: 'guard-tls' is not NAMESPACE/SECRET"),
    (["--self-managed-tls", "Guard/tls"], "argument --self-managed-tls: 'Guard/tls' is not NAMESPACE/SECRET"),
    (["--tls-hosts", "a..b"], "argument --tls-hosts: 'a..b' is neither a DNS name nor an IP address"),
    (["--tls-hosts", " , "], "argument --tls-hosts: no host given"),
])
def test_bad_values_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


SELF_MANAGED = ["--self-managed-tls", "guard-system/guard-tls", "--webhook-configuration", "guard",
                "--tls-hosts", HOST]


@pytest.mark.parametrize(("argv", "message"), [
    ([*SELF_MANAGED, "--certificate-validity", "30d", "--renew-before", "30d"],
     "--renew-before (30d) must be shorter than --certificate-validity (30d)"),
    ([*SELF_MANAGED, "--certificate-validity", "1h"],
     "--renew-before (30d) must be shorter than --certificate-validity (1h)"),
    ([*SELF_MANAGED, "--dev"], "--self-managed-tls keeps its own certificate; leave out --dev, --tls-cert and --tls-key"),
    (SELF_MANAGED[:2], "--self-managed-tls needs --webhook-configuration and --tls-hosts"),
    (["--dev", "--tls-hosts", HOST], "--webhook-configuration and --tls-hosts go with --self-managed-tls"),
])
def test_inconsistent_options_exit_2(argv: list[str], message: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--kubeconfig", str(tmp_path / "absent"), *argv]) == 2
    assert capsys.readouterr().err == f"vllm-env-guard serve: {message}\n"


# --- the Secret's life ------------------------------------------------------------------------


def test_renewals_and_ca_rolls_never_leave_a_client_without_the_ca() -> None:
    """Step a clock second by second through two CA lifetimes. At every step, a client whose copy
    of the bundle is R - 2s old accepts the certificate served now, and the certificate a lagging
    replica still serves (read R - 2s ago) is accepted with the bundle published now."""
    s, lag = settings(), int(R.total_seconds()) - 2
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    states: list[Material] = []
    signers, serials, bundle_sizes = [], set(), set()
    material = Material()
    for second in range(int(2 * s.ca_validity.total_seconds()) + 60):
        now = start + dt.timedelta(seconds=second)
        material, _ = plan(material, s, now)
        states.append(material)
        assert material.signer is not None and material.cert is not None
        assert plan(material, s, now)[1] == []  # settled: a second round at the same time changes nothing
        stale = states[max(0, second - lag)]
        assert verifies(material.cert, stale.trusted, now), f"new certificate not in the stale bundle at +{second}s"
        assert verifies(stale.cert, material.trusted, now), f"lagging replica's certificate refused at +{second}s"
        assert all(ca.not_valid_after_utc > now for ca in material.trusted)
        if material.signer.cert not in signers:
            signers.append(material.signer.cert)
        serials.add(material.cert.serial_number)
        bundle_sizes.add(len(material.trusted))
    assert len(signers) >= 3  # the first CA and at least two rolls
    assert bundle_sizes == {1, 2}
    assert len(serials) >= int(2 * s.ca_validity / (V - R)) - 1  # renewed every V - R or sooner


def test_a_new_ca_is_trusted_for_r_before_it_signs() -> None:
    s = settings()
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    material, changes = plan(Material(), s, start)
    assert changes == ["new CA", "new serving certificate"]
    first = material.signer
    assert first is not None and first.cert.not_valid_after_utc == start + 4 * V
    joins = start + 4 * V - (V + 2 * R)
    material, changes = plan(material, s, joins - dt.timedelta(seconds=1))
    assert material.pending is None
    material, changes = plan(material, s, joins)
    assert "new CA joined the trust bundle" in changes and material.pending is not None
    assert len(material.trusted) == 2 and material.signer is first
    material, changes = plan(material, s, joins + R - dt.timedelta(seconds=1))
    assert material.signer is first
    material, changes = plan(material, s, joins + R)
    assert changes == ["new CA now signs", "new serving certificate"]
    assert material.signer is not None and material.signer.cert != first.cert and material.pending is None
    assert material.cert is not None and material.cert.issuer == material.signer.cert.subject
    material, changes = plan(material, s, first.cert.not_valid_after_utc)  # (the certificate is due, too)
    assert material.signer is not None
    assert "expired CA left the trust bundle" in changes and material.trusted == (material.signer.cert,)


def test_secret_contents_are_repaired() -> None:
    s = settings()
    now = dt.datetime.now(dt.UTC)
    good, _ = plan(Material(), s, now)
    data = good.encode()
    assert Material.parse(data).encode() == data
    assert plan(Material.parse(data), s, now)[1] == []

    for broken in ({**data, "tls.crt": b"garbage"}, {**data, "tls.key": data["ca.key"]},
                   {k: v for k, v in data.items() if k != "tls.key"}):
        fixed, changes = plan(Material.parse(broken), s, now)
        assert changes == ["new serving certificate"] and fixed.encode()["ca.key"] == data["ca.key"]
        assert verifies(fixed.cert, fixed.trusted, now)

    other_hosts, changes = plan(good, settings(hosts=("other.svc",)), now)
    assert changes == ["new serving certificate"]
    assert verifies(other_hosts.cert, other_hosts.trusted, now, "other.svc")
    assert verifies(other_hosts.cert, other_hosts.trusted, now, HOST)  # names are added until the next renewal
    renewed, _ = plan(other_hosts, settings(hosts=("other.svc",)), now + V - R)
    assert not verifies(renewed.cert, renewed.trusted, now + V - R, HOST)

    # The CA key is lost: a new CA signs, the old one stays trusted (replicas may still serve its certificate).
    lost, changes = plan(Material.parse({**data, "ca.key": b""}), s, now)
    assert changes == ["new CA", "new serving certificate"]
    assert lost.trusted[0] == good.trusted[0] and len(lost.trusted) == 2
    assert verifies(good.cert, lost.trusted, now) and verifies(lost.cert, lost.trusted, now)


# --- one replica against an in-memory API -----------------------------------------------------


class FakeCluster:
    """The Secret and the webhook configuration with resourceVersions; 409 on a stale write."""

    def __init__(self, webhooks: int = 2) -> None:
        self.version = 0
        self.secret: dict[str, Any] | None = None
        self.webhooks: dict[str, Any] | None = self._stamp({
            "metadata": {"name": "guard"},
            "webhooks": [{"name": f"w{i}.guard.io", "clientConfig": {"url": "https://x/validate"}}
                         for i in range(webhooks)]}) if webhooks else None
        self.before_write: Callable[[], object] | None = None
        self.secret_writes = 0

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.version)
        return obj

    def _hook(self) -> None:
        hook, self.before_write = self.before_write, None
        if hook:
            hook()

    def read_secret(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.secret)

    def create_secret(self, body: dict[str, Any]) -> None:
        self._hook()
        if self.secret is not None:
            raise Conflict("exists")
        self.secret, self.secret_writes = self._stamp(body), self.secret_writes + 1

    def replace_secret(self, body: dict[str, Any]) -> None:
        self._hook()
        assert self.secret is not None
        if body["metadata"]["resourceVersion"] != self.secret["metadata"]["resourceVersion"]:
            raise Conflict("stale")
        self.secret, self.secret_writes = self._stamp(body), self.secret_writes + 1

    def read_webhooks(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.webhooks)

    def replace_webhooks(self, body: dict[str, Any]) -> None:
        assert self.webhooks is not None
        if body["metadata"]["resourceVersion"] != self.webhooks["metadata"]["resourceVersion"]:
            raise Conflict("stale")
        self.webhooks = self._stamp(body)

    def data(self, key: str) -> bytes:
        assert self.secret is not None
        return base64.b64decode(self.secret["data"][key])

    def bundles(self) -> set[str]:
        assert self.webhooks is not None
        return {w["clientConfig"].get("caBundle", "") for w in self.webhooks["webhooks"]}


@pytest.fixture
def replicas() -> Iterator[list[SelfManagedTLS]]:
    yield from stopped_afterwards()


def replica(cluster: FakeCluster, made: list[SelfManagedTLS], **options: Any) -> SelfManagedTLS:
    made.append(SelfManagedTLS(cluster, settings(**options)))  # type: ignore[arg-type]
    return made[-1]


def test_first_round_creates_the_secret_and_sets_every_ca_bundle(replicas: list[SelfManagedTLS]) -> None:
    cluster = FakeCluster()
    one = replica(cluster, replicas)
    one.sync()
    assert cluster.secret is not None and cluster.secret["type"] == "kubernetes.io/tls"
    assert sorted(cluster.secret["data"]) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    assert cluster.bundles() == {base64.b64encode(cluster.data("ca.crt")).decode()}
    assert Path(one.cert_path).read_bytes() == cluster.data("tls.crt")
    assert Path(one.key_path).read_bytes() == cluster.data("tls.key")
    assert (Path(one.key_path).stat().st_mode & 0o777, Path(one.directory).stat().st_mode & 0o777) == (0o600, 0o700)
    versions = (cluster.secret["metadata"]["resourceVersion"], cluster.webhooks and cluster.webhooks["metadata"])
    one.sync()
    assert (cluster.secret["metadata"]["resourceVersion"], cluster.webhooks and cluster.webhooks["metadata"]) == versions


def test_loser_of_a_race_serves_the_winners_certificate(replicas: list[SelfManagedTLS],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    cluster = FakeCluster()
    first, second = replica(cluster, replicas), replica(cluster, replicas)
    cluster.before_write = second.sync  # the second replica writes between the first's read and write
    with caplog.at_level(logging.INFO, logger="vllm_env_guard.server"):
        first.sync()
    assert cluster.secret_writes == 1
    assert Path(first.cert_path).read_bytes() == Path(second.cert_path).read_bytes() == cluster.data("tls.crt")
    assert "another replica updated the certificate Secret first; using its certificates" in caplog.messages


def test_a_missing_configuration_is_reported_once_and_set_when_it_appears(
        replicas: list[SelfManagedTLS], caplog: pytest.LogCaptureFixture) -> None:
    cluster = FakeCluster(webhooks=0)
    one = replica(cluster, replicas)
    with caplog.at_level(logging.WARNING, logger="vllm_env_guard.server"):
        one.sync()
        one.sync()
    assert caplog.messages == ["self-managed certificates: will retry"]
    assert caplog.records[0].fields["error"] == (  # type: ignore[attr-defined]
        "ValidatingWebhookConfiguration guard not found; its caBundle will be set once it exists")
    cluster.webhooks = FakeCluster(webhooks=1).webhooks
    one.sync()
    assert cluster.bundles() == {base64.b64encode(cluster.data("ca.crt")).decode()}


def test_reset_ca_bundle_is_restored(replicas: list[SelfManagedTLS]) -> None:
    cluster = FakeCluster()
    one = replica(cluster, replicas)
    one.sync()
    assert cluster.webhooks is not None
    cluster.webhooks["webhooks"][1]["clientConfig"]["caBundle"] = ""  # e.g. a helm upgrade rendering it empty
    one.sync()
    assert cluster.bundles() == {base64.b64encode(cluster.data("ca.crt")).decode()}


def test_replicas_with_different_hosts_settle_on_all_of_them(replicas: list[SelfManagedTLS]) -> None:
    """During a rolling upgrade that changes --tls-hosts, old and new replicas must not take turns."""
    cluster = FakeCluster()
    old, new = replica(cluster, replicas), replica(cluster, replicas, hosts=(HOST, "guard.svc"))
    old.sync()
    new.sync()
    for _ in range(3):
        old.sync()
        new.sync()
    assert cluster.secret_writes == 2
    cert = x509.load_pem_x509_certificate(cluster.data("tls.crt"))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(map(str, (n.value for n in sans))) == ["127.0.0.1", HOST, "guard.svc"]
    assert Path(old.cert_path).read_bytes() == Path(new.cert_path).read_bytes() == cluster.data("tls.crt")


def test_logs_carry_no_key_material(replicas: list[SelfManagedTLS], caplog: pytest.LogCaptureFixture) -> None:
    cluster = FakeCluster()
    with caplog.at_level(logging.DEBUG):
        replica(cluster, replicas).sync()
    text = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert "certificate Secret updated" in text and "caBundle set" in text
    for key in ("ca.key", "tls.key", "tls.crt"):
        pem = cluster.data(key)
        body = b"".join(pem.splitlines()[1:-1]).decode()
        assert body[:40] not in text and cluster.secret is not None and cluster.secret["data"][key][:40] not in text


def test_stop_removes_the_private_directory() -> None:
    one = SelfManagedTLS(FakeCluster(), settings())  # type: ignore[arg-type]
    one.sync()
    one.stop()
    assert not Path(one.directory).exists()
