"""docker-compose.yml cannot rot while Docker is unavailable: every command and variable is checked here."""
from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import yaml

from crmkit.settings import KNOWN_VARIABLES, SERVICES, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
INFRASTRUCTURE = {"rabbitmq", "postgres", "mailcatcher"}
# Read by deploy/gunicorn.conf.py rather than by crmkit.settings.
GUNICORN_VARIABLES = {"GUNICORN_WORKERS"}


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE.exists(), "docker-compose.yml is missing at the repository root"
    return yaml.safe_load(COMPOSE.read_text())


def argv_of(container: dict) -> list[str]:
    command = container.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def app_containers(compose) -> dict:
    return {name: c for name, c in compose["services"].items() if name not in INFRASTRUCTURE - {"mailcatcher"}
            and (c.get("image", "").startswith("crm-app") or (c.get("build") or {}).get("context") == ".")}


def test_the_planned_containers_are_there(compose):
    names = set(compose["services"])
    expected = INFRASTRUCTURE | {f"{s}-{role}" for s in SERVICES for role in ("web", "worker")}
    assert expected <= names, f"missing: {sorted(expected - names)}"


def test_no_scalable_container_pins_a_name_or_a_host_port(compose):
    for service in SERVICES:
        for role in ("web", "worker"):
            container = compose["services"][f"{service}-{role}"]
            assert "container_name" not in container
            if not (service == "contracts" and role == "web"):
                assert not container.get("ports"), f"{service}-{role} publishes a port"


def check_entry_point(argv: list[str]) -> str:
    """Resolve a container's command to this repository's code; returns what it named."""
    program = Path(argv[0]).name
    if program == "gunicorn":
        apps = [a for a in argv[1:] if re.fullmatch(r"[\w.]+:\w+\(\)", a)]
        assert len(apps) == 1, f"gunicorn without an app factory: {argv}"
        module_name, factory = apps[0][:-2].split(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, factory, None)), f"{module_name} has no {factory}()"
        if "-c" in argv:
            assert (ROOT / argv[argv.index("-c") + 1]).is_file(), f"gunicorn config missing: {argv}"
        return apps[0]
    if program.startswith("python"):
        assert "-m" in argv, f"python without -m: {argv}"
        module_name = argv[argv.index("-m") + 1]
        spec = importlib.util.find_spec(module_name)
        assert spec is not None and spec.origin and Path(spec.origin).is_relative_to(ROOT), \
            f"{module_name} is not a module of this repository"
        source = Path(spec.origin).read_text()
        assert "__main__" in source, f"{module_name} cannot be run with -m"
        return module_name
    raise AssertionError(f"unknown entry point: {argv}")


def test_every_command_names_a_real_entry_point_of_this_repository(compose):
    named = {}
    for name, container in compose["services"].items():
        argv = argv_of(container)
        if not argv:
            assert name in {"rabbitmq", "postgres"}, f"{name} has no command"
            continue
        named[name] = check_entry_point(argv)
    for service in SERVICES:
        assert named[f"{service}-web"] == f"services.{service}.app:create_app()"
        assert named[f"{service}-worker"] == f"services.{service}.worker"
    assert named["mailcatcher"] == "tools.mailcatcher"


def test_each_web_container_listens_where_its_healthcheck_and_the_others_look(compose):
    from crmkit.settings import DEFAULT_PORTS
    for service in SERVICES:
        container = compose["services"][f"{service}-web"]
        env = container["environment"]
        assert str(env["PORT"]) == str(DEFAULT_PORTS[service])
        for other in SERVICES:  # the URLs every container is given point at the other web containers' ports
            assert env[f"{other.upper()}_URL"] == f"http://{other}-web:{DEFAULT_PORTS[other]}"


def test_every_variable_set_for_our_containers_is_one_the_settings_read(compose):
    for name, container in app_containers(compose).items():
        env = container.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        unknown = set(env) - KNOWN_VARIABLES - GUNICORN_VARIABLES
        assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


class Recording(dict):
    """An environment that remembers which names were asked for."""

    def __init__(self, *args):
        super().__init__(*args)
        self.asked = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)


def test_the_compose_environment_is_really_read_and_gives_each_service_its_schema(compose, tmp_path):
    """KNOWN_VARIABLES is not just a list: the settings ask for each name the compose file sets."""
    sources = "\n".join(p.read_text() for p in [*(ROOT / "crmkit").rglob("*.py"), ROOT / "deploy/gunicorn.conf.py"])
    for name, container in app_containers(compose).items():
        if name == "mailcatcher":
            continue
        env = Recording({k: str(v) for k, v in container["environment"].items()})
        env["CRM_VAR_DIR"] = str(tmp_path)  # the container's /app/var is not writable here
        service = name.rsplit("-", 1)[0]
        settings = Settings.from_env(service, env)
        assert settings.amqp_url and not settings.embedded
        assert settings.db_schema == service and settings.database_url.startswith("postgresql://")
        unread = {v for v in container["environment"] if v not in env.asked and f'"{v}"' not in sources}
        assert not unread, f"{name}: nothing reads {sorted(unread)}"


def test_logging_accepts_the_compose_files_lowercase_level(monkeypatch, compose):
    import logging

    from crmkit.service import setup_logging
    level = compose["services"]["contracts-worker"]["environment"]["CRM_LOG_LEVEL"]
    monkeypatch.setenv("CRM_LOG_LEVEL", "info" if "${" in level else level)
    setup_logging()  # raised ValueError("Unknown level: 'info'") before the level was upper-cased
    assert logging.getLevelName("INFO") == logging.INFO
