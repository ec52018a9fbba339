"""SIGKILL a process ingesting 1,000 documents at random points, again and again.

After every kill the folder must open, hold exactly a prefix of the corpus made of whole
batches that includes every acknowledged batch, have no duplicate chunk ids and no vector
without its chunk, and find every stored document. Runs alternate between the CLI's way
of ingesting (one call, batches of 64 made durable one by one, one publish at the end) and
the API's (one call and one published generation per batch of 50). A killed run's folder
is resumed by the next run, as a user re-running the command would, until it is complete.
"""

from __future__ import annotations

import random
import time
from multiprocessing.context import ForkServerContext
from pathlib import Path

import pytest

from qa_service.store.vector_index import IndexDirectory
from tests.reliability.checks import open_and_check, temp_leftovers
from tests.reliability.workload import API_BATCH, CLI_BATCH, CORPUS_SIZE, forkserver, ingest_child

pytestmark = pytest.mark.reliability

KILLS = 32
MAX_RUNS = 80  # bounds the test even if many runs finish before their kill lands
SEED = 20240125
MESSAGE_TIMEOUT_S = 60.0
BATCH = {"cli": CLI_BATCH, "api": API_BATCH}


def _run(ctx: ForkServerContext, root: Path, mode: str, kill_after: int | None,
         delay_s: float) -> tuple[int, bool, float]:
    """One child; killed ``delay_s`` after its ``kill_after``-th ack (0: after it opened).

    Returns (acknowledged batches, whether it was killed, seconds per batch).
    """
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=ingest_child, args=(str(root), mode, send))
    child.start()
    send.close()
    acked, killed, started = 0, False, time.monotonic()
    try:
        while True:
            if not receive.poll(MESSAGE_TIMEOUT_S):
                raise AssertionError(f"child sent nothing for {MESSAGE_TIMEOUT_S}s")
            kind, n = receive.recv()
            if kind == "ready":
                started = time.monotonic()
            acked = max(acked, n) if kind == "ack" else acked
            if kind == "done":
                break
            if kill_after is not None and n == kill_after and kind in ("ready", "ack"):
                time.sleep(delay_s)
                child.kill()
                killed = True
                break
        child.join(timeout=30)
        # Acks sent while the kill was on its way still count: those batches were durable.
        while receive.poll(0):
            kind, n = receive.recv()
            acked = max(acked, n) if kind == "ack" else acked
    except EOFError:
        pass  # the pipe ends where the killed child stopped writing
    finally:
        if child.is_alive():
            child.kill()
        child.join(timeout=30)
        receive.close()
    seconds_per_batch = (time.monotonic() - started) / max(acked, 1)
    return acked, killed, seconds_per_batch


def test_sigkill_at_random_points_never_loses_acknowledged_batches(tmp_path: Path) -> None:
    ctx = forkserver()
    rng = random.Random(SEED)
    # Calibrate: one uninterrupted run per mode gives the time per batch to aim kills within.
    per_batch = {}
    for mode in BATCH:
        acked, killed, per_batch[mode] = _run(ctx, tmp_path / f"calibrate-{mode}", mode, None, 0)
        assert not killed and acked == -(-CORPUS_SIZE // BATCH[mode])
        assert open_and_check(tmp_path / f"calibrate-{mode}").documents == sorted(
            f"doc-{i:04d}" for i in range(CORPUS_SIZE))

    kills = runs = healed = leftovers = folders = 0
    root = tmp_path / "run-0"
    stored = 0
    while kills < KILLS and runs < MAX_RUNS:
        mode = ("cli", "api")[runs % 2]
        batches = -(-CORPUS_SIZE // BATCH[mode])
        kill_after = rng.randint(0, batches - 1)
        delay = rng.uniform(0, 1.5 * per_batch[mode])
        acked, killed, _ = _run(ctx, root, mode, kill_after, delay)
        runs += 1
        kills += killed
        state = open_and_check(root)
        healed += state.published_behind
        leftovers += state.temp_leftovers > 0
        with IndexDirectory(root).writer():  # the next writer removes what a killed one left
            pass
        assert temp_leftovers(root) == 0
        count = len(state.documents)
        expected_prefix = [f"doc-{i:04d}" for i in range(count)]
        assert state.documents == expected_prefix, f"run {runs}: not a prefix of the corpus"
        acked_docs = min(acked * BATCH[mode], CORPUS_SIZE)
        assert count >= max(stored, acked_docs), f"run {runs}: an acknowledged batch was lost"
        if count > stored:  # this run added documents: whole batches, at most one unacknowledged
            assert count == CORPUS_SIZE or count % BATCH[mode] == 0, f"run {runs}: partial batch"
            assert count <= (acked + 1) * BATCH[mode], f"run {runs}: more than was written"
        stored = count
        if not killed or count == CORPUS_SIZE:
            assert count == CORPUS_SIZE
            folders += 1
            root, stored = tmp_path / f"run-{folders}", 0
    assert kills >= KILLS, f"only {kills} kills landed in {runs} runs"
    print(f"\n{kills} SIGKILLs in {runs} runs over {folders + 1} folders; {healed} left the "
          f"published index behind the store (rebuilt at open); {leftovers} left temporary files")
