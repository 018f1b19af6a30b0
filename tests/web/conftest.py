"""Fixtures of the API tests: one user per role, token clients, a small two-site fabric, a private broker DB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from fabric_ops.celery import app as celery_app
from fabric_ops.config.models import ComplianceResult, ConfigBackup, DeviceJob, PushJob, RoceProfile, UnderlayProfile
from fabric_ops.topology.models import Pod, Transceiver
from fabric_ops.web.roles import assign_role
from tests.topology.factories import two_sites

# A Redis database of its own on the real broker, so the tests can count what they enqueue.
TEST_BROKER_URL = "redis://127.0.0.1:6379/11"
ROLE_USERS = ("viewer", "operator", "operator2", "admin")


def make_user(username: str, role: str | None):
    user = get_user_model().objects.create_user(username, password=f"pw-{username}-0123")
    if role:
        assign_role(user, role)
    return user


def login(users: dict, name: str, **kwargs) -> Client:
    """A session client (the HTML pages) logged in as ``users[name]``; kwargs go to Client (enforce_csrf_checks)."""
    client = Client(**kwargs)
    client.force_login(users[name])
    return client


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    """PBKDF2's deliberate slowness is not under test here; MD5 keeps user creation instant."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def users(db) -> dict:
    """The role groups come from the data migration (and post_migrate); tests use them as they are."""
    made = {"nobody": make_user("nobody", None)}
    for name in ROLE_USERS:
        made[name] = make_user(name, name.rstrip("2"))
    return made


@pytest.fixture
def clients(users) -> dict[str, APIClient]:
    """Token-authenticated clients by user name, plus ``anonymous``."""
    out = {"anonymous": APIClient()}
    for name, user in users.items():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        out[name] = client
    return out


@pytest.fixture
def fabric(db):
    """Two sites (dx-fab-a, dx-fab-b), a DCI backbone, spans, hosts, plus a pod, an optic and config rows."""
    built = two_sites("dx")
    Pod.objects.create(fabric=built.fabric, name="pod1", index=1)
    Transceiver.objects.create(name="400G-DR4", form_factor="OSFP", speed_gbps=400, reach_m=500, typical_power_w=10)
    RoceProfile.objects.create(name="default")
    UnderlayProfile.objects.create(name="default")
    leaf = built.devices["dx-a-leaf1"]
    job = PushJob.objects.create(requested_by="operator", status="succeeded")
    DeviceJob.objects.create(job=job, device=leaf, status="confirmed", diff="+ username admin secret sha512 $6$abc")
    ConfigBackup.objects.create(
        device=leaf, sha256="0" * 64, text="hostname dx-a-leaf1\nusername admin secret 0 hunter2"
    )
    ComplianceResult.objects.create(device=leaf, compliant=True)
    return built


@pytest.fixture
def broker(settings) -> Iterator[redis.Redis]:
    """Point the Celery app (and health) at a private Redis DB of the real broker; yields a client to it."""
    client = redis.Redis.from_url(TEST_BROKER_URL)
    client.flushdb()
    old = celery_app.conf.broker_url
    _repoint(TEST_BROKER_URL)
    settings.CELERY_BROKER_URL = TEST_BROKER_URL
    try:
        yield client
    finally:
        _repoint(old)
        client.flushdb()
        client.close()


def _repoint(url: str) -> None:
    """Make the app build its connection pools anew for ``url`` (kombu keeps one pool per URL, so none is closed)."""
    celery_app.conf.broker_url = url
    celery_app._pool = None
    if "amqp" in celery_app.__dict__:
        celery_app.amqp._producer_pool = None
