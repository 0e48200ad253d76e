#!/usr/bin/env python3
"""Drives the console in headless Chromium against a real `chatledger run`.

Usage: check_console.py PATH/TO/chatledger [SCREENSHOT_DIR]

Starts `chatledger run` (embedded broker) with an auditor and a reader key, publishes a
small realistic history with `chatledger produce` (pinned, muted, archived, group and
marked-unread chats, an own message with its receipt, a revoked message, and a message
whose preview is `<img src=x onerror=alert(1)>`), then drives Chromium through the
DevTools protocol over --remote-debugging-pipe (file descriptors 3 and 4, NUL-separated
JSON: no websocket library needed) and checks, as a person would see it:

- the key typed into the form and submitted with Enter is kept in sessionStorage and sent
  only in the x-api-key header: no request URL contains it;
- the devices appear with their unread totals, and a chat list in WhatsApp's order;
- three messages produced to a read chat make its badge say 3 without a reload (the page
  follows the `changes` stream through fetch());
- the hostile preview is shown as those characters: no <img> element, no dialog;
- an auditor sees the chat's events and the list as of a time before the three messages;
- a reader key sees only its own device and no auditor views;
- no script error and no Content-Security-Policy violation happened.

Screenshots at desktop and phone width go to SCREENSHOT_DIR (default
.build/console-screenshots). Every wait is for a condition, with a timeout. Exits 1 on
any failure.
"""
import base64
import json
import os
import pathlib
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "Support"))
import chatledger_run  # noqa: E402

AUDITOR, READER = "console-auditor-key", "console-reader-key"
HOSTILE = "<img src=x onerror=alert(1)>"
failures = []


def fail(message):
    failures.append(message)
    print("FAIL", message, flush=True)


def ok(message):
    print("ok  ", message, flush=True)


def expect(condition, message):
    (ok if condition else fail)(message)
    return condition


# MARK: - chatledger


class Ledger(chatledger_run.Ledger):
    """The shared starter's `chatledger run`, with an auditor and a reader key, its log in run.log."""

    def __init__(self, binary, directory):
        keys = chatledger_run.write_keys(pathlib.Path(directory) / "keys.json", [
            {"key": AUDITOR, "devices": ["*"], "role": "auditor"},
            {"key": READER, "devices": ["dev-1"], "role": "reader"}])
        super().__init__(binary, directory + "/data", keys, stderr=open(directory + "/run.log", "w"))
        self.directory = directory
        self.files = 0

    def produce(self, events):
        """Publishes events and waits until the projection has applied them."""
        self.files += 1
        path = pathlib.Path(self.directory) / f"events-{self.files}.ndjson"
        path.write_text("".join(json.dumps(event) + "\n" for event in events))
        self.await_applied(super().produce("--file", str(path)), AUDITOR)


def event(number, device, chat, kind, data, at):
    return {"schemaVersion": 1, "eventId": f"console-{device}-{number}", "deviceId": device, "type": kind,
            "occurredAt": at, "chatId": chat, "data": data}


def history(now):
    """A device as a person's phone would have it: names, a pin, a mute, an archive, a group."""
    events = []
    minute = 60_000

    def add(device, chat, kind, data, ago):
        events.append(event(len(events), device, chat, kind, data, now - ago * minute))

    def message(device, chat, number, preview, ago, from_me=False, kind="text", sender=None):
        data = {"messageId": f"M{len(events)}-{number}", "fromMe": from_me, "kind": kind, "preview": preview}
        if sender:
            data["senderId"] = sender
        add(device, chat, "message.created", data, ago)
        return data["messageId"]

    alice, family, bob, mallory = "491701111111@c.us", "120363000000001@g.us", "491702222222@c.us", "491703333333@c.us"
    carol, dave, erin, frank, unknown = ("491704444444@c.us", "491705555555@c.us", "491706666666@c.us",
                                         "491707777777@c.us", "491709999999@c.us")
    for chat, name in [(alice, "Alice"), (family, "Family"), (bob, "Bob"), (mallory, "Mallory"), (carol, "Carol"),
                       (dave, "Dave"), (erin, "Erin"), (frank, "Frank")]:
        add("dev-1", chat, "chat.updated", {"name": name}, 3000)
    message("dev-1", alice, 1, "Are we still on for lunch?", 400)
    message("dev-1", alice, 2, "I booked the place by the river", 398)
    add("dev-1", alice, "chat.pinned", {"pinned": True}, 390)
    for number, text in enumerate(["Photos from Sunday!", "So nice", "Who brings the cake?", "I can", "Great, thanks"]):
        message("dev-1", family, number, text, 200 - number, sender=f"4917000000{number}@c.us")
    add("dev-1", family, "chat.muted", {"muteUntil": -1}, 150)
    sent = message("dev-1", bob, 1, "see you at 8", 90, from_me=True)
    add("dev-1", bob, "message.status", {"messageIds": [sent], "status": "read"}, 89)
    message("dev-1", mallory, 1, HOSTILE, 60)
    message("dev-1", carol, 1, "Old thread, archived", 5000)
    add("dev-1", carol, "chat.archived", {"archived": True}, 4990)
    message("dev-1", dave, 1, "Did you get my email?", 50)
    message("dev-1", dave, 2, "Yes, answering tonight", 45, from_me=True)  # Dave's chat is read: no badge
    message("dev-1", erin, 1, "Call me when you can", 30)
    add("dev-1", erin, "chat.read", {}, 29)
    add("dev-1", erin, "chat.markedUnread", {}, 28)
    message("dev-1", frank, 1, "", 20, kind="image")
    revoked = message("dev-1", unknown, 1, "oops, wrong chat", 10)
    add("dev-1", unknown, "message.revoked", {"messageId": revoked, "scope": "everyone"}, 9)
    message("dev-2", "491700000001@c.us", 1, "Hello from the second phone", 15)
    message("dev-2", "491700000002@c.us", 1, "Meeting moved to 3", 14)
    message("dev-3", "491700000003@c.us", 1, "Parcel delivered", 13)
    return events, dave


# MARK: - Chromium over the DevTools pipe


class Browser:
    def __init__(self, profile):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            raise SystemExit("chromium is not installed (deploy/local.sh test installs Debian's chromium)")
        commands_read, self.commands = os.pipe()
        self.replies, replies_write = os.pipe()
        flags = ["--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--mute-audio", "--lang=en-GB",
                 f"--user-data-dir={profile}", "--window-size=1280,900", "about:blank"]
        # Chromium reads commands on fd 3 and writes replies on fd 4.
        self.process = subprocess.Popen(
            ["bash", "-c", f'exec "$@" 3<&{commands_read} 4>&{replies_write}', "chromium", chromium, *flags],
            pass_fds=(commands_read, replies_write), stdout=subprocess.DEVNULL, stderr=open(profile + ".log", "w"),
            env={**os.environ, "TZ": "UTC"})
        os.close(commands_read)
        os.close(replies_write)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def send(self, method, params=None, session=True, timeout=30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply is None:
                raise SystemExit(f"Chromium did not answer {method} within {timeout} s")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def _read(self, deadline):
        while b"\0" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.replies], [], [], remaining)[0]:
                return None
            chunk = os.read(self.replies, 1 << 20)
            if not chunk:
                raise SystemExit("Chromium closed the DevTools pipe (see its log beside the profile)")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def open_page(self):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        for domain in ["Page", "Runtime", "Log", "Network"]:
            self.send(domain + ".enable")

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate {expression[:60]!r}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression, what, timeout=20):
        """Evaluates `expression` until it is truthy (or `timeout` s pass); its last value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                ok(what)
                return value
            time.sleep(0.1)  # polling a condition, not a synchronisation by time
        fail(f"{what}: not within {timeout} s (last: {value!r})")
        return value

    def type_text(self, text):
        self.send("Input.insertText", {"text": text})

    def press_enter(self):
        for kind in ["keyDown", "keyUp"]:
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13,
                                                 **({"text": "\r"} if kind == "keyDown" else {})})

    def screenshot(self, path, width, height, mobile):
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        self.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": width, "height": max(height, min(int(size["height"]), 4000)), "scale": 1}
        data = self.send("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True})["data"]
        pathlib.Path(path).write_bytes(base64.b64decode(data))
        ok(f"screenshot {path} ({width}x{clip['height']})")

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except (SystemExit, RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# MARK: - The checks


def js(value):
    return json.dumps(value)


def chat_row(chat_id):
    return f"document.querySelector('#chat-list li[data-chat-id={js(chat_id)}]')"


def badge_of(chat_id):
    return f"(() => {{ const row = {chat_row(chat_id)}; const badge = row && row.querySelector('.badge'); " \
           f"return row ? (badge ? badge.textContent : '') : null; }})()"


def run_checks(ledger, browser, screenshots):
    page_url = ledger.url + "/"
    browser.send("Page.navigate", {"url": page_url})
    browser.wait_for("document.readyState === 'complete' && !!document.getElementById('key-input')", "the console loads")
    browser.evaluate("window.__sameDocument = 'yes'")
    browser.screenshot(f"{screenshots}/key-entry-phone.png", 390, 844, mobile=True)
    browser.send("Emulation.clearDeviceMetricsOverride")

    # The key, typed and submitted with Enter as a person would.
    browser.evaluate("document.getElementById('key-input').focus()")
    browser.type_text(AUDITOR)
    browser.press_enter()
    browser.wait_for("!document.getElementById('app').hidden", "the key is accepted: the app shows")
    expect(browser.evaluate(f"sessionStorage.getItem('chatledger.apiKey') === {js(AUDITOR)}"), "the key is kept in sessionStorage")
    expect(browser.evaluate("document.getElementById('key-input').value === ''") or
           browser.evaluate("document.getElementById('key-form').hidden"), "the key form is put away")

    devices = browser.wait_for(
        "(() => { const ids = [...document.querySelectorAll('#device-list li')].map((li) => li.dataset.deviceId);"
        " return ids.length === 3 ? ids : null; })()", "three devices listed")
    expect(devices == ["dev-1", "dev-2", "dev-3"], f"devices in order: {devices}")
    totals = browser.evaluate("document.querySelector('#device-list li[data-device-id=\"dev-1\"] .badge').textContent")
    expect(totals == "10", f"dev-1's unread messages badge: {totals!r} (Alice 2, Family 5, Mallory 1, Frank 1, archived Carol 1)")

    rows = browser.wait_for(
        "(() => { const rows = [...document.querySelectorAll('#chat-list li')].map((li) => li.dataset.chatId);"
        " return rows.length >= 8 ? rows : null; })()", "dev-1's chat list shows")
    expect(rows and rows[0] == "491701111111@c.us", f"the pinned chat is first: {rows[:2] if rows else rows}")
    expect(rows and "491704444444@c.us" not in rows, "the archived chat is not in the main list")
    expect(browser.evaluate(badge_of("491701111111@c.us")) == "2", "Alice's badge says 2")
    expect(browser.evaluate(f"{chat_row('120363000000001@g.us')}.querySelector('.badge.muted').textContent") == "5",
           "the muted group's badge says 5, in the muted colour")
    expect(browser.evaluate(f"{chat_row('491706666666@c.us')}.querySelector('.badge.dot') !== null"),
           "the chat marked unread shows a dot")
    marks = browser.evaluate(f"[...{chat_row('120363000000001@g.us')}.querySelectorAll('.mark')].map((m) => m.textContent)")
    expect(marks == ["Group", "Muted"], f"the group's marks: {marks}")
    expect(browser.evaluate(f"{chat_row('491709999999@c.us')}.querySelector('.preview.revoked') !== null"),
           "a revoked last message says it was deleted")

    # The hostile preview is text.
    hostile = browser.evaluate(f"{chat_row('491703333333@c.us')}.querySelector('.preview').textContent")
    expect(hostile == HOSTILE, f"the hostile preview shows its characters: {hostile!r}")
    expect(browser.evaluate("document.querySelectorAll('img').length === 0"), "no <img> element exists in the page")

    # Live: Dave's chat is read (no badge); three messages arrive; the badge says 3 without a reload.
    dave = "491705555555@c.us"
    expect(browser.evaluate(badge_of(dave)) == "", "Dave's chat is read: no badge")
    browser.wait_for("document.getElementById('live-state').textContent === 'Live'", "the change stream is live")
    before_three = int(time.time() * 1000) // 1000 * 1000 + 1000  # the next whole second: datetime-local's step
    while time.time() * 1000 <= before_three:  # the three messages must get Kafka timestamps after it
        time.sleep(0.05)
    browser.evaluate(f"{chat_row(dave)}.querySelector('button').focus()")  # a keyboard user is on Dave's row
    browser.evaluate("window.__daveButton = document.activeElement")
    now = int(time.time() * 1000)
    ledger.produce([event(1000 + n, "dev-1", dave, "message.created",
                          {"messageId": f"LIVE{n}", "fromMe": False, "kind": "text", "preview": f"live message {n}"}, now + n)
                    for n in range(1, 4)])
    browser.wait_for(f"{badge_of(dave)} === '3'", "Dave's badge becomes 3 without a reload", timeout=20)
    expect(browser.evaluate(f"window.__daveButton !== {chat_row(dave)}.querySelector('button') && "
                            f"document.activeElement === {chat_row(dave)}.querySelector('button')"),
           "the live update re-rendered the list and kept the keyboard focus on Dave's row")
    expect(browser.evaluate("window.__sameDocument === 'yes'"), "the same document: no reload happened")
    first = browser.evaluate("document.querySelector('#chat-list li').dataset.chatId")
    second = browser.evaluate("document.querySelectorAll('#chat-list li')[1].dataset.chatId")
    expect(first == "491701111111@c.us" and second == dave, f"pinned Alice stays first, Dave moves up: {first}, {second}")
    browser.wait_for("document.querySelector('#device-list li[data-device-id=\"dev-1\"] .badge').textContent === '13'",
                     "dev-1's unread total follows: 13")

    # One chat's details, and its events for the auditor; the hostile text stays text there too.
    # Opened from the keyboard: the row is a button; Enter on it shows the details, focus stays on it.
    browser.evaluate(f"{chat_row('491703333333@c.us')}.querySelector('button').focus()")
    browser.press_enter()
    browser.wait_for("document.getElementById('chat-title').textContent === 'Mallory'", "Enter on a chat shows its details")
    expect(browser.evaluate(f"document.activeElement === {chat_row('491703333333@c.us')}.querySelector('button')"),
           "focus stays on the chat's row")
    browser.wait_for("document.querySelectorAll('#event-list li').length === 2", "the auditor sees the chat's two events")
    data = browser.evaluate("[...document.querySelectorAll('#event-list pre')].map((pre) => pre.textContent).join('\\n')")
    expect(HOSTILE in (data or ""), "the event data shows the hostile preview as text")
    expect(browser.evaluate("document.querySelectorAll('img').length === 0"), "still no <img> element")

    browser.screenshot(f"{screenshots}/desktop.png", 1280, 900, mobile=False)
    browser.screenshot(f"{screenshots}/phone.png", 390, 844, mobile=True)
    browser.send("Emulation.clearDeviceMetricsOverride")

    # The list as of a time before the three messages (auditor): Dave's chat was read then.
    browser.evaluate(
        f"(() => {{ const d = new Date({before_three}); const p = (n) => String(n).padStart(2, '0');"
        " document.getElementById('asof-input').value = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T"
        "${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;"
        " document.querySelector('#asof-form button[type=submit]').click(); })()")
    browser.wait_for(f"!document.getElementById('asof-banner').hidden && {badge_of(dave)} === ''",
                     "as of before the three messages, Dave's chat had no badge")
    browser.evaluate("document.getElementById('asof-clear').click()")
    browser.wait_for(f"{badge_of(dave)} === '3'", "back to live: 3 again")

    # Filters.
    browser.evaluate("document.querySelector('label[for=filter-archived]').click()")
    browser.wait_for(
        "(() => { const ids = [...document.querySelectorAll('#chat-list li')].map((li) => li.dataset.chatId);"
        " return ids.length === 1 && ids[0] === '491704444444@c.us'; })()", "the archived filter shows the archived chat")
    browser.evaluate("document.querySelector('label[for=filter-all]').click()")

    # A reader key: its own device only, no auditor views.
    browser.evaluate("document.getElementById('forget-key').click()")
    browser.wait_for("!document.getElementById('key-form').hidden && sessionStorage.length === 0", "forgetting the key clears it")
    browser.evaluate("document.getElementById('key-input').focus()")
    browser.type_text(READER)
    browser.press_enter()
    reader_devices = browser.wait_for(
        "(() => { const ids = [...document.querySelectorAll('#device-list li')].map((li) => li.dataset.deviceId);"
        " return ids.length ? ids : null; })()", "the reader's devices show")
    expect(reader_devices == ["dev-1"], f"a reader for dev-1 sees dev-1 only: {reader_devices}")
    expect(browser.evaluate("document.getElementById('asof-form').hidden"), "no asOf form for a reader")

    # Wrong key: refused, nothing stored.
    browser.evaluate("document.getElementById('forget-key').click()")
    browser.evaluate("document.getElementById('key-input').focus()")
    browser.type_text("not-a-key")
    browser.press_enter()
    browser.wait_for("!document.getElementById('message').hidden", "a wrong key is refused with a message")
    expect(browser.evaluate("sessionStorage.length === 0"), "a wrong key is not stored")

    # What happened on the way.
    urls = [e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"]
    expect(len(urls) > 10, f"requests seen: {len(urls)}")
    expect(not any(key in url for url in urls for key in (AUDITOR, READER, "not-a-key")), "no request URL carries a key")
    expect(any("/changes" in url for url in urls), "the change stream was requested")
    dialogs = [e for e in browser.events if e["method"] == "Page.javascriptDialogOpening"]
    expect(not dialogs, f"no dialog opened: {dialogs[:1]}")
    errors = [e["params"]["exceptionDetails"].get("text") for e in browser.events if e["method"] == "Runtime.exceptionThrown"]
    expect(not errors, f"no script error: {errors[:3]}")
    violations = [e["params"]["entry"]["text"] for e in browser.events
                  if e["method"] == "Log.entryAdded" and "Content Security Policy" in e["params"]["entry"].get("text", "")]
    expect(not violations, f"no Content-Security-Policy violation: {violations[:3]}")


def main():
    binary = os.path.abspath(sys.argv[1])
    screenshots = sys.argv[2] if len(sys.argv) > 2 else ".build/console-screenshots"
    os.makedirs(screenshots, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        ledger = Ledger(binary, directory)
        browser = None
        try:
            events, _ = history(int(time.time() * 1000))
            ledger.produce(events)
            browser = Browser(directory + "/profile")
            browser.open_page()
            run_checks(ledger, browser, screenshots)
        except Exception as error:  # report, then clean up
            fail(f"{type(error).__name__}: {error}")
        finally:
            if browser:
                browser.close()
            ledger.stop()
            if failures:  # what the processes said, to find the cause
                for log in [directory + "/run.log", directory + "/profile.log"]:
                    if os.path.exists(log):
                        print(f"--- last lines of {os.path.basename(log)}")
                        print("".join(open(log, errors="replace").readlines()[-20:]))
    print(f"{len(failures)} failures; screenshots in {screenshots}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
