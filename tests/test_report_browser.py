"""The quickstart report in a real browser: headless Chromium, driven over the Chrome DevTools Protocol.

The report is the quickstart's own (``quickstart.analyse``: fit, back-test, plan, page) over a store
filled with a synthetic ladder: the quickstart's tiny design, each run's evaluation points and
cooldown-branch ends given a Chinchilla loss, so nothing is trained. Chromium loads the file and the
test asserts: no request outside the file, no console error or script exception, every figure drawn
(an ``<svg>`` with a non-zero box and elements in it), a hover shows a tooltip with the point's
values, and a legend click hides a series and a second click shows it again.

Skipped when Chromium (Debian's ``chromium``) or ``websocket-client`` is missing; ``.ci/run`` installs
Chromium.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from synthetic_ladder import synthetic_quickstart_store

websocket = pytest.importorskip("websocket")   # websocket-client (the dev extra)

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                              shutil.which("google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")

def _synthetic_quickstart(out: Path) -> Path:
    """The quickstart's report (``quickstart.analyse``) of the synthetic ladder's store."""
    from scalinglab import quickstart as qs

    runs = synthetic_quickstart_store(out / "runs.db")
    summary = qs.analyse(out, runs, bootstrap=20, command="scalinglab quickstart --minutes 0.5 (synthetic)")
    return Path(summary["report"])


class Browser:
    """Headless Chromium and one page, over the DevTools websocket (flattened target sessions)."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--window-size=1200,900", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        url = None
        deadline = time.monotonic() + 30
        assert self.proc.stderr is not None
        while time.monotonic() < deadline and url is None:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            url = m.group(1) if m else None
        if url is None:
            self.close()
            pytest.skip("chromium did not start its DevTools endpoint")
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable", session=True)

    def call(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e["method"] == event for e in self.events):
                return
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            reply = json.loads(self.ws.recv())
            if "method" in reply:
                self.events.append(reply)
        raise AssertionError(f"no {event} within {timeout} s")

    def js(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def mouse(self, kind: str, x: float, y: float) -> None:
        params: dict[str, Any] = {"type": kind, "x": x, "y": y}
        if kind != "mouseMoved":
            params.update(button="left", clickCount=1)
        self.call("Input.dispatchMouseEvent", session=True, **params)

    def click(self, x: float, y: float) -> None:
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y)
        self.mouse("mouseReleased", x, y)

    def close(self) -> None:
        """Stop Chromium and every process it started (its own session: the crash handler and the
        renderers can outlive the browser process and keep writing into the profile folder)."""
        try:
            self.ws.close()
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture(scope="module")
def page() -> Iterator[tuple[Browser, Path]]:
    # the profile folder is Chromium's scratch space, not under test: a file a dying child process
    # writes during the cleanup must not fail the module (it did once in CI: "Directory not empty")
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as prof:
        report = _synthetic_quickstart(Path(tmp) / "qs")
        b = Browser(Path(prof) / "profile")
        try:
            b.call("Page.navigate", session=True, url=report.as_uri())
            b.wait_for("Page.loadEventFired")
            yield b, report
        finally:
            b.close()


def _center(b: Browser, selector: str) -> tuple[float, float]:
    """Scroll the first element matching ``selector`` into view; its centre in viewport pixels."""
    r = b.js(f"(function(){{var e=document.querySelector({json.dumps(selector)}); e.scrollIntoView({{block:'center'}});"
             "var r=e.getBoundingClientRect(); return [r.left + r.width/2, r.top + r.height/2];})()")
    return float(r[0]), float(r[1])


def test_the_report_loads_nothing_from_outside_and_has_no_errors(page: tuple[Browser, Path]) -> None:
    b, report = page
    assert report.stat().st_size < 1.5e6
    urls = [e["params"]["request"]["url"] for e in b.events if e["method"] == "Network.requestWillBeSent"]
    assert urls and urls[0] == report.as_uri()          # the page itself was requested, and seen
    outside = [u for u in urls if not (u == report.as_uri() or u.startswith("data:"))]
    assert outside == []
    errors = [e for e in b.events if e["method"] == "Runtime.exceptionThrown"
              or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert errors == []


def test_every_figure_is_drawn(page: tuple[Browser, Path]) -> None:
    b, _ = page
    figs = b.js("""Array.from(document.querySelectorAll('figure.sl-fig')).map(function (f) {
        var s = f.querySelector('svg'); var r = s ? s.getBoundingClientRect() : {width: 0, height: 0};
        return {id: f.id, w: r.width, h: r.height,
                marks: s ? s.querySelectorAll('circle, path, polyline, polygon').length : 0,
                tips: f.querySelectorAll('[data-tip]').length,
                drawn: s ? Array.from(s.querySelectorAll('[data-tip]')).filter(function (e) {
                  var q = e.getBoundingClientRect(); return q.width > 0 && q.height > 0; }).length : 0};
    })""")
    # IsoFLOP, residuals, back-test, loss and N frontiers, loss curves
    assert len(figs) == 6, figs
    for f in figs:
        assert f["w"] > 100 and f["h"] > 100 and f["marks"] > 0, f
        assert f["tips"] > 0 and f["drawn"] == f["tips"], f
    titles = b.js("Array.from(document.querySelectorAll('h2')).map(function (h) { return h.textContent; })")
    assert {"IsoFLOP profiles", "Residuals", "Back-test", "Plan", "Loss curves", "Runs"} <= set(titles)
    assert any(t.startswith("Fit diagnostics") for t in titles)


def test_hover_shows_the_point_values(page: tuple[Browser, Path]) -> None:
    b, _ = page
    assert b.js("document.getElementById('sl-tip').hidden") is True
    x, y = _center(b, "#fig-1 circle[data-tip]")
    b.mouse("mouseMoved", x, y)
    tip = b.js("(function(){var t=document.getElementById('sl-tip'); var r=t.getBoundingClientRect();"
               "return {hidden: t.hidden, text: t.innerText, w: r.width, h: r.height};})()")
    assert tip["hidden"] is False and tip["w"] > 0 and tip["h"] > 0
    expected = json.loads(b.js("document.querySelector('#fig-1 circle[data-tip]').getAttribute('data-tip')"))
    names = [k for k, _ in expected]
    assert {"run", "N", "D (tokens)", "C = 6ND (FLOPs)", "loss", "budget (FLOPs)", "held out"} <= set(names)
    for k, v in expected:
        assert k in tip["text"] and v in tip["text"]
    b.mouse("mouseMoved", 2, 2)                          # off every point: the tooltip goes
    assert b.js("document.getElementById('sl-tip').hidden") is True


def test_a_legend_click_hides_and_shows_a_series(page: tuple[Browser, Path]) -> None:
    b, _ = page
    key = b.js("document.querySelector('#fig-1 .sl-leg').getAttribute('data-key')")
    count = ("(function(){var n=0; document.querySelectorAll('#fig-1 [data-series=\"" + key + "\"] [data-tip]')"
             ".forEach(function(e){var r=e.getBoundingClientRect(); if (r.width > 0) n++;}); return n;})()")
    before = b.js(count)
    assert before > 0
    x, y = _center(b, "#fig-1 .sl-leg")
    b.click(x, y)
    assert b.js(count) == 0
    assert b.js("document.querySelector('#fig-1 .sl-leg').getAttribute('aria-pressed')") == "false"
    others = b.js("document.querySelectorAll('#fig-1 g:not(.sl-off) [data-tip]').length")
    assert others > 0                                    # the other budgets stay
    b.click(x, y)
    assert b.js("document.querySelector('#fig-1 .sl-leg').getAttribute('aria-pressed')") == "true", \
        b.js("document.querySelector('#fig-1 .sl-leg').outerHTML")
    assert b.js(count) == before


def test_the_downloads_decode_to_the_runs_fit_and_plan(page: tuple[Browser, Path]) -> None:
    b, report = page
    links = b.js("Array.from(document.querySelectorAll('a[download]')).map(function (a) {"
                 "return [a.getAttribute('download'), a.getAttribute('href')]; })")
    files = {name: base64.b64decode(href.split(",", 1)[1]).decode() for name, href in links}
    assert {"runs.csv", "runs.json", "fit.json", "plan.json", "plan.csv", "store-export.csv"} <= set(files)
    fit = json.loads(files["fit.json"])
    assert fit["law"] == "chinchilla" and set(fit["params"]) == {"E", "A", "B", "alpha", "beta"}
    plan = json.loads(files["plan.json"])
    assert plan["interval"][0] <= plan["loss"] <= plan["interval"][1]
    import hashlib

    sha = b.js("document.querySelector('footer code.sha').textContent")
    assert sha == hashlib.sha256(files["store-export.csv"].encode()).hexdigest()
    from scalinglab.report.store_report import store_export_csv
    from scalinglab.store import Store

    with Store(report.parent / "runs.db", create=False) as st:
        assert files["store-export.csv"] == store_export_csv(st)


def test_the_request_check_sees_an_outside_resource(page: tuple[Browser, Path]) -> None:
    """The check above can fail: a page with one external image is seen requesting it (run last: it
    navigates away from the report)."""
    b, report = page
    bad = report.parent / "bad.html"
    bad.write_text("<!doctype html><html><body><img src='http://127.0.0.1:9/x.png'></body></html>")
    b.events.clear()
    b.call("Page.navigate", session=True, url=bad.as_uri())
    b.wait_for("Page.loadEventFired")
    urls = [e["params"]["request"]["url"] for e in b.events if e["method"] == "Network.requestWillBeSent"]
    assert "http://127.0.0.1:9/x.png" in urls
