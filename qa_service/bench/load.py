"""Load test: concurrent clients asking questions of `qa-service serve` on loopback.

Starts its own server on a free loopback port over the bundled sample (or uses ``--url``,
which must be a loopback address), measures a single-client baseline, then sends a fixed
number of questions from ``--clients`` concurrent clients within a time bound. Prints
req/s, latency percentiles, status counts, client timeouts and the server's resident memory
over the run, and writes the figures as JSON. Exits 1 when any response is not 200, 429 or
503 (load shed, with Retry-After), or memory grew by more than ``--max-growth-mib`` after
warm-up.

By default each client is its own user behind a trusted proxy (its own X-Forwarded-For),
so per-client rate limits apply as in production; ``--same-client`` sends everything as one
client to watch the limiter answer 429.

    python -m qa_service.bench.load                       # 16 clients, 2,000 questions
    python -m qa_service.bench.load --same-client --requests 500
    python -m qa_service.bench.load --clients 512 --timeout 5    # overload: 503s, no long waits
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from qa_service.bench.server import Server, served

DEFAULT_OUT: Final = Path("artifacts/bench/load.json")
DEFAULT_REQUESTS: Final = 2000
DEFAULT_CLIENTS: Final = 16
DEFAULT_BASELINE: Final = 100
DEFAULT_MAX_SECONDS: Final = 600.0
REQUEST_TIMEOUT_S: Final = 60.0
MEMORY_SAMPLE_S: Final = 0.25
WARMUP_FRACTION: Final = 0.1  # memory is compared from here on: caches fill during warm-up
DEFAULT_MAX_GROWTH_MIB: Final = 64.0
ALLOWED_STATUSES: Final = frozenset({200, 429, 503})
WARMUP_REQUESTS: Final = 10  # before the baseline: the first questions load lazily built parts
# Every tenth question is a popular one (asked again and again, as readers do); the others are
# distinct, about the sample's topics, in both languages, so the query cache does not hide
# the encoder's cost.
POPULAR: Final = ("How many US troops are in Iraq?", "كم عدد الجنود الأمريكيين في العراق؟")
TEMPLATES: Final = (
    "What happened with {topic} in {year}?", "ماذا حدث في {topic} عام {year}؟",
    "Who was involved in {topic} around {year}?", "من شارك في {topic} حوالي عام {year}؟",
    "How many people were part of {topic} in {year}?", "كم عدد المشاركين في {topic} عام {year}؟",
    "Where did {topic} take place in {year}?", "أين جرى {topic} في عام {year}؟",
    "Why does {topic} matter after {year}?", "لماذا يهم {topic} بعد عام {year}؟",
)
FIRST_YEAR: Final = 1900
YEARS: Final = 125


@dataclass
class Result:
    """Figures of one phase (baseline or load)."""

    clients: int
    requests: int
    seconds: float
    statuses: dict[str, int]
    transport_errors: int
    timeouts: int  # no answer within --timeout (the load shedding should make these rare)
    requests_per_s: float
    answered_per_s: float  # 200 responses only
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # by status: p50/p95/p99


@dataclass
class Memory:
    """Server resident memory (MiB) sampled during the load phase."""

    after_warmup_mib: float
    peak_mib: float
    end_mib: float
    growth_mib: float
    samples: int
    quartiles_mib: list[float]  # at 25, 50, 75 and 100 % of the samples: flat, or still rising?


def question(n: int, topics: list[str]) -> str:
    """The n-th question of a run: distinct for thousands of n, except the popular ones."""
    if n % 10 == 0:
        return POPULAR[(n // 10) % len(POPULAR)]
    template = TEMPLATES[n % len(TEMPLATES)]
    topic = topics[(n // len(TEMPLATES)) % len(topics)]
    return template.format(topic=topic, year=FIRST_YEAR + n % YEARS)


def sample_topics() -> list[str]:
    """Titles of the bundled sample, in file order without repeats."""
    from qa_service.samples import SAMPLE_FILES

    titles: dict[str, None] = {}
    for path in SAMPLE_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            title = json.loads(line).get("title") if line.strip() else None
            if title:
                titles[title] = None
    return list(titles)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    topics = sample_topics()
    workdir = Path(tempfile.mkdtemp(prefix="qa-load-"))
    with contextlib.ExitStack() as stack:
        if args.url:
            url, memory_pid = _loopback_only(args.url), None
        else:
            server = stack.enter_context(_start_server(args, workdir))
            url, memory_pid = server.url, server.pid
        print(f"server {url} ready; baseline: 1 client × {args.baseline}, load: {args.clients} "
              f"clients × {args.requests} questions", file=sys.stderr)
        _phase(url, 1, WARMUP_REQUESTS, args, None, topics, 0)
        baseline = _phase(url, 1, args.baseline, args, None, topics, WARMUP_REQUESTS)[0]
        load, memory = _phase(url, args.clients, args.requests, args, memory_pid, topics,
                              WARMUP_REQUESTS + args.baseline)
    report: dict[str, Any] = {"url": url, "baseline": asdict(baseline), "load": asdict(load),
                              "memory": asdict(memory) if memory else None,
                              "speedup_vs_one_client": _ratio(load.answered_per_s,
                                                              baseline.answered_per_s)}
    _print(baseline, load, memory, report["speedup_vs_one_client"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")
    bad = {s: n for s, n in load.statuses.items() if int(s) not in ALLOWED_STATUSES}
    if bad or load.transport_errors:
        print(f"FAIL: statuses other than 200/429/503: {bad}, transport errors: {load.transport_errors}")
        return 1
    if memory is not None and memory.growth_mib > args.max_growth_mib:
        print(f"FAIL: server memory grew {memory.growth_mib:.1f} MiB after warm-up")
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qa_service.bench.load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running server on loopback (default: start one)")
    p.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="questions in the load phase")
    p.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="concurrent clients")
    p.add_argument("--baseline", type=int, default=DEFAULT_BASELINE,
                   help="questions asked by one client first (the baseline)")
    p.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                   help="stop a phase after this long even if questions remain")
    p.add_argument("--same-client", action="store_true",
                   help="all clients as one address (per-client rate limit → 429s)")
    p.add_argument("--rate-limit-per-s", default=None,
                   help="QA_RATE_LIMIT_PER_S for the started server (default: its default)")
    p.add_argument("--index-dir", type=Path, default=None,
                   help="index folder for the started server (default: a temporary one)")
    p.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT_S,
                   help="client timeout per request in seconds (timeouts are counted apart)")
    p.add_argument("--max-growth-mib", type=float, default=DEFAULT_MAX_GROWTH_MIB)
    p.add_argument("--json", type=Path, default=DEFAULT_OUT, help="where to write the figures")
    return p


def _loopback_only(url: str) -> str:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"--url must be a loopback address (127.0.0.0/8, ::1, localhost), got {host}")
    return url.rstrip("/")


def _start_server(args: argparse.Namespace, workdir: Path) -> contextlib.AbstractContextManager[Server]:
    env = {"QA_TRUSTED_PROXIES": "127.0.0.1"}
    if args.rate_limit_per_s is not None:
        env["QA_RATE_LIMIT_PER_S"] = str(args.rate_limit_per_s)
    index_dir = args.index_dir or workdir / "index"
    return served(index_dir, workdir / "server.log", env, sample=True)


def _phase(url: str, clients: int, total: int, args: argparse.Namespace, memory_pid: int | None,
           topics: list[str], first: int) -> tuple[Result, Memory | None]:
    """Ask ``total`` questions from ``clients`` threads; sample the server's memory meanwhile."""
    max_seconds, same_client = args.max_seconds, args.same_client
    latencies: dict[int, list[float]] = {}
    statuses: Counter[int] = Counter()
    errors = timeouts = 0
    next_index = 0
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    rss: list[float] = []
    warm = threading.Event()
    done = threading.Event()

    def take() -> int | None:
        nonlocal next_index
        with lock:
            if next_index >= total or time.monotonic() > deadline:
                return None
            next_index += 1
            if next_index >= total * WARMUP_FRACTION:
                warm.set()
            return next_index - 1

    def client(worker: int) -> None:
        nonlocal errors, timeouts
        # Benchmark addresses (198.18.0.0/15): never routed, only ever a header value here.
        address = "198.18.0.1" if same_client else str(ipaddress.ip_address("198.18.1.0") + worker)
        with httpx.Client(base_url=url, timeout=args.timeout,
                          headers={"x-forwarded-for": address}) as http:
            while (n := take()) is not None:
                started = time.perf_counter()
                try:
                    r = http.post("/v1/ask", json={"question": question(first + n, topics)})
                except httpx.TimeoutException:
                    with lock:
                        timeouts += 1
                    continue
                except httpx.TransportError:
                    with lock:
                        errors += 1
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    statuses[r.status_code] += 1
                    latencies.setdefault(r.status_code, []).append(elapsed)

    def sample_memory() -> None:
        while not done.is_set():
            if warm.is_set() and memory_pid is not None:
                value = _rss_mib(memory_pid)
                if value is not None:
                    rss.append(value)
            time.sleep(MEMORY_SAMPLE_S)

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if memory_pid is not None and (end := _rss_mib(memory_pid)) is not None:
        rss.append(end)
    answered = sum(statuses.values())
    result = Result(
        clients=clients, requests=answered, seconds=round(seconds, 2),
        statuses={str(k): v for k, v in sorted(statuses.items())}, transport_errors=errors,
        timeouts=timeouts,
        requests_per_s=round(answered / seconds, 2) if seconds else 0.0,
        answered_per_s=round(statuses[200] / seconds, 2) if seconds else 0.0,
        latency_ms={str(status): _percentiles(values) for status, values in sorted(latencies.items())},
    )
    memory = None
    if rss:
        quartiles = [round(rss[min(len(rss) - 1, len(rss) * q // 4)], 1) for q in (1, 2, 3, 4)]
        memory = Memory(after_warmup_mib=round(rss[0], 1), peak_mib=round(max(rss), 1),
                        end_mib=round(rss[-1], 1), growth_mib=round(rss[-1] - rss[0], 1),
                        samples=len(rss), quartiles_mib=quartiles)
    return result, memory


def _percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        v = round(values[0], 1) if values else 0.0
        return {"p50": v, "p95": v, "p99": v}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49], 1), "p95": round(cuts[94], 1), "p99": round(cuts[98], 1)}


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _ratio(value: float, base: float) -> float | None:
    return round(value / base, 2) if base else None


def _print(baseline: Result, load: Result, memory: Memory | None, speedup: float | None) -> None:
    print(f"{'phase':<10}{'clients':>8}{'requests':>10}{'seconds':>9}{'req/s':>9}{'200/s':>9}"
          f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  statuses")
    for name, r in (("baseline", baseline), ("load", load)):
        lat = r.latency_ms.get("200", {"p50": 0.0, "p95": 0.0, "p99": 0.0})
        print(f"{name:<10}{r.clients:>8}{r.requests:>10}{r.seconds:>9.1f}{r.requests_per_s:>9.1f}"
              f"{r.answered_per_s:>9.1f}{lat['p50']:>9.1f}{lat['p95']:>9.1f}{lat['p99']:>9.1f}  "
              f"{r.statuses}" + (f" transport errors {r.transport_errors}" if r.transport_errors else "")
              + (f" timeouts {r.timeouts}" if r.timeouts else ""))
    for status in ("429", "503"):
        if status in load.latency_ms:
            lat = load.latency_ms[status]
            print(f"{status} latency ms: p50 {lat['p50']} p95 {lat['p95']} p99 {lat['p99']}")
    if speedup is not None:
        print(f"answered/s with {load.clients} clients vs 1 client: ×{speedup}")
    if memory is not None:
        print(f"server RSS MiB: {memory.after_warmup_mib} after warm-up, peak {memory.peak_mib}, "
              f"end {memory.end_mib} (growth {memory.growth_mib:+.1f}, {memory.samples} samples); "
              f"at 25/50/75/100 % of the run: {memory.quartiles_mib}")


if __name__ == "__main__":
    raise SystemExit(main())
