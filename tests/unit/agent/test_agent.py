"""The Agent in-process: two pairs share one state database while both sync
(and a one-shot command opens it beside them), each pair opens its provider
once and closes it at shutdown, and no thread is left behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncagent.agent.daemon import Agent
from syncagent.agent.pair import PairSpec
from syncagent.engine.state import Store
from tests.helpers import tree, write
from tests.unit.agent.fakes import Board, FeedProvider


class Opener:
    """One FeedProvider per open of `local:ROOT`."""

    def __init__(self) -> None:
        self.opened: list[FeedProvider] = []
        self.lock = threading.Lock()

    def __call__(self, spec: str, config_path: str | None) -> tuple[FeedProvider, str]:
        root = Path(spec.split(":", 1)[1])
        provider = FeedProvider(root)
        with self.lock:
            self.opened.append(provider)
        return provider, f"local:{root}"


@pytest.fixture
def no_thread_left() -> Iterator[None]:
    before = set(threading.enumerate())     # other tests' threads may end meanwhile: compare objects

    def leaked() -> list[str]:
        return [t.name for t in threading.enumerate() if t not in before]

    yield
    deadline = time.monotonic() + 5
    while leaked() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not leaked(), f"threads left behind: {leaked()}"


def _run_in_thread(agent: Agent) -> tuple[threading.Thread, threading.Event]:
    ready = threading.Event()
    agent.on_ready = ready.set
    thread = threading.Thread(target=agent.run, name="agent-under-test")
    thread.start()
    return thread, ready


def test_two_pairs_share_one_state_database(tmp_path: Path, no_thread_left: None) -> None:
    pairs, roots = [], []
    for name in ("one", "two"):
        local, remote = tmp_path / name / "local", tmp_path / name / "remote"
        for i in range(40):
            write(local / f"d{i % 4}/f{i}.txt", f"{name} {i}")
        remote.mkdir(parents=True)
        roots.append((local, remote))
        pairs.append(PairSpec(name=name, local=local, remote=f"local:{remote}", poll_interval=0.5))
    board, opener = Board(), Opener()
    agent = Agent(pairs, tmp_path / "state", status=board, opener=opener)
    thread, ready = _run_in_thread(agent)
    try:
        assert ready.wait(30), "the first runs did not finish"
        deadline = time.monotonic() + 3
        round_no = 0
        while time.monotonic() < deadline:     # both pairs write the database at once, again and again
            round_no += 1
            for local, remote in roots:
                write(local / f"new/l{round_no}.txt", str(round_no))
                write(remote / f"new/r{round_no}.txt", str(round_no))
            for r in agent.runners:
                r.true_up()
            Store(tmp_path / "state").close()   # a one-shot command opening the database meanwhile
            time.sleep(0.05)
        for r in agent.runners:
            r.true_up()
        time.sleep(0.5)
    finally:
        agent.shutdown()
        thread.join(30)
    assert not thread.is_alive()
    problems = [s for s in board.states if s["state"] in ("error", "refused", "paused")]
    assert not problems, problems
    for local, remote in roots:
        assert tree(local) == tree(remote)
    assert len(opener.opened) == 2, "one provider per pair for the agent's life"
    assert all(p.closed for p in opener.opened), "providers are closed at shutdown"


def test_a_pair_whose_remote_cannot_open_does_not_stop_the_other(tmp_path: Path, no_thread_left: None) -> None:
    good_local, good_remote = tmp_path / "good/local", tmp_path / "good/remote"
    write(good_local / "a.txt", "a")
    good_remote.mkdir(parents=True)
    pairs = [PairSpec(name="good", local=good_local, remote=f"local:{good_remote}"),
             PairSpec(name="bad", local=tmp_path / "bad", remote="nowhere:docs")]
    board = Board()
    agent = Agent(pairs, tmp_path / "state", status=board, config_path=str(tmp_path / "missing.yaml"))
    thread, ready = _run_in_thread(agent)
    try:
        assert ready.wait(30)
    finally:
        agent.shutdown()
        thread.join(30)
    assert (good_remote / "a.txt").exists()
    assert board.last("good")["state"] == "idle"
    bad = board.last("bad")
    assert bad["state"] == "error" and "nowhere" in bad["reason"]
