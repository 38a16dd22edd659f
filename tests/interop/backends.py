"""Real OTLP backends for the interop tests: Arize Phoenix and MLflow, each a server from the package
registry in a virtualenv of its own (they pin packages our test environment must not share).

The virtualenvs live in `.interop/` at the repository root and are made on first use (under a file
lock, so parallel workers make them once); LLMTRACE_INTEROP_DIR points elsewhere. Pinned versions:
the ones INTEROP_NOTES were checked against. Servers listen on free ports on 127.0.0.1 with their
data in a temporary directory; every wait is a guard against a hang, never a verdict.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PHOENIX = "arize-phoenix==20.26.1"
MLFLOW = "mlflow==3.17.2"
START_GUARD_S = 300.0  # a cold first start (migrations, imports) on a loaded 2-core machine


def interop_dir() -> Path:
    return Path(os.environ.get("LLMTRACE_INTEROP_DIR") or ROOT / ".interop")


def ensure_venv(name: str, requirement: str) -> Path:
    """The bin directory of a virtualenv holding `requirement`, made if missing (uv when present: faster)."""
    base = interop_dir()
    base.mkdir(parents=True, exist_ok=True)
    venv = base / name
    stamp = venv / ".installed"
    with open(base / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == requirement:
            return venv / "bin"
        shutil.rmtree(venv, ignore_errors=True)
        uv = shutil.which("uv", path=os.path.dirname(sys.executable)) or shutil.which("uv")
        if uv:
            subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
            subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), requirement], check=True)
        else:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", requirement], check=True)
        stamp.write_text(requirement)
    return venv / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 60) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        text = resp.read().decode()
    return json.loads(text) if text.strip() else None


class Server:
    name = "server"

    def __init__(self, argv: list[str], env: dict[str, str], health_url: str, log: Path):
        self.log = log
        self._out = open(log, "wb")
        self.proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + START_GUARD_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} while starting:\n{self.tail()}")
            try:
                urllib.request.urlopen(health_url, timeout=5).read()
                return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not answer {health_url} within {START_GUARD_S:.0f} s:\n{self.tail()}")
                time.sleep(0.5)

    def tail(self) -> str:
        self._out.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self._out.close()


class Phoenix(Server):
    """`phoenix serve`: OTLP/HTTP at /v1/traces, read back through its REST API and GraphQL."""

    name = "phoenix"

    def __init__(self, bin_dir: Path, workdir: Path):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        workdir.mkdir(parents=True, exist_ok=True)
        env = {"PHOENIX_WORKING_DIR": str(workdir), "PHOENIX_PORT": str(port), "PHOENIX_HOST": "127.0.0.1",
               "PHOENIX_GRPC_PORT": str(free_port()), "PHOENIX_TELEMETRY_ENABLED": "false"}
        super().__init__([str(bin_dir / "phoenix"), "serve"], env, f"{self.url}/healthz", workdir / "phoenix.log")

    @property
    def otlp(self) -> str:
        return f"{self.url}/v1/traces"

    def projects(self) -> list[str]:
        return [p["name"] for p in http("GET", f"{self.url}/v1/projects")["data"]]

    def spans(self, project: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            q = "?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            page = http("GET", f"{self.url}/v1/projects/{project}/spans{q}")
            out += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def graphql(self, query: str, **variables: Any) -> Any:
        answer = http("POST", f"{self.url}/graphql", {"query": query, "variables": variables})
        if answer.get("errors"):
            raise AssertionError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]


class Mlflow(Server):
    """`mlflow server` on a SQLite store: OTLP/HTTP at /v1/traces (with x-mlflow-experiment-id), read
    back with `mlflow.search_traces` run by the server's own interpreter (read_mlflow.py)."""

    name = "mlflow"

    def __init__(self, bin_dir: Path, workdir: Path):
        port = free_port()
        self.bin_dir = bin_dir
        self.url = f"http://127.0.0.1:{port}"
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [str(bin_dir / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
                "--default-artifact-root", str(workdir / "artifacts")]
        super().__init__(argv, {"MLFLOW_TRACKING_URI": self.url}, f"{self.url}/health", workdir / "mlflow.log")

    @property
    def otlp(self) -> str:
        return f"{self.url}/v1/traces"

    def experiment(self, name: str) -> str:
        return http("POST", f"{self.url}/api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"]

    def traces(self, experiment_id: str) -> list[dict[str, Any]]:
        r = subprocess.run([str(self.bin_dir / "python"), str(Path(__file__).with_name("read_mlflow.py")), self.url,
                            experiment_id], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"read_mlflow.py failed:\n{r.stderr[-3000:]}")
        return json.loads(r.stdout)
