"""`pip install .` (not editable) gives a working `amend`: migrations, deny-list inside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

import httpx

from tests.conftest import CHEAP_ARGON2, SECRET
from tests.db import BACKEND
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def built_wheel_installs_and_serves(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("amend-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    amend = env_dir / "bin" / "amend"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMEND_")}
    env.update(CHEAP_ARGON2, AMEND_SECRET_KEY=SECRET)
    version = subprocess.run([str(amend), "--version"], capture_output=True, text=True, env=env)
    assert version.stdout.startswith("amend ")
    created = subprocess.run(
        [str(amend), "project", "create", "shop", "--json"],
        cwd=run_dir,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    key = json.loads(created.stdout)["api_key"]
    port = free_port()
    server = subprocess.Popen(
        [str(amend), "serve", "--port", str(port)],
        cwd=run_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        # The packaged deny-list is in force: a common password is refused.
        r = httpx.post(
            f"http://127.0.0.1:{port}/1/ce/users",
            params={"key": key},
            json={"username": "ann", "password": "password1"},
        )
        assert (r.status_code, r.json()["error"]) == (400, "PASSWORD_POLICY")
        r = httpx.post(
            f"http://127.0.0.1:{port}/1/ce/users",
            params={"key": key},
            json={"username": "ann", "password": "Zght943!x"},
        )
        assert r.status_code == 201
    finally:
        server.terminate()
        server.wait(timeout=30)


# Packaging does not depend on the database backend: run it in the SQLite pass only.
if BACKEND == "sqlite":
    test_built_wheel_installs_and_serves = built_wheel_installs_and_serves
