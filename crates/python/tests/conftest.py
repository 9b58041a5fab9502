"""Shared paths and helpers of the pytest suite: the repository's fixtures and shipped model,
and the `seqbridge` command line that Python results are compared with."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import seqbridge

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "assets" / "date-normalizer"
DATES = ROOT / "assets" / "samples" / "dates.txt"
FIXTURES = ROOT / "tests" / "fixtures"
# Generous: the machine running CI may be a busy 2-core one with a software GPU.
CLI_TIMEOUT_S = 900


def cli_path() -> Path:
    """The CLI binary: $SEQBRIDGE_CLI, else the workspace's debug build."""
    path = Path(os.environ.get("SEQBRIDGE_CLI", ROOT / "target" / "debug" / "seqbridge"))
    if not path.exists():
        pytest.fail(f"{path} does not exist: build it with `cargo build --bin seqbridge` (or set SEQBRIDGE_CLI)")
    return path


def run_cli(*args: str) -> str:
    """Runs the CLI from the repository root and returns its stdout; fails the test with its
    stderr when it exits non-zero."""
    env = dict(os.environ, NODEVICE_SELECT="1")
    env.setdefault("XDG_RUNTIME_DIR", "/tmp")
    p = subprocess.run(
        [str(cli_path()), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )
    if p.returncode != 0:
        pytest.fail(f"seqbridge {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def cli_json(*args: str) -> dict:
    return json.loads(run_cli(*args, "--format", "json"))


def reference(family: str) -> dict:
    """transformers' outputs for a fixture model, stored by tools/make_fixtures.py."""
    return json.loads((FIXTURES / "models" / family / "reference.json").read_text())


@pytest.fixture(scope="session")
def shipped() -> seqbridge.Model:
    return seqbridge.Model(SHIPPED)


@pytest.fixture(scope="session")
def dates() -> list[str]:
    return DATES.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="session")
def cli_dates() -> list[str]:
    """`seqbridge translate --input assets/samples/dates.txt`, line by line."""
    return run_cli("translate", "--input", str(DATES)).splitlines()
