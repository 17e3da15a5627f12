"""Run wrk over a rotating list of URLs and parse req/s and latency percentiles."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROTATE_LUA = """
local urls = {}
local i = 0
init = function(args)
  for line in io.lines(os.getenv("URLS")) do urls[#urls + 1] = line end
end
request = function()
  i = i % #urls + 1
  local headers = {}
  if os.getenv("CLOSE") == "1" then headers["Connection"] = "close" end
  return wrk.format("GET", urls[i], headers)
end
done = function(summary, latency, requests)
  io.write(string.format("P50 %.3f\\nP95 %.3f\\nP99 %.3f\\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
  io.write(string.format("ERRORS %d\\n", summary.errors.status + summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


@dataclass
class Result:
    """One wrk run."""

    rps: float
    p50: float
    p95: float
    p99: float
    errors: int


def run(base: str, paths: list[str], clients: int, seconds: int = 10) -> Result:
    """Load ``base`` with ``clients`` connections over ``paths`` (Connection: close)."""
    with tempfile.TemporaryDirectory() as tmp:
        urls = Path(tmp) / "urls.txt"
        urls.write_text("\n".join(paths) + "\n")
        script = Path(tmp) / "rot.lua"
        script.write_text(ROTATE_LUA)
        cmd = [
            "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            base,
        ]
        out = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=True,
            env={"URLS": str(urls), "CLOSE": "1", "PATH": "/usr/bin:/bin"},
        )
    return _parse(out.stdout)


def _parse(text: str) -> Result:
    def num(pattern: str) -> float:
        m = re.search(pattern, text)
        return float(m.group(1)) if m else float("nan")

    return Result(
        rps=num(r"Requests/sec:\s+([\d.]+)"),
        p50=num(r"P50 ([\d.]+)"),
        p95=num(r"P95 ([\d.]+)"),
        p99=num(r"P99 ([\d.]+)"),
        errors=int(num(r"ERRORS (\d+)")),
    )
