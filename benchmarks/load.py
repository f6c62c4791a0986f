"""A class on one link: scripted students on Streamlit's own websocket protocol (issue 10, row 8).

Each student is one websocket session on ``/_stcore/stream`` that sends what a browser sends
(``BackMsg.rerun_script`` with the widget states a click produces) and waits for what a
browser waits for (``ForwardMsg.script_finished``). No browser runs, so the figures measure
the server: each student

1. opens the page (the first script run);
2. picks the ``rgnet`` preset in the sidebar;
3. opens the *Initialize* tab and presses *Re-initialize*, then goes back to *Explore*;
4. presses *Forward + backward*;
5. clicks five parameters in the tree, and checks that the detail panel shows each one.

A click's time is from sending it to the end of the run that shows the parameter: the
Explore tab's fragment run, or an app rerun if the app asks for one.
Errors are exceptions and red error boxes on the page, runs that fail, wrong pages,
dropped connections and timeouts. The server's resident memory (``VmRSS`` of its
processes) is sampled before, during, and for ``--after`` seconds after the sessions close.

Everything is bounded: ``--sessions`` students, fixed steps, ``--deadline`` seconds in all,
``--step-timeout`` per step; only 127.0.0.1 is contacted.

Examples::

    python -m benchmarks.load                           # 30 students on a server it starts
    python -m benchmarks.load --sessions 3 --after 0    # a smoke run in about a minute
    python -m benchmarks.load --replicas 2              # through HAProxy to 2 replicas
    python -m benchmarks.load --url http://127.0.0.1:8501 --pids 1234   # a running server
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import websockets
from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
FULL_RUN = frozenset({ForwardMsg.FINISHED_SUCCESSFULLY})
ANY_RUN = FULL_RUN | {ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
PRESET = "rgnet"
TREE_KEY = "param_tree"
STEPS = ("open", "preset", "initialize tab", "re-initialize", "explore tab", "run", "click")

__all__ = ["Student", "Report", "run_students", "serve", "main"]


class StepError(Exception):
    """A step that did not end as a browser user would expect."""


@dataclass
class Page:
    """What the last runs drew: widget ids by key, the tree's rows and fragment, texts."""

    widgets: dict[str, str] = field(default_factory=dict)  # user key -> widget id
    options: dict[str, list[str]] = field(default_factory=dict)  # selectbox key -> labels
    tabs: list[str] = field(default_factory=list)
    tree_id: str | None = None
    tree_fragment: str = ""
    tree_rows: list[dict] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # headings, markdown, code of the run
    errors: list[str] = field(default_factory=list)  # exceptions and error boxes of the run


def _widget_key(widget_id: str) -> str | None:
    """The user key in a widget id (``$$ID-<hash>-<key>``), or None for an unkeyed widget."""
    head, sep, key = widget_id.partition("-")
    if not sep or not head.startswith("$$ID"):
        return None
    _hash, sep, key = key.partition("-")
    return key if sep and key != "None" else None


def _read_element(page: Page, delta) -> None:
    """Record one new element of a delta: widget ids, texts, errors, the tree."""
    element = delta.new_element
    kind = element.WhichOneof("type")
    if kind is None:
        return
    body = getattr(element, kind)
    widget_id = getattr(body, "id", "") if hasattr(body, "id") else ""
    if widget_id:
        key = _widget_key(widget_id)
        if key is not None:
            page.widgets[key] = widget_id
            if kind == "selectbox":
                page.options[key] = list(body.options)
    if kind == "bidi_component" and body.id.endswith(TREE_KEY):
        page.tree_id = body.id
        page.tree_fragment = delta.fragment_id
        data = json.loads(body.json) if body.json else json.loads(body.mixed.json)
        page.tree_rows = data.get("rows", [])
    elif kind == "exception":
        page.errors.append(f"exception {body.type}: {body.message[:200]}")
    elif kind == "alert" and body.format == body.ERROR:
        page.errors.append(f"error box: {body.body[:200]}")
    elif kind in ("heading", "markdown"):
        page.texts.append(body.body)


def _read_block(page: Page, delta) -> None:
    block = delta.add_block
    if block.WhichOneof("type") == "tab_container":
        page.widgets["tabs"] = block.tab_container.id
    elif block.WhichOneof("type") == "tab":
        page.tabs.append(block.tab.label)


@dataclass
class Student:
    """One scripted student: one websocket session and the steps above, with their times."""

    url: str  # http://127.0.0.1:PORT (a replica or the proxy)
    index: int
    step_timeout: float = 120.0
    think: float = 1.0  # mean seconds between two actions, as a person reads the screen
    times: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    clicked: list[str] = field(default_factory=list)
    done: bool = False

    async def run(self, clicks: int, deadline: float) -> None:
        """Do every step; record an error instead of raising."""
        rng = random.Random(self.index)
        try:
            cookie = await asyncio.to_thread(_first_request, self.url)
            ws_url = "ws" + self.url.removeprefix("http") + "/_stcore/stream"
            headers = {"Origin": self.url}
            if cookie:
                headers["Cookie"] = cookie
            async with websockets.connect(
                ws_url,
                subprotocols=["streamlit"],
                additional_headers=headers,
                max_size=None,
                open_timeout=self.step_timeout,
                ping_interval=None,
            ) as ws:
                self._ws = ws
                page = await self._step("open", [], expect=FULL_RUN)
                await self._think(rng)
                label = _preset_label(page)
                page = await self._step(
                    "preset", [_string(page, "preset_choice", label)], expect=FULL_RUN
                )
                await self._think(rng)
                init_tab = _tab(page, "Initialize")
                page = await self._step(
                    "initialize tab", [_string(page, "tabs", init_tab)], expect=FULL_RUN
                )
                await self._think(rng)
                page = await self._step("re-initialize", [_trigger(page, "reinit")], FULL_RUN)
                await self._think(rng)
                explore = _tab(page, "Explore")
                page = await self._step(
                    "explore tab", [_string(page, "tabs", explore)], expect=FULL_RUN
                )
                await self._think(rng)
                page = await self._step("run", [_trigger(page, "run_button")], expect=FULL_RUN)
                params = [r for r in page.tree_rows if r.get("kind") == "param"]
                if len(params) < clicks:
                    raise StepError(f"the tree shows {len(params)} parameters, need {clicks}")
                for row in rng.sample(params, clicks):
                    if time.monotonic() > deadline:
                        raise StepError("the run's deadline passed")
                    await self._think(rng)
                    page = await self._click(page, row)
                self.done = True
        except (StepError, TimeoutError, OSError, websockets.WebSocketException) as err:
            self.errors.append(f"student {self.index}: {type(err).__name__}: {err}"[:300])

    async def _think(self, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0.5, 1.5) * self.think)

    async def _click(self, page: Page, row: dict) -> Page:
        """Click a parameter row: the tree's state and trigger, in the tree's fragment."""
        if page.tree_id is None:
            raise StepError("no tree on the page")
        state = WidgetState(
            id=page.tree_id, json_value=json.dumps({"selected": row["id"]}, separators=(",", ":"))
        )
        trigger = WidgetState(
            id=_make_trigger_id(page.tree_id, "events"),  # the id the browser sends
            json_trigger_value=json.dumps([{"event": "clicked", "value": row["id"]}]),
        )
        name = row.get("title") or row["id"]
        after = await self._step("click", [state, trigger], ANY_RUN, page.tree_fragment)
        wanted = row["id"].replace("/", ".").lstrip(".")
        if not any(wanted in text and "Parameter" in text for text in after.texts):
            raise StepError(f"clicked {row['id']!r} ({name}) but the page does not show it")
        self.clicked.append(wanted)
        # the rerun drew the whole page; keep the tree's rows if only the fragment had them
        if after.tree_id is None:
            after.tree_id, after.tree_rows = page.tree_id, page.tree_rows
            after.tree_fragment = page.tree_fragment
        return after

    async def _step(
        self, name: str, states: list[WidgetState], expect: frozenset, fragment: str = ""
    ) -> Page:
        """Send one rerun with ``states`` and wait for the run that ends it; time it."""
        msg = BackMsg()
        client = ClientState(query_string="", page_script_hash="", fragment_id=fragment)
        client.widget_states.widgets.extend(states)
        client.context_info.timezone = "UTC"
        client.context_info.locale = "en-US"
        msg.rerun_script.CopyFrom(client)
        started = time.perf_counter()
        await self._ws.send(msg.SerializeToString())
        page = await asyncio.wait_for(self._until(expect), self.step_timeout)
        self.times.setdefault(name, []).append(time.perf_counter() - started)
        if page.errors:
            raise StepError(f"{name}: {'; '.join(page.errors)}")
        return page

    async def _until(self, statuses: frozenset) -> Page:
        """Read messages until a run finishes with one of ``statuses``; what the runs drew."""
        page = Page()
        while True:
            data = await self._ws.recv()
            msg = ForwardMsg()
            msg.ParseFromString(data)
            kind = msg.WhichOneof("type")
            if kind == "delta":
                which = msg.delta.WhichOneof("type")
                if which == "new_element":
                    _read_element(page, msg.delta)
                elif which == "add_block":
                    _read_block(page, msg.delta)
            elif kind == "new_session":
                page.tabs.clear()
            elif kind == "ref_hash":
                raise StepError("the server sent a cached reference this client never cached")
            elif kind == "script_finished":
                if msg.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    raise StepError("the app failed to compile")
                if msg.script_finished in statuses:
                    return page
                # else: a fragment run, or a run ended early for the rerun it asked for;
                # what it drew stays in ``page`` while the run we wait for follows


def _first_request(url: str) -> str | None:
    """GET the page as a browser does first; return the proxy's sticky cookie, if any."""
    with urllib.request.urlopen(url + "/", timeout=60) as answer:
        answer.read()
        cookies = answer.headers.get_all("Set-Cookie") or []
    return "; ".join(c.split(";", 1)[0] for c in cookies) or None


def _preset_label(page: Page) -> str:
    from explorer.spec.presets import PRESETS

    title = PRESETS[PRESET].title
    if title not in page.options.get("preset_choice", []):
        raise StepError(f"no preset {title!r} in the sidebar")
    return title


def _tab(page: Page, name: str) -> str:
    for label in page.tabs:
        if label.endswith(name):
            return label
    raise StepError(f"no tab {name!r} among {page.tabs}")


def _widget(page: Page, key: str) -> str:
    if key not in page.widgets:
        raise StepError(f"no widget {key!r} on the page")
    return page.widgets[key]


def _string(page: Page, key: str, value: str) -> WidgetState:
    return WidgetState(id=_widget(page, key), string_value=value)


def _trigger(page: Page, key: str) -> WidgetState:
    return WidgetState(id=_widget(page, key), trigger_value=True)


# --- the server's memory --------------------------------------------------------------


def rss_mib(pids: list[int]) -> float:
    """Resident memory of these processes, summed, in MiB (0 for one that has ended)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total / MIB


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) these processes have used, summed, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except OSError:
            pass
    return total / tick


class Sampler:
    """Samples the servers' RSS every ``every`` seconds in a thread; keeps the peak."""

    def __init__(self, pids: list[int], every: float = 0.5):
        self.pids, self.every = pids, every
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pids))
            self._stop.wait(self.every)


# --- servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 180.0) -> None:
    """Wait until ``url``'s Streamlit health check answers ok (through a proxy too)."""
    stop = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=5) as answer:
                if answer.read().strip() == b"ok":
                    return
        except OSError:
            pass
        if time.monotonic() > stop:
            raise TimeoutError(f"{url} did not become healthy in {timeout:.0f} s")
        time.sleep(0.5)


def serve(
    port: int, profile: str = "hosted", log: Path | None = None, plain: bool = False
) -> subprocess.Popen:
    """Start one app server on 127.0.0.1:``port`` as deploy/replicas.sh starts a replica.

    ``plain``: ``python -m streamlit run app.py`` itself, without deploy/serve.py (imports
    not frozen, closed sessions not reaped): the "before" of the figures.
    """
    env = {**os.environ, "EXPLORER_PROFILE": profile, "PORT": str(port), "OMP_NUM_THREADS": "1"}
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed by the child)
    command = ["bash", str(ROOT / "deploy" / "replica.sh")]
    if plain:
        command = [
            sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
            "--server.address", "127.0.0.1", "--server.port", str(port),
            "--server.headless", "true", "--server.fileWatcherType", "none",
            "--browser.gatherUsageStats", "false",
        ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


# --- the run ----------------------------------------------------------------------------


@dataclass
class Report:
    """The figures of one load run (times in seconds, memory in MiB)."""

    sessions: int
    clicks_each: int
    completed: int
    errors: list[str]
    steps: dict[str, dict[str, float]]  # step -> n, p50, p95, max
    rss_start: float  # servers up, no session yet
    rss_before: float  # after one warm-up student has come and gone
    rss_peak: float  # while the students worked
    rss_closed: float  # when the last one closed
    rss_after: float  # ``after`` seconds later
    after: float
    seconds: float
    server_cpu: float  # CPU seconds the servers used while the students worked
    client_cpu: float  # CPU seconds this load generator used meanwhile (same machine)
    server_cpu_each: list[float]  # the same, per server process (is the work spread?)
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    target: str
    replicas: int

    def text(self) -> str:
        """The figures as lines a README can quote."""
        click = self.steps.get("click", {})
        lines = [
            f"{self.sessions} sessions × {self.clicks_each} clicks on {self.target} "
            f"({self.replicas} replica{'s' if self.replicas != 1 else ''}), "
            f"{self.completed} completed in {self.seconds:.0f} s; errors: {len(self.errors)}; "
            f"server CPU {self.server_cpu:.0f} s "
            f"({self.server_cpu / max(1, self.sessions):.1f} s per session; per process "
            + ", ".join(f"{c:.0f}" for c in self.server_cpu_each)
            + " s); "
            f"load generator CPU {self.client_cpu:.0f} s",
            f"click p50 {click.get('p50', float('nan')):.2f} s, "
            f"p95 {click.get('p95', float('nan')):.2f} s, "
            f"max {click.get('max', float('nan')):.2f} s (n = {int(click.get('n', 0))})",
            f"server RSS: {self.rss_start:.0f} MiB at start, {self.rss_before:.0f} MiB before "
            f"(after one warm-up session), peak {self.rss_peak:.0f} MiB, "
            f"{self.rss_closed:.0f} MiB when the sessions closed, {self.rss_after:.0f} MiB "
            f"{self.after:.0f} s later ({self.rss_after - self.rss_before:+.0f} MiB)",
            "load average (1, 5, 15 min): before "
            + ", ".join(f"{x:.2f}" for x in self.load_before)
            + "; after "
            + ", ".join(f"{x:.2f}" for x in self.load_after),
            "every step, seconds (n, p50, p95, max):",
        ]
        for step in STEPS:
            if step in self.steps:
                s = self.steps[step]
                lines.append(
                    f"  {step:<15} {int(s['n']):>4} {s['p50']:>7.2f} {s['p95']:>7.2f} "
                    f"{s['max']:>7.2f}"
                )
        lines += [f"  error: {e}" for e in self.errors[:20]]
        return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation, as numpy's default."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def summarize(students: list[Student]) -> dict[str, dict[str, float]]:
    steps: dict[str, dict[str, float]] = {}
    for step in STEPS:
        values = [t for s in students for t in s.times.get(step, [])]
        if values:
            steps[step] = {
                "n": len(values),
                "p50": percentile(values, 50),
                "p95": percentile(values, 95),
                "max": max(values),
            }
    return steps


async def _gather(students: list[Student], clicks: int, deadline: float, ramp: float) -> None:
    async def one(student: Student) -> None:
        await asyncio.sleep(ramp * student.index / max(1, len(students)))
        await student.run(clicks, deadline)

    await asyncio.wait_for(
        asyncio.gather(*(one(s) for s in students)), max(1.0, deadline - time.monotonic())
    )


def _run_loop(work) -> None:
    with contextlib.suppress(TimeoutError):
        asyncio.run(work)


def run_students(
    url: str,
    sessions: int,
    clicks: int = 5,
    deadline_s: float = 600.0,
    ramp: float = 10.0,
    think: float = 1.0,
    step_timeout: float = 120.0,
) -> list[Student]:
    """Run ``sessions`` students against ``url`` at once (starts spread over ``ramp`` s)."""
    students = [Student(url, i, step_timeout, think) for i in range(sessions)]
    deadline = time.monotonic() + deadline_s
    # A thread of its own: the caller may already run an event loop (a notebook, or pytest
    # after Playwright's sync API), and asyncio.run refuses to start inside one.
    worker = threading.Thread(
        target=_run_loop, args=(_gather(students, clicks, deadline, ramp),), daemon=True
    )
    worker.start()
    worker.join()
    for s in students:
        if not s.done and not s.errors:
            s.errors.append(f"student {s.index}: not finished by the deadline")
    return students


def measure(
    url: str,
    pids: list[int],
    sessions: int,
    clicks: int,
    after: float,
    deadline_s: float,
    ramp: float,
    think: float,
    replicas: int,
) -> Report:
    """Warm up with one student, then run them all, then watch the memory come back."""
    load_before = os.getloadavg()
    rss_start = rss_mib(pids)
    warm = run_students(url, 1, clicks, deadline_s, 0, 0.0)
    time.sleep(2)
    rss_before = rss_mib(pids)
    started, own = time.monotonic(), time.process_time()
    each = [cpu_seconds([p]) for p in pids]
    with Sampler(pids) as sampler:
        students = run_students(url, sessions, clicks, deadline_s, ramp, think)
    seconds = time.monotonic() - started
    each = [cpu_seconds([p]) - c for p, c in zip(pids, each, strict=True)]
    own = time.process_time() - own
    time.sleep(1)
    rss_closed = rss_mib(pids)
    if after > 0:
        print(f"sessions closed; watching the servers' memory for {after:.0f} s", flush=True)
        time.sleep(after)
    return Report(
        sessions=sessions,
        clicks_each=clicks,
        completed=sum(s.done for s in students),
        errors=[e for s in [*warm, *students] for e in s.errors],
        steps=summarize(students),
        rss_start=rss_start,
        rss_before=rss_before,
        rss_peak=max(sampler.peak, rss_closed),
        rss_closed=rss_closed,
        rss_after=rss_mib(pids),
        after=after,
        seconds=seconds,
        server_cpu=sum(each),
        server_cpu_each=each,
        client_cpu=own,
        load_before=load_before,
        load_after=os.getloadavg(),
        target=url,
        replicas=replicas,
    )


def _deploy(*args: str) -> str:
    """Run deploy/replicas.sh with its files under test-artifacts/ (not an instructor's)."""
    env = {**os.environ, "RUN_DIR": str(ROOT / "test-artifacts" / "load-deploy")}
    done = subprocess.run(
        ["bash", str(ROOT / "deploy" / "replicas.sh"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"deploy/replicas.sh {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--clicks", type=int, default=5, help="parameters each student clicks")
    parser.add_argument("--after", type=float, default=300, help="seconds to watch memory after")
    parser.add_argument("--deadline", type=float, default=900, help="seconds for all sessions")
    parser.add_argument("--ramp", type=float, default=10, help="seconds over which they arrive")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between actions")
    parser.add_argument("--profile", default="hosted", help="EXPLORER_PROFILE of the servers")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="a running server or proxy (127.0.0.1 only)")
    where.add_argument(
        "--replicas", type=int, help="start this many replicas behind HAProxy (deploy/)"
    )
    parser.add_argument("--pids", help="with --url: the server processes, comma-separated")
    parser.add_argument(
        "--plain", action="store_true", help="plain `streamlit run app.py` (no deploy/serve.py)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    procs: list[subprocess.Popen] = []
    replicas = 1
    try:
        if args.url:
            if not args.url.startswith(("http://127.0.0.1:", "http://localhost:")):
                parser.error("--url must be on 127.0.0.1: this test never leaves the machine")
            url, pids = args.url.rstrip("/"), [int(p) for p in (args.pids or "").split(",") if p]
        elif args.replicas:
            replicas = args.replicas
            port = free_port()
            out = _deploy(
                "start", str(replicas), "--port", str(port), "--addr", "127.0.0.1",
                "--profile", args.profile,
            )  # fmt: skip
            print(out, end="", flush=True)
            url = f"http://127.0.0.1:{port}"
            pids = [int(p) for p in _deploy("pids").split()]
        else:
            port = free_port()
            log = ROOT / "test-artifacts" / "load-server.log"
            procs.append(serve(port, args.profile, log, args.plain))
            url, pids = f"http://127.0.0.1:{port}", [procs[0].pid]
        wait_healthy(url)
        report = measure(
            url,
            pids,
            args.sessions,
            args.clicks,
            args.after,
            args.deadline,
            args.ramp,
            args.think,
            replicas,
        )
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if args.replicas:
            _deploy("stop")
    print(report.text(), flush=True)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
    return report


if __name__ == "__main__":
    sys.exit(0 if not main().errors else 1)
