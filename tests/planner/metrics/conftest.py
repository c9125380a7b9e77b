"""Real metric servers for the metric sources: moto (CloudWatch) and Prometheus.

The moto server and its fake-credential environment are the apply tests' fixtures
(imported, so both folders run against the same kind of server). Prometheus is
the Debian package's binary, started on loopback over a TSDB backfilled by
`promtool tsdb create-blocks-from openmetrics`, and stopped after the session.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.planner.apply.conftest import aws_env, moto_server  # noqa: F401 (fixtures)

#: Backfilled history: 11 days of one-minute samples ending two hours before the
#: clock (the head block covers the newest hours; backfilled blocks must be older).
HISTORY_DAYS = 11
NAMESPACE = "llm"
#: A Prometheus outage: no series has a sample in [start, end).
OUTAGE_OFFSET = timedelta(days=6, hours=3)
OUTAGE = timedelta(hours=6)
#: Pod p2 is up (1) before this offset from the first sample, down (0) after.
P2_DOWN_OFFSET = timedelta(days=4, hours=12)
#: Shares of requests finishing with each reason (two counter series).
FINISH_SHARES = {"stop": 0.75, "length": 0.25}


def hourly_rate(when_s: int) -> float:
    """Requests per second in the hour holding `when_s` (epoch seconds): 2..8."""
    return 2.0 + (when_s // 3600) % 7


@dataclass(frozen=True)
class PrometheusHistory:
    """A running Prometheus and the history it holds."""

    url: str
    first_s: int  # first sample (epoch seconds)
    end_s: int  # one step after the last sample
    outage_start_s: int
    outage_end_s: int
    p2_down_s: int

    def sampled(self, when_s: int) -> bool:
        """Whether the backfill has samples at `when_s`."""
        in_outage = self.outage_start_s <= when_s < self.outage_end_s
        return self.first_s <= when_s < self.end_s and not in_outage


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not installed: the Prometheus tests run the real server. .ci/run "
            "installs the Debian package when absent; here: apt-get install prometheus"
        )
    return path


def write_openmetrics(path: Path, first_s: int, end_s: int, outage: tuple[int, int]) -> None:
    """Counters `vllm:request_success_total` (two reasons) and `up` targets, one sample a minute."""
    instants = [t for t in range(first_s, end_s, 60) if not outage[0] <= t < outage[1]]
    lines = ["# TYPE vllm:request_success counter"]
    for reason, share in FINISH_SHARES.items():
        total = 1000.0 * share
        labels = f'namespace="{NAMESPACE}",finished_reason="{reason}"'
        previous = first_s - 60
        for t in instants:
            # Requests finished since the previous sample, at the rate of each minute.
            total += sum(share * 60 * hourly_rate(m) for m in range(previous + 60, t + 60, 60))
            previous = t
            lines.append(f"vllm:request_success_total{{{labels}}} {total!r} {t}")
    lines.append("# TYPE up gauge")
    p2_down_s = first_s + int(P2_DOWN_OFFSET.total_seconds())
    targets = {
        ("vllm-llm", "p0"): lambda t: 1,
        ("vllm-llm", "p1"): lambda t: 1,
        ("vllm-llm", "p2"): lambda t: int(t < p2_down_s),
        ("node-exporter", "n0"): lambda t: 1,  # not a vLLM target: the capacity query skips it
    }
    for (job, pod), value in targets.items():
        labels = f'namespace="{NAMESPACE}",job="{job}",pod="{pod}"'
        lines += [f"up{{{labels}}} {value(t)} {t}" for t in instants]
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


def api(url: str, path: str, **params: Any) -> Any:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}/api/v1/{path}?{query}", timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusHistory]:
    """A real Prometheus on 127.0.0.1 holding 11 backfilled days with a 6-hour outage."""
    server, promtool = _binary("prometheus"), _binary("promtool")
    root = tmp_path_factory.mktemp("prometheus")
    end_s = (int(datetime.now(UTC).timestamp()) - 2 * 3600) // 3600 * 3600
    first_s = end_s - HISTORY_DAYS * 86400
    outage_start_s = first_s + int(OUTAGE_OFFSET.total_seconds())
    outage = (outage_start_s, outage_start_s + int(OUTAGE.total_seconds()))
    write_openmetrics(root / "history.om", first_s, end_s, outage)
    data = root / "data"
    subprocess.run(
        [
            *(promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet"),
            *("--max-block-duration=24h", str(root / "history.om"), str(data)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")  # scrapes nothing
    port = _free_port()
    log = (root / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            server,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=100y",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, root / "prometheus.log")
        # The server must see the backfill, or every test below would fail obscurely.
        seen = api(url, "query", query="count(vllm:request_success_total)", time=end_s - 60)
        assert seen["data"]["result"], f"Prometheus does not see the backfilled blocks: {seen}"
        yield PrometheusHistory(
            url=url,
            first_s=first_s,
            end_s=end_s,
            outage_start_s=outage[0],
            outage_end_s=outage[1],
            p2_down_s=first_s + int(P2_DOWN_OFFSET.total_seconds()),
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet
        time.sleep(0.1)
    pytest.fail(f"prometheus not ready after 30 s:\n{log.read_text()[-2000:]}")
