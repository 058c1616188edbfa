#!/usr/bin/env python3
"""The demo's report as a person sees it: rendered by headless Chromium.

Generates the demo's input (scripts/demo.sh's sizes), detects, writes the report, loads it in
headless Chromium driven over the DevTools protocol (--remote-debugging-pipe, standard
library only), takes a screenshot, and checks that
  - the page logged no console error or warning, threw no exception and failed no load;
  - the rendered page shows every ring of the detect report in its table, and the top rings'
    sections, with their drawings laid out at a real size;
  - the screenshot is a PNG of the window's size.
Exit status: 0 passed, 1 failed, 77 skipped (no Chromium; ctest's SKIP_RETURN_CODE).

    report_in_browser.py --cli build/ringscan --work DIR [--png OUT.png]
"""
import argparse
import base64
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time

WIDTH, HEIGHT = 1200, 1800


class DevTools:
    """Chromium's DevTools protocol over the pipe pair of --remote-debugging-pipe:
    commands go in on the browser's fd 3, replies and events come out on its fd 4, each a
    JSON message ended by a NUL byte."""

    def __init__(self, write_fd, read_fd, deadline):
        self.write_fd, self.read_fd, self.deadline = write_fd, read_fd, deadline
        self.buffer, self.next_id, self.events = b"", 0, []

    def read_message(self, until):
        while b"\0" not in self.buffer:
            left = min(until, self.deadline) - time.time()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                raise TimeoutError("no answer from chromium in time")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        while True:
            m = self.read_message(self.deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_for(self, event):
        for i, m in enumerate(self.events):
            if m.get("method") == event:
                return self.events.pop(i)
        while True:
            m = self.read_message(self.deadline)
            if m.get("method") == event:
                return m
            self.events.append(m)

    def collect(self, seconds):
        """Keeps the events that arrive in the next `seconds`."""
        until = time.time() + seconds
        try:
            while True:
                self.events.append(self.read_message(until))
        except TimeoutError:
            pass

    def evaluate(self, expression, session):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluating {expression!r}: {r['exceptionDetails']}")
        return r["result"].get("value")


def problems_of(events):
    """Console errors and warnings, exceptions, failed loads: one line each."""
    out = []
    for m in events:
        method, p = m.get("method"), m.get("params", {})
        if method == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
            out.append(f"console {p['type']}: " + " ".join(str(a.get("value", a.get("description", "")))
                                                          for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            out.append(f"log {p['entry']['level']}: {p['entry']['text']} {p['entry'].get('url', '')}")
        elif method == "Network.loadingFailed":
            out.append(f"load failed: {p.get('errorText')}")
    return out


def render(browser, html, png):
    """Loads `html`, returns (problems, facts about the rendered page); writes the screenshot."""
    profile = tempfile.mkdtemp(prefix="ringscan-chromium-")

    def above_ten(fd):  # so that the dup2 onto 3 and 4 in the child never meets them
        new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return new

    to_browser_r, to_browser_w = map(above_ten, os.pipe())
    from_browser_r, from_browser_w = map(above_ten, os.pipe())

    def child_fds():
        os.dup2(to_browser_r, 3)
        os.dup2(from_browser_w, 4)

    proc = subprocess.Popen(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
         f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", "--no-first-run", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=child_fds, close_fds=False)
    os.close(to_browser_r)
    os.close(from_browser_w)
    tools = DevTools(to_browser_w, from_browser_r, time.time() + 60)
    try:
        target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.call(f"{domain}.enable", session=session)
        tools.call("Emulation.setDeviceMetricsOverride",
                   {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}, session)
        navigation = tools.call("Page.navigate", {"url": "file://" + os.path.abspath(html)}, session)
        problems = [f"navigation failed: {navigation['errorText']}"] if navigation.get("errorText") else []
        tools.wait_for("Page.loadEventFired")
        tools.collect(0.5)
        # Clicking a column header runs the page's only script: it must run without error.
        tools.evaluate("document.querySelectorAll('table.sortable th')[2].click()", session)
        tools.evaluate("document.querySelectorAll('table.sortable th')[2].click()", session)
        facts = tools.evaluate("""(() => {
            const size = (e) => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
            return {
              title: document.title,
              table_rings: Array.from(document.querySelectorAll('table.sortable tbody tr'))
                                .map(r => r.cells[0].textContent.trim()),
              sections: Array.from(document.querySelectorAll('section.ring'))
                             .map(s => ({id: s.id, heading: s.querySelector('h2').innerText,
                                         text: s.innerText,
                                         svgs: Array.from(s.querySelectorAll('svg')).map(size)})),
              histogram: size(document.querySelector('svg.histogram')),
              body_text: document.body.innerText,
            };
        })()""", session)
        tools.collect(0.2)
        problems += problems_of(tools.events)
        data = tools.call("Page.captureScreenshot", {"format": "png"}, session)["data"]
        with open(png, "wb") as f:
            f.write(base64.b64decode(data))
        try:
            tools.call("Browser.close")
        except (TimeoutError, EOFError, RuntimeError):
            pass
        return problems, facts
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(to_browser_w)
        os.close(from_browser_r)
        shutil.rmtree(profile, ignore_errors=True)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cli", required=True, help="the ringscan executable")
    p.add_argument("--work", required=True, help="folder for the files (made if missing)")
    p.add_argument("--png", help="where to keep the screenshot (default: in --work)")
    a = p.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("SKIPPED: no chromium on PATH (scripts/install-deps.sh installs Debian's chromium)")
        return 77
    os.makedirs(a.work, exist_ok=True)
    w = lambda name: os.path.join(a.work, name)
    for args in (["generate", "-q", "-o", w("sample.h5"), "--accounts", "5000", "--seed", "7"],
                 ["detect", "-q", w("sample.h5"), "-o", w("rings.h5"), "--report", w("rings.json")],
                 ["report", "-q", w("rings.h5"), "--input", w("sample.h5"), "-o", w("rings.html")]):
        r = subprocess.run([a.cli] + args, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAILED: ringscan {args[0]} exited {r.returncode}:\n{r.stdout}{r.stderr}")
            return 1
    with open(w("rings.json")) as f:
        rings = json.load(f)["rings"]
    png = a.png or w("rings.png")
    problems, facts = render(browser, w("rings.html"), png)

    failures = [f"the page: {x}" for x in problems]
    check = lambda ok, what: ok or failures.append(what)
    check(len(rings) > 0, "the demo's input should have rings")
    check(sorted(facts["table_rings"], key=int) == [str(r["id"]) for r in rings],
          f"table rows {facts['table_rings']} != rings {[r['id'] for r in rings]}")
    top = rings[:20]
    check([s["id"] for s in facts["sections"]] == [f"ring-{r['id']}" for r in top],
          f"sections {[s['id'] for s in facts['sections']]}")
    for ring, section in zip(top, facts["sections"]):
        check(section["heading"].startswith(f"Ring {ring['id']}: {len(ring['members'])} accounts"),
              f"heading {section['heading']!r} for ring {ring['id']}")
        for member in ring["members"]:
            check(str(member) in section["text"], f"member {member} not shown in ring {ring['id']}")
        # Timeline, behaviour and graph, each drawn at a visible size.
        check(len(section["svgs"]) == 3 and all(wd > 100 and ht > 50 for wd, ht in section["svgs"]),
              f"ring {ring['id']}'s drawings: {section['svgs']}")
    check(facts["histogram"][0] > 100 and facts["histogram"][1] > 50, f"histogram {facts['histogram']}")
    check("infrastructure evidence off" in facts["body_text"], "the run's notes are not shown")
    check(png_size(png) == (WIDTH, HEIGHT), f"screenshot {png}: {png_size(png)}")
    check(os.path.getsize(png) > 20000, f"screenshot {png} is nearly empty")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"passed: {len(rings)} rings listed, {len(facts['sections'])} drawn, no console errors; "
          f"screenshot {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
