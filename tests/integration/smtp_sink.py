"""
smtp_sink.py — a real SMTP server for the delivery tests (Debian's
python3-aiosmtpd), on 127.0.0.1.

    /usr/bin/python3 smtp_sink.py --dir DIR [--port N] [--tls CERT KEY]

Listens (port 0: any free port), then writes the port to DIR/port. Each
message accepted is written, bytes as received on the wire after SMTP's
dot-unstuffing (CRLF line ends kept), to DIR/msg-N.eml, and its envelope
and session to DIR/msg-N.json ({"mail_from", "rcpt_tos", "tls", "peer"}),
both renamed into place whole. Every answer to an end of DATA or a RCPT that
the mode refuses is appended to DIR/attempts.log as one line:
"begin ID" when a DATA arrives, then "CODE ID" with the answer (ID is the
X-Interlist-Id of the message, "-" if none).

The answer comes from DIR/mode, re-read for every message (absent: "250"):

    CODE [at=data|rcpt] [delay=SECONDS]

CODE 250 accepts; 4xx/5xx refuse with that code, at the end of DATA or
(at=rcpt) at RCPT TO. delay=S sleeps S seconds before answering the end
of DATA (a slow server; the sleep does not block other sessions).

With --tls the server offers STARTTLS with that certificate (not required).

From Python: SmtpSink(folder).start() runs it as a child process and
offers mode(), messages(), attempts() and stop().
"""
import argparse
import asyncio
import json
import os
import re
import ssl
import subprocess
import sys
import time

REPLIES = {250: "250 2.0.0 OK queued", 451: "451 4.3.0 sink says try again later",
           550: "550 5.7.1 sink says no"}


def reply_for(code):
    return REPLIES.get(code, "%d %d.0.0 sink mode %d" % (code, code // 100, code))


def read_mode(folder):
    try:
        with open(os.path.join(folder, "mode")) as f:
            words = f.read().split()
    except FileNotFoundError:
        words = []
    mode = {"code": 250, "at": "data", "delay": 0.0}
    for i, w in enumerate(words):
        if i == 0 and w.isdigit():
            mode["code"] = int(w)
        elif w.startswith("at="):
            mode["at"] = w[3:]
        elif w.startswith("delay="):
            mode["delay"] = float(w[6:])
    return mode


def interlist_id(raw):
    m = re.search(rb"^X-Interlist-Id: ([0-9a-f]{64})\r?$", raw, re.M)
    return m.group(1).decode() if m else "-"


class Handler:
    def __init__(self, folder):
        self.folder = folder
        self.n = 0

    def log(self, line):
        with open(os.path.join(self.folder, "attempts.log"), "a") as f:
            f.write(line + "\n")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        mode = read_mode(self.folder)
        if mode["at"] == "rcpt" and mode["code"] != 250:
            self.log("%d rcpt" % mode["code"])
            return reply_for(mode["code"])
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        mid = interlist_id(raw)
        self.log("begin %s" % mid)
        mode = read_mode(self.folder)
        if mode["delay"]:
            await asyncio.sleep(mode["delay"])
        code = mode["code"] if mode["at"] == "data" else 250
        if code == 250:
            self.n += 1
            base = os.path.join(self.folder, "msg-%04d" % self.n)
            meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                    "tls": session.ssl is not None, "peer": list(session.peer)}
            for ext, data in ((".eml", raw), (".json", json.dumps(meta).encode())):
                with open(base + ext + ".tmp", "wb") as f:
                    f.write(data)
                os.rename(base + ext + ".tmp", base + ext)
        self.log("%d %s" % (code, mid))
        return reply_for(code)


async def serve(args):
    from aiosmtpd.smtp import SMTP
    tls = None
    if args.tls:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls[0], args.tls[1])
    handler = Handler(args.dir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, tls_context=tls, require_starttls=False, hostname="sink.test"),
        "127.0.0.1", args.port)
    port = server.sockets[0].getsockname()[1]
    with open(os.path.join(args.dir, "port.tmp"), "w") as f:
        f.write("%d\n" % port)
    os.rename(os.path.join(args.dir, "port.tmp"), os.path.join(args.dir, "port"))
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description="SMTP sink for the interlist delivery tests")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


class SmtpSink:
    """The sink as a child process (python3 with aiosmtpd), for the tests."""

    def __init__(self, folder, tls=None, python="/usr/bin/python3"):
        self.dir = folder
        self.tls = tls
        self.python = python
        self.proc = None
        self.port = None
        os.makedirs(folder, exist_ok=True)

    def start(self, timeout=15):
        args = [self.python, os.path.abspath(__file__), "--dir", self.dir]
        if self.tls:
            args += ["--tls", self.tls[0], self.tls[1]]
        log = open(os.path.join(self.dir, "sink.log"), "ab")
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
        port_file = os.path.join(self.dir, "port")
        deadline = time.monotonic() + timeout
        while not os.path.exists(port_file):
            if self.proc.poll() is not None:
                raise RuntimeError("smtp_sink exited with %d: %s" % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise RuntimeError("smtp_sink did not start within %d s" % timeout)
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read())
        return self

    def log(self):
        try:
            with open(os.path.join(self.dir, "sink.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def mode(self, text):
        """Set the answer for the next messages: "250", "451", "550 at=rcpt", "250 delay=3"."""
        tmp = os.path.join(self.dir, "mode.tmp")
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.rename(tmp, os.path.join(self.dir, "mode"))

    def messages(self):
        """[(raw bytes, meta dict)] of the messages accepted, in order."""
        out = []
        for name in sorted(os.listdir(self.dir)):
            if name.startswith("msg-") and name.endswith(".eml"):
                base = os.path.join(self.dir, name[:-4])
                with open(base + ".eml", "rb") as f:
                    raw = f.read()
                with open(base + ".json") as f:
                    meta = json.load(f)
                out.append((raw, meta))
        return out

    def ids(self):
        """X-Interlist-Id of every accepted message, in order (repeats kept)."""
        return [interlist_id(raw) for raw, _ in self.messages()]

    def attempts(self):
        try:
            with open(os.path.join(self.dir, "attempts.log")) as f:
                return [l.split() for l in f.read().splitlines() if l]
        except FileNotFoundError:
            return []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
