"""The container files agree with the code: compose.yaml and the Dockerfile
name only real settings, publish the port Segue listens on, ask /healthz, and
put config/ and dialogs/ where the settings look for them.

No image is built here (that needs a registry): the files are read as Docker
and Compose read them and checked against `Settings` and the shipped config.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.assembly.serving import SHUTDOWN_GRACE_SECONDS
from bot.assembly.workers import STOP_GRACE_SECONDS
from bot.core.settings import DEFAULT_CONFIG, Settings

ROOT = Path(__file__).resolve().parents[2]
PREFIX = str(Settings.model_config.get("env_prefix", ""))


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON array form (`["segue", "run"]`); fails on the shell form,
        which would run under /bin/sh and keep SIGTERM from Segue."""
        form = json.loads(self.arguments)
        assert isinstance(form, list) and all(isinstance(part, str) for part in form)
        return form


def dockerfile_stages(text: str) -> list[list[Instruction]]:
    """The instructions of each stage, in order; the last is the image."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, arguments = line.strip().partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"{instruction.keyword} before the first FROM"
        stages[-1].append(instruction)
    return stages


def image_stage() -> list[Instruction]:
    return dockerfile_stages((ROOT / "Dockerfile").read_text(encoding="utf-8"))[-1]


def only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the image stage, found {len(found)}"
    return found[0]


def healthcheck_command(instruction: Instruction) -> list[str]:
    """HEALTHCHECK [--option=value ...] CMD [...]: the command."""
    options, _, command = instruction.arguments.partition("CMD ")
    assert command, "HEALTHCHECK without CMD"
    return Instruction("CMD", command).exec_form()


def healthcheck_timing(instruction: Instruction) -> dict[str, float]:
    """HEALTHCHECK's options, named as in compose.yaml (`start_period`)."""
    options = instruction.arguments.partition("CMD ")[0].split()
    pairs = (o.removeprefix("--").partition("=") for o in options)
    return {name.replace("-", "_"): seconds(value) if name != "retries" else float(value)
            for name, _, value in pairs}


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def service(name: str) -> dict[str, Any]:
    services = compose().get("services") or {}
    assert name in services, f"compose.yaml has no service {name!r}"
    found = services[name]
    assert isinstance(found, dict)
    return found


def command_of(definition: dict[str, Any]) -> list[str]:
    command = definition.get("command")
    return command.split() if isinstance(command, str) else [str(p) for p in command or []]


def option(command: list[str], name: str) -> str | None:
    """The value after `name` in a command line, or None."""
    return command[command.index(name) + 1] if name in command[:-1] else None


def seconds(duration: str | int) -> float:
    """A Compose duration (`90s`, `1m30s`, `1500ms`) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), duration
    return sum(float(number) * units[unit] for number, unit in parts)


def shipped_port() -> int:
    """The port `segue run` listens on in the image: config/segue.yml's, else
    the default."""
    config = yaml.safe_load((ROOT / DEFAULT_CONFIG).read_text(encoding="utf-8")) or {}
    return int(config.get("port", Settings.model_fields["port"].default))


# compose.yaml


def test_compose_runs_redis_and_segue() -> None:
    assert {"redis", "segue"} <= set(compose()["services"])


def test_segue_is_published_on_the_port_it_listens_on_and_the_image_exposes() -> None:
    (published,) = service("segue")["ports"]
    host_port, _, container_port = str(published).rpartition(":")
    exposed = only(image_stage(), "EXPOSE").arguments.split("/")[0]
    default = Settings.model_fields["port"].default
    assert int(container_port) == default == shipped_port() == int(exposed)
    assert host_port.rpartition(":")[2] == container_port


def test_both_services_have_healthchecks_and_segues_asks_healthz() -> None:
    redis_check = service("redis")["healthcheck"]["test"]
    assert redis_check[0] == "CMD" and redis_check[1:] == ["redis-cli", "ping"]
    segue_check = service("segue")["healthcheck"]["test"]
    assert segue_check[0] == "CMD"
    assert any(f":{shipped_port()}/healthz" in part for part in segue_check)
    # The same probe as the image's, so `docker run` and compose agree.
    image_check = only(image_stage(), "HEALTHCHECK")
    assert segue_check[1:] == healthcheck_command(image_check)
    timing = healthcheck_timing(image_check)
    assert set(timing) == {"interval", "timeout", "start_period", "retries"}
    compose_timing = {name: seconds(value) if name != "retries" else float(value)
                      for name, value in service("segue")["healthcheck"].items()
                      if name != "test"}
    assert compose_timing == timing


def test_every_segue_variable_in_compose_and_the_dockerfile_is_a_setting() -> None:
    text = "\n".join((ROOT / name).read_text(encoding="utf-8")
                     for name in ("compose.yaml", "Dockerfile"))
    named = set(re.findall(rf"\b{PREFIX}[A-Z0-9_]+", text))
    assert named, "compose.yaml names no setting at all"
    unknown = {v for v in named if v.removeprefix(PREFIX).lower() not in Settings.model_fields}
    assert not unknown, f"not settings of Segue: {sorted(unknown)}"


def test_redis_keeps_an_append_only_file_on_a_named_volume() -> None:
    redis = service("redis")
    assert option(command_of(redis), "--appendonly") == "yes"
    mounts = [str(m).split(":") for m in redis["volumes"]]
    volumes = {source for source, target, *_ in mounts if target == "/data"}
    assert volumes and volumes <= set(compose().get("volumes") or {}), \
        "Redis's /data must be a named volume declared under volumes:"


def test_segue_waits_for_a_healthy_redis_and_stores_there() -> None:
    segue = service("segue")
    assert segue["depends_on"]["redis"]["condition"] == "service_healthy"
    redis_url = segue["environment"][f"{PREFIX}REDIS_URL"]
    assert urlsplit(redis_url).hostname == "redis"


def test_segue_runs_on_every_interface_and_its_workers_share_one_secret() -> None:
    command = command_of(service("segue"))
    assert command[:2] == ["segue", "run"]
    assert option(command, "--host") == "0.0.0.0"
    # The command, not .env, holds the port: the published port and the
    # health checks depend on it.
    assert option(command, "--port") == str(shipped_port())
    workers = int(option(command, "--workers") or 1)
    if workers > 1:
        # Several workers need Redis and one web chat secret: compose must
        # refuse to start, with a message, rather than run without it.
        secret = str(service("segue")["environment"][f"{PREFIX}WEBCHAT_SECRET"])
        assert re.fullmatch(rf"\$\{{{PREFIX}WEBCHAT_SECRET:\?.+\}}", secret), secret
        assert f"{PREFIX}REDIS_URL" in service("segue")["environment"]


def test_docker_kills_segue_only_after_segue_has_had_its_own_grace() -> None:
    segue = service("segue")
    # A worker drains for SHUTDOWN_GRACE_SECONDS; the supervisor kills one
    # still running after STOP_GRACE_SECONDS. Docker's SIGKILL comes after both.
    grace = seconds(segue["stop_grace_period"])
    assert grace > STOP_GRACE_SECONDS and grace > SHUTDOWN_GRACE_SECONDS
    assert segue.get("restart") in ("always", "unless-stopped", "on-failure")


def test_settings_come_from_an_optional_dot_env_that_the_readme_says_to_make() -> None:
    (env_file,) = service("segue")["env_file"]
    assert env_file == {"path": ".env", "required": False}
    assert "cp .env.example .env" in (ROOT / "README.md").read_text(encoding="utf-8")


# Dockerfile


def test_the_image_healthcheck_asks_healthz_on_the_exposed_port() -> None:
    stage = image_stage()
    command = healthcheck_command(only(stage, "HEALTHCHECK"))
    exposed = only(stage, "EXPOSE").arguments.split("/")[0]
    assert any(f":{exposed}/healthz" in part for part in command)
    assert "curl" not in command and "wget" not in command  # not in a slim image


def test_the_image_runs_as_a_user_other_than_root() -> None:
    users = [i.arguments for i in image_stage() if i.keyword == "USER"]
    assert users, "the image runs as root: no USER"
    user = users[-1].partition(":")[0]
    assert user not in ("root", "0", "")


def test_the_image_runs_segue_on_every_interface_as_pid_1() -> None:
    stage = image_stage()
    command = only(stage, "CMD").exec_form()
    assert command[:2] == ["segue", "run"]
    assert option(command, "--host") == "0.0.0.0"
    # compose.yaml replaces CMD with its own `segue run ...`: an ENTRYPOINT
    # would be prepended to it.
    assert not [i for i in stage if i.keyword == "ENTRYPOINT"]


def test_the_image_holds_config_and_dialogs_where_the_settings_look() -> None:
    stage = image_stage()
    workdir = PurePosixPath(only(stage, "WORKDIR").arguments)
    copied: dict[str, PurePosixPath] = {}
    for copy in (i for i in stage if i.keyword == "COPY" and "--from" not in i.arguments):
        *sources, destination = copy.arguments.split()
        for source in sources:
            copied[source.rstrip("/")] = workdir / destination
    defaults = Settings.model_fields
    wanted = {
        str(DEFAULT_CONFIG.parent): workdir / DEFAULT_CONFIG.parent,
        str(PurePosixPath(defaults["demo_orders"].default).parent):
            workdir / PurePosixPath(defaults["demo_orders"].default).parent,
        defaults["dialogs_dir"].default: workdir / defaults["dialogs_dir"].default,
    }
    assert {source: copied.get(source) for source in wanted} == wanted


def test_both_stages_start_from_one_pinned_python_311_slim_image() -> None:
    stages = dockerfile_stages((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    assert len(stages) >= 2, "a builder stage, then the image"
    bases = {stage[0].arguments.split()[0] for stage in stages}
    (base,) = bases
    name, _, tag = base.partition(":")
    assert name == "python" and tag.startswith("3.11") and "slim" in tag


@pytest.mark.parametrize("variable", ["PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"])
def test_the_image_sets_python_for_a_container(variable: str) -> None:
    environment = " ".join(i.arguments for i in image_stage() if i.keyword == "ENV")
    assert re.search(rf"\b{variable}=1\b", environment)


def test_the_builder_installs_segue_without_the_dev_extra_or_a_pip_cache() -> None:
    builder = dockerfile_stages((ROOT / "Dockerfile").read_text(encoding="utf-8"))[0]
    installs = [i.arguments for i in builder if i.keyword == "RUN" and "pip install" in i.arguments]
    assert installs and all("--no-cache-dir" in i and "[dev]" not in i for i in installs)


def test_the_build_context_leaves_out_secrets_and_what_only_development_uses() -> None:
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".env", ".git", ".venv", "tests", "bench"} <= ignored
