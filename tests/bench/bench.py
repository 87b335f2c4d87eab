#!/usr/bin/python3
"""
bench.py — interlist's benchmark driver (run by scripts/bench; Debian's
/usr/bin/python3, standard library only).

Runs real relays on 127.0.0.1 with the integration harness
(tests/integration/harness.py), feeds them with lmtpload (a C LMTP load
generator) through a list's `ingest = lmtp://...`, and measures:

  limits    Ed25519 sign/verify per second on one core (openssl speed) and
            SQLite batched inserts per second on the disk the relays use
  two       throughput A -> B (B dials A): N messages into A's LMTP ingest,
            time until B's status shows delivered == N
  chain     the same through A -> B -> C -> D -> E, delivered at E
  catchup   B down while N messages queue at A; time for B to deliver them
            once it is started again
  latency   200 messages/s for 15 s, submit at A -> file in the Maildir, for
            two relays and for the five-relay chain (p50/p99/max)
  backlog   RSS of A with 100,000 messages queued for a peer that is down
            (then B is started and must receive them all)
  overload  A's [peer b] max_rate = 500, fed at full speed: B gets every
            message, A's RSS stays bounded, A's queue drains at ~max_rate

Every run checks, by Message-ID in the receiving Maildir, that each message
arrived exactly once; the exit status is 1 if any was lost or duplicated (or
a run broke), never because something was slow. Figures go to stdout as a
table and to bench-results.json at the repository root.

Usage: bench.py [--quick] [--only NAME[,NAME]] [--messages N] [--conns C]
                [--size BYTES] [--random-ids] [--no-chunking] [--backlog-messages N] [--overload-messages N]
                [--max-rate R] [--latency-seconds S] [--latency-rate R]
                [--build DIR] [--log-level LEVEL] [--profile DIR]
                [--profile-callgraph MODE] [--trace DIR] [--keep] [--json PATH]

--profile DIR records each relay of each run with `perf record -e cpu-clock`
(DWARF call graphs: the release build has no frame pointers) into
DIR/RUN-RELAY.perf.data; --trace DIR writes `perf trace -s` syscall
summaries. docs/performance.md shows how to read them.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNS = ("limits", "two", "chain", "catchup", "latency", "backlog", "overload", "soak")
# soak lasts ten minutes: only when asked for (--only soak)
DEFAULT_RUNS = tuple(r for r in RUNS if r != "soak")
LIST = "bench"
POLL = 0.02             # status polling interval, seconds
STALL = 60.0            # no progress for this long: the run is broken


# ---------------------------------------------------------------- options --

def parse_args():
    ap = argparse.ArgumentParser(description="interlist benchmark (see the module docstring)")
    ap.add_argument("--quick", action="store_true", help="small figures: a smoke run of every step")
    ap.add_argument("--only", default="", help="comma list of: " + ", ".join(RUNS) +
                    " (default: all but soak)")
    ap.add_argument("--messages", type=int, help="messages for two/chain/catchup (20000; quick 2000)")
    # 48: where the two-relay figure stops rising on 2 cores (16: 3,800,
    # 32: 4,700, 48: 5,200, 64: 5,100 msg/s; docs/performance.md). Each
    # connection has one message in flight, so fewer measure the feed's
    # concurrency against A's group commit, not what the relays can take.
    ap.add_argument("--conns", type=int, default=48, help="LMTP connections of the feed (48)")
    ap.add_argument("--size", type=int, default=2048, help="message size in bytes (2048)")
    ap.add_argument("--ingest", choices=("tcp", "unix"), default="tcp",
                    help="how the feed reaches A's LMTP ingest: 127.0.0.1 (tcp, the default) or a "
                         "socket file (unix, as an MTA on the relay's host would)")
    ap.add_argument("--no-chunking", action="store_true",
                    help="feed with DATA only (default: BDAT, as Postfix does when the relay offers CHUNKING)")
    ap.add_argument("--random-ids", action="store_true",
                    help="Message-IDs in random order, as in real mail (default: in sending order)")
    ap.add_argument("--backlog-messages", type=int, help="messages queued in the backlog run (100000; quick 5000)")
    ap.add_argument("--overload-messages", type=int, help="messages of the overload run (5000; quick 2000)")
    ap.add_argument("--max-rate", type=float, default=250, help="max_rate of the overload run (250: the feed then runs at 10x or more)")
    ap.add_argument("--latency-seconds", type=float, help="length of each latency run (15; quick 4)")
    ap.add_argument("--latency-rate", type=float, default=200, help="messages/s of the latency runs (200)")
    ap.add_argument("--soak-seconds", type=float, help="length of the soak run (600; quick 20)")
    ap.add_argument("--soak-rate", type=float, default=500, help="messages/s of the soak run (500)")
    ap.add_argument("--topology", choices=("pull", "push"), default="pull",
                    help="pull: the receiving side dials (default deployment); push: the sender dials")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"), help="meson build dir (build-bench)")
    ap.add_argument("--log-level", default="info", help="relays' log_level (info, the default deployment)")
    ap.add_argument("--profile", metavar="DIR", help="record each relay with perf (cpu-clock) into DIR")
    ap.add_argument("--profile-callgraph", default="dwarf,8192", metavar="MODE",
                    help="perf --call-graph mode (dwarf,8192: the release build has no frame pointers)")
    ap.add_argument("--trace", metavar="DIR",
                    help="perf trace -s (syscall counts and time, per thread) of each relay into DIR")
    ap.add_argument("--repeat", type=int, help="runs of two and chain, each with new relays; the "
                    "median is reported, every run is checked and listed (3; quick 1)")
    ap.add_argument("--keep", action="store_true", help="keep the relays' folders (IL_KEEP_TMP)")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench-results.json"), help="results file")
    a = ap.parse_args()
    q = a.quick
    a.messages = a.messages or (2000 if q else 20000)
    a.repeat = a.repeat or (1 if q else 3)
    a.backlog_messages = a.backlog_messages or (5000 if q else 100000)
    a.overload_messages = a.overload_messages or (2000 if q else 5000)
    a.latency_seconds = a.latency_seconds or (4 if q else 15)
    a.soak_seconds = a.soak_seconds or (20 if q else 600)
    a.speed_seconds = 1 if q else 3
    a.build = os.path.abspath(a.build)      # the relays run in their own folders
    a.only = [x.strip() for x in a.only.split(",") if x.strip()] or list(DEFAULT_RUNS)
    bad = [x for x in a.only if x not in RUNS]
    if bad:
        ap.error("--only: unknown run(s) %s (known: %s)" % (", ".join(bad), ", ".join(RUNS)))
    for k in ("messages", "conns", "backlog_messages", "overload_messages", "repeat"):
        if getattr(a, k) < 1:
            ap.error("--%s must be at least 1" % k.replace("_", "-"))
    return a


ARGS = parse_args()

# The harness reads the binaries' paths from the environment at import.
for var, rel in (("INTERLISTD", "relay/interlistd"), ("INTERLISTCTL", "relay/interlistctl"),
                 ("LMTPLOAD", "relay/lmtpload")):
    os.environ.setdefault(var, os.path.join(ARGS.build, rel))
LMTPLOAD = os.environ["LMTPLOAD"]
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
from harness import Failure, Federation, free_port  # noqa: E402


def log(msg):
    print("# " + msg, flush=True)


STOPPED = set()         # interlistd processes stopped on purpose (by PID)


def stop_relay(r, expect=0):
    STOPPED.add(r.pid)
    return r.stop(timeout=30, expect=expect)


def crashed_relays():
    """Relays of the current federation whose process ended unasked."""
    out = []
    for r in BenchFederation.CURRENT.relays if BenchFederation.CURRENT else []:
        if r.proc is not None and r.proc.poll() is not None and r.pid not in STOPPED:
            out.append("%s (exit %s)" % (r.id, r.proc.returncode))
    return out


class BenchFederation(Federation):
    """The harness's Federation, but the folder is removed only at the end
    of the whole benchmark (remove_later): on this machine's ext4 (no
    journal) an inode freed less than 5 minutes ago is skipped when a new
    one is allocated, so deleting one run's 20,000 files would slow the
    next run's Maildir writes. Relays are killed (by PID) as in the harness."""

    LATER = []
    CURRENT = None

    def __enter__(self):
        self.outer, BenchFederation.CURRENT = BenchFederation.CURRENT, self
        return self

    def __exit__(self, et, ev, tb):
        BenchFederation.CURRENT = self.outer
        self.kill_relays()
        if et is not None or getattr(self, "failed", False):
            self.print_logs()
            print("# left %s for inspection" % self.tmp, flush=True)
        elif ARGS.keep:
            print("# kept %s" % self.tmp, flush=True)
        else:
            BenchFederation.LATER.append(self.tmp)
        return False

    @classmethod
    def remove_later(cls):
        for d in cls.LATER:
            shutil.rmtree(d, ignore_errors=True)
        cls.LATER = []


# ---------------------------------------------------------------- helpers --

def proc_status(pid):
    """VmHWM and VmRSS of a process, in KiB (None when it is gone)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])
    except OSError:
        return None
    return out


def proc_cpu(pid):
    """User + system CPU seconds of a process so far."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def proc_io(pid):
    """/proc/PID/io: wchar (bytes handed to write calls), syscw (write
    calls), write_bytes (bytes sent to the block layer)."""
    out = {}
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("wchar", "syscw", "write_bytes"):
                    out[k] = int(v)
    except (OSError, ValueError):
        return None
    return out


def dir_bytes(path):
    """Disk space used by the files under path (allocated blocks)."""
    total = 0
    for dp, _, files in os.walk(path):
        for n in files:
            try:
                total += os.lstat(os.path.join(dp, n)).st_blocks * 512
            except OSError:
                pass
    return total


class Sampler:
    """Peak RSS (VmHWM: the peak since the process started) and CPU time of
    the relays in a run: mark() at the start of what is measured, take()
    just before they stop; cpu is the CPU seconds in between."""

    def __init__(self):
        self.rss = {}
        self.cpu = {}
        self.io = {}
        self.base = {}
        self.base_io = {}

    def mark(self, *relays):
        for r in relays:
            self.base[r.id] = proc_cpu(r.pid) or 0.0
            self.base_io[r.id] = proc_io(r.pid) or {}

    def take(self, *relays):
        for r in relays:
            if not r.running():
                continue
            st = proc_status(r.pid)
            if st:
                self.rss[r.id] = max(self.rss.get(r.id, 0), st.get("VmHWM", 0))
            c = proc_cpu(r.pid)
            if c is not None:
                self.cpu[r.id] = round(c - self.base.get(r.id, 0.0), 2)
            io = proc_io(r.pid)
            if io:
                b = self.base_io.get(r.id, {})
                self.io[r.id] = {k: v - b.get(k, 0) for k, v in io.items()}

    def per_msg(self, n):
        """CPU milliseconds per message, per relay."""
        return {k: round(v * 1000.0 / n, 3) for k, v in self.cpu.items()}

    def io_per_msg(self, n):
        """Writes per message, per relay: write calls, bytes written by
        them (store, WAL, Maildir, logs) and bytes that reached the disk."""
        return {k: {"write_calls": round(v.get("syscw", 0) / n, 1),
                    "written_bytes": round(v.get("wchar", 0) / n),
                    "disk_bytes": round(v.get("write_bytes", 0) / n)} for k, v in self.io.items()}


def mib(kib):
    return round(kib / 1024.0, 1)


class Perf:
    """perf on each relay of a run: record -e cpu-clock (--profile DIR) and/or
    trace -s (--trace DIR), from attach() to detach()."""

    def __init__(self, run):
        self.run = run
        self.procs = []

    def attach(self, *relays):
        for r in relays:
            if ARGS.profile:
                os.makedirs(ARGS.profile, exist_ok=True)
                out = os.path.join(ARGS.profile, "%s-%s.perf.data" % (self.run, r.id))
                self._start(["perf", "record", "-q", "-e", "cpu-clock", "-F", "499",
                             "--call-graph", ARGS.profile_callgraph, "-p", str(r.pid), "-o", out])
            if ARGS.trace:
                os.makedirs(ARGS.trace, exist_ok=True)
                out = os.path.join(ARGS.trace, "%s-%s.trace.txt" % (self.run, r.id))
                self._start(["perf", "trace", "-s", "-p", str(r.pid), "-o", out])
        if self.procs:
            time.sleep(0.3)         # let perf attach before the load starts

    def _start(self, args):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        harness._PROCS.append(p)
        self.procs.append(p)

    def detach(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []


def lmtpload(port, n, prefix, first=0, rate=None, stamp=False, conns=None):
    """Start lmtpload (recorded, so killed at exit whatever happens)."""
    where = ["--unix", port] if isinstance(port, str) else ["--host", "127.0.0.1", "--port", str(port)]
    args = [LMTPLOAD] + where + ["--conns", str(conns or ARGS.conns),
            "--messages", str(n), "--size", str(ARGS.size), "--prefix", prefix,
            "--first", str(first), "--timeout", "1200"]
    if rate:
        args += ["--rate", "%g" % rate]
    if stamp:
        args.append("--stamp")
    if ARGS.random_ids:
        args.append("--random-ids")
    if ARGS.no_chunking:
        args.append("--no-chunking")
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    harness._PROCS.append(p)
    return p


def load_result(p, timeout=1300):
    """Wait for lmtpload; its JSON line (Failure if it broke)."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Failure("lmtpload did not finish")
    lines = [l for l in out.decode().splitlines() if l.startswith("{")]
    if not lines:
        raise Failure("lmtpload exit %d without a result: %s" % (p.returncode, err.decode()[-500:]))
    res = json.loads(lines[-1])
    res["exit"] = p.returncode
    if err.strip():
        res["stderr"] = err.decode(errors="replace")[-1000:]
    return res


def delivered(r):
    return r.list_status(LIST)["delivered"]


def wait_count(what, get, target, feed=None, samples=None, t_zero=None):
    """Poll get() every POLL s until it reaches target. Returns the time
    (time.time()) it did. A feed (lmtpload Popen) that exits with failures
    does not stop the wait; no progress for STALL s raises Failure.
    samples, when given, collects (t - t_zero, value)."""
    last_v, last_t = None, time.monotonic()
    while True:
        try:
            v = get()
        except (OSError, ValueError, KeyError):
            v = last_v
        now = time.time()
        if samples is not None and v is not None:
            samples.append((round(now - t_zero, 3), v))
        if v is not None and v >= target:
            return now
        dead = crashed_relays()
        if dead:
            raise Failure("%s: relay %s died (at %r of %d)" % (what, ", ".join(dead), v, target))
        if v != last_v:
            last_v, last_t = v, time.monotonic()
        elif time.monotonic() - last_t > STALL and (feed is None or feed.poll() is not None):
            raise Failure("%s: stuck at %r of %d for %.0f s" % (what, v, target, STALL))
        time.sleep(POLL)


MSGID = re.compile(rb"^Message-ID:[ \t]*<([^>]*)>", re.M | re.I)
RANDOM_PART = re.compile(r"^[0-9a-f]{16}\.")     # lmtpload --random-ids


def check_maildir(r, prefix, n, first=0):
    """Each of <prefix-i@bench.example> (first <= i < first+n) exactly once
    in r's Maildir: {"files", "lost", "duplicated", "foreign"}."""
    want = {"%s-%d@bench.example" % (prefix, i) for i in range(first, first + n)}
    seen = {}
    files = r.maildir_files(LIST)
    for path in files:
        with open(path, "rb") as f:
            head = f.read(8192)
        end = head.find(b"\n\n")
        m = MSGID.search(head[:end] if end >= 0 else head)
        mid = m.group(1).decode(errors="replace") if m else None
        if mid and ARGS.random_ids:
            mid = RANDOM_PART.sub("", mid, count=1)
        seen[mid] = seen.get(mid, 0) + 1
    lost = len(want - set(seen))
    dup = sum(c - 1 for k, c in seen.items() if k in want and c > 1)
    foreign = sum(c for k, c in seen.items() if k not in want)
    return {"files": len(files), "lost": lost, "duplicated": dup, "foreign": foreign}


class ArrivalWatch:
    """When each file appears in a Maildir's new/ (rename into it), by
    inotify (ctypes; the standard library has no binding): a thread blocked
    in read() stamps each IN_MOVED_TO/IN_CREATE with the wall clock. File
    mtimes come from the kernel's coarse clock (a jiffy, 4 ms at HZ=250, and
    taken at the write into tmp/, before the sync and the rename), so this
    is the sharper measure of "the file is in the Maildir"."""

    IN_CREATE, IN_MOVED_TO = 0x100, 0x80

    def __init__(self, folder):
        import ctypes
        import threading
        self.times = {}
        self.fd = -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self.fd = libc.inotify_init1(0o2000000)          # IN_CLOEXEC
            if self.fd < 0 or libc.inotify_add_watch(self.fd, folder.encode(),
                                                     self.IN_CREATE | self.IN_MOVED_TO) < 0:
                raise OSError(ctypes.get_errno(), "inotify")
        except (OSError, AttributeError) as e:
            log("inotify unavailable (%s): latency from mtimes only" % e)
            if self.fd >= 0:
                os.close(self.fd)
            self.fd = -1
            return
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        import struct
        while True:
            try:
                buf = os.read(self.fd, 1 << 16)
            except OSError:
                return
            now = time.time_ns()
            pos = 0
            while pos + 16 <= len(buf):
                _, _, _, ln = struct.unpack_from("iIII", buf, pos)
                name = buf[pos + 16:pos + 16 + ln].rstrip(b"\0").decode(errors="replace")
                self.times.setdefault(name, now)
                pos += 16 + ln

    def close(self):
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)    # the reader's read() fails and the thread ends


def latencies(r, watch=None):
    """End-to-end latencies (ms) of the stamped files in r's Maildir, from
    X-Bench-Sent (µs): to the file's mtime (ns), and to its arrival in new/
    as seen by watch (an ArrivalWatch)."""
    by_mtime, by_arrival = [], []
    rx = re.compile(rb"^X-Bench-Sent:[ \t]*(\d+)", re.M)
    for path in r.maildir_files(LIST):
        with open(path, "rb") as f:
            head = f.read(8192)
        m = rx.search(head)
        if not m:
            continue
        sent_ns = int(m.group(1)) * 1000
        by_mtime.append((os.stat(path).st_mtime_ns - sent_ns) / 1e6)
        t = watch.times.get(os.path.basename(path)) if watch else None
        if t is not None:
            by_arrival.append((t - sent_ns) / 1e6)
    by_mtime.sort()
    by_arrival.sort()
    return by_mtime, by_arrival


def pct(v, p):
    if not v:
        return None
    return round(v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))], 2)


def store_per_msg(relays, n):
    return {r.id: round(dir_bytes(r.data) / n) for r in relays}


def store_db_per_msg(relays, n):
    """The database file alone (no WAL, whose size depends on checkpoints)."""
    out = {}
    for r in relays:
        try:
            out[r.id] = round(os.lstat(os.path.join(r.data, "interlist.db")).st_blocks * 512 / n)
        except OSError:
            out[r.id] = None
    return out


def store_files(relays):
    """Bytes on disk of each file of each relay's data_dir (store, WAL)."""
    out = {}
    for r in relays:
        out[r.id] = {}
        for dp, _, files in os.walk(r.data):
            for n in files:
                p = os.path.join(dp, n)
                try:
                    out[r.id][os.path.relpath(p, r.data)] = os.lstat(p).st_blocks * 512
                except OSError:
                    pass
    return out


# ----------------------------------------------------- federations --

def origin_relay(fed, rid, **kw):
    """A relay whose list takes posts on LMTP and delivers nowhere (a relay
    does not deliver its own posts)."""
    if ARGS.ingest == "unix":
        # Beside the relay's folder: a socket path has at most 107 bytes.
        port = os.path.join(fed.tmp, rid + "-lmtp.sock")
        ingest = "lmtp:unix:" + port
    else:
        port = free_port()
        ingest = "lmtp://127.0.0.1:%d" % port
    r = fed.relay(rid, lists=(LIST,), log_level=ARGS.log_level,
                  list_conf={LIST: {"deliver": None, "ingest": ingest}}, **kw)
    r.lmtp_port = port
    return r


def chain(fed, n, peer_opts=None):
    """Relays r0 -> r1 -> ... (each dials the one before it: the default
    deployment, where the receiving side dials). r0 is the origin; every
    other relay delivers the list to a Maildir and trusts r0 as an origin
    when it is not r0's peer. Started and connected."""
    names = "abcdefghij"[:n]
    rs = [origin_relay(fed, names[0])]
    push = ARGS.topology == "push"
    for i in range(1, n):
        rs.append(fed.relay(names[i], lists=(LIST,), listen=push or i < n - 1,
                            log_level=ARGS.log_level))
    for i in range(1, n):
        rs[i].add_peer(rs[i - 1], dial=not push)
        rs[i - 1].add_peer(rs[i], dial=push, **((peer_opts or {}) if i == 1 else {}))
        if i >= 2:
            rs[i].add_origin(rs[0])
    for r in rs:
        r.start()
    for r in rs:
        r.wait_ready()
    harness.wait_until(lambda: all(rs[i].peer(rs[i - 1].id)["connected"] for i in range(1, n)), 30,
                       "sessions up")
    return rs


# ------------------------------------------------------------------ runs --

def ed25519_speed(out):
    """One `openssl speed ed25519` sample into out: the samples so far,
    and as the rates the fastest of them. This VM has slow patches of a
    minute or more; a sample taken in one would flatter every ratio."""
    try:
        r = subprocess.run(["openssl", "speed", "-seconds", str(ARGS.speed_seconds), "ed25519"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        m = re.search(r"Ed25519\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", r.stdout.decode())
        if not m:
            out["openssl_error"] = r.stdout.decode()[-300:]
            return
    except (OSError, subprocess.TimeoutExpired) as e:
        out["openssl_error"] = str(e)
        return
    out.setdefault("ed25519_samples", []).append(
        {"sign_per_s": round(float(m.group(1))), "verify_per_s": round(float(m.group(2)))})
    out["ed25519_sign_per_s"] = max(x["sign_per_s"] for x in out["ed25519_samples"])
    out["ed25519_verify_per_s"] = max(x["verify_per_s"] for x in out["ed25519_samples"])


def run_limits(fed, res):
    out = {}
    ed25519_speed(out)
    out["sqlite_rows_per_s"], out["sqlite_detail"] = sqlite_rate(fed.tmp)
    res["limits"] = out
    log("limits: Ed25519 sign %s/s, verify %s/s (one core); SQLite %s rows/s"
        % (out.get("ed25519_sign_per_s"), out.get("ed25519_verify_per_s"), out["sqlite_rows_per_s"]))


def sqlite_rate(folder):
    """Rows/s: WAL, synchronous=FULL, 100-row transactions of ~2.5 KiB blobs
    with a random 32-byte unique key, in the folder the relays use."""
    path = os.path.join(folder, "sqlite-rate.db")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE m (k INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, body BLOB NOT NULL)")
        body = os.urandom(2560)
        duration = 1.0 if ARGS.quick else 3.0
        rows = tx = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < duration:
            db.execute("BEGIN")
            db.executemany("INSERT INTO m (id, body) VALUES (?, ?)", ((os.urandom(32), body) for _ in range(100)))
            db.execute("COMMIT")
            rows += 100
            tx += 1
        secs = time.monotonic() - t0
    finally:
        db.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(path + suffix)
            except FileNotFoundError:
                pass
    return round(rows / secs), {"rows": rows, "transactions": tx, "seconds": round(secs, 2),
                                "commits_per_s": round(tx / secs, 1)}


def feed_and_deliver(name, rs, n, prefix, sink=None):
    """N messages into rs[0]'s LMTP; time until the sink delivered N."""
    sink = sink or rs[-1]
    perf = Perf(name)
    perf.attach(*rs)
    samples = []
    sampler = Sampler()
    sampler.mark(*rs)
    t0 = time.time()
    p = lmtpload(rs[0].lmtp_port, n, prefix)
    t_end = wait_count("%s: delivered at %s" % (name, sink.id), lambda: delivered(sink), n, feed=p,
                       samples=samples, t_zero=t0)
    feed = load_result(p)
    sampler.take(*rs)
    perf.detach()
    start = feed["start_us"] / 1e6
    secs = t_end - start
    return {"messages": n, "conns": ARGS.conns, "seconds": round(secs, 3),
            "msgs_per_s": round(n / secs, 1), "feed": feed,
            "feed_msgs_per_s": round(feed["ok"] / feed["seconds"], 1) if feed["seconds"] else None,
            "rss_peak_mib": {k: mib(v) for k, v in sampler.rss.items()},
            "cpu_s": sampler.cpu, "cpu_ms_per_msg": sampler.per_msg(n), "io_per_msg": sampler.io_per_msg(n)}


def finish_run(res, name, out, rs, sink, prefix, n, first=0):
    harness.wait_until(lambda: all(r.settled() for r in rs), 120, "%s: relays settled" % name)
    out["verify"] = check_maildir(sink, prefix, n, first)
    out["store_bytes_per_msg"] = store_per_msg(rs, n)
    out["store_db_bytes_per_msg"] = store_db_per_msg(rs, n)
    out["store_files"] = store_files(rs)
    res[name] = out


def ratio(x, lim):
    v = lim.get("ed25519_verify_per_s")
    return round(x / v, 3) if v else None


# Throughput runs repeated with new relays each time (--repeat): one run
# of 20,000 messages lasts 4 s on this VM, where the figure moves by 10 %
# from one minute to the next.
REPEATED = ("two", "chain")


def median_run(outs):
    """The run with the median msg/s, its detail as measured, plus every
    run's figure, and a delivery check that adds up all of them."""
    if len(outs) == 1:
        return outs[0]
    ranked = sorted(outs, key=lambda o: o["msgs_per_s"])
    med = dict(ranked[len(ranked) // 2])
    med["runs_msgs_per_s"] = [o["msgs_per_s"] for o in outs]
    med["runs_cpu_ms_per_msg"] = [o["cpu_ms_per_msg"] for o in outs]
    med["verify"] = {k: sum(o["verify"][k] for o in outs) for k in med["verify"]}
    return med


def run_two(fed, res):
    rs = chain(fed, 2)
    out = feed_and_deliver("two", rs, ARGS.messages, "two")
    finish_run(res, "two", out, rs, rs[1], "two", ARGS.messages)
    log("two: %s msg/s" % out["msgs_per_s"])


def run_chain(fed, res):
    rs = chain(fed, 5)
    out = feed_and_deliver("chain", rs, ARGS.messages, "chain")
    out["delivered_on_the_way"] = {r.id: delivered(r) for r in rs[1:]}
    finish_run(res, "chain", out, rs, rs[-1], "chain", ARGS.messages)
    log("chain: %s msg/s" % out["msgs_per_s"])


def run_catchup(fed, res):
    n = ARGS.messages
    a, b = chain(fed, 2)
    stop_relay(b)
    harness.wait_until(lambda: not a.peer("b")["connected"], 20, "a to see b down")
    p = lmtpload(a.lmtp_port, n, "catchup")
    wait_count("catchup: queued at a", lambda: a.peer("b")["queued"], n, feed=p)
    feed = load_result(p)
    sampler = Sampler()
    b.start()
    b.wait_ready()
    sampler.mark(a, b)
    perf = Perf("catchup")
    perf.attach(a, b)
    t0 = time.time()       # from B's start (ready): the backlog is A's to send
    t_end = wait_count("catchup: delivered at b", lambda: delivered(b), n)
    sampler.take(a, b)
    perf.detach()
    secs = t_end - t0
    out = {"messages": n, "seconds": round(secs, 3), "msgs_per_s": round(n / secs, 1), "feed": feed,
           "rss_peak_mib": {k: mib(v) for k, v in sampler.rss.items()}, "cpu_s": sampler.cpu,
           "cpu_ms_per_msg": sampler.per_msg(n), "io_per_msg": sampler.io_per_msg(n)}
    finish_run(res, "catchup", out, [a, b], b, "catchup", n)
    log("catchup: %s msg/s" % out["msgs_per_s"])


def run_latency_one(fed, nrel):
    rs = chain(fed, nrel)
    sink = rs[-1]
    n = max(1, int(ARGS.latency_rate * ARGS.latency_seconds))
    name = "latency%d" % nrel
    newdir = os.path.join(sink.maildir(LIST), "new")
    harness.wait_until(lambda: os.path.isdir(newdir), 10, "%s's Maildir" % sink.id)
    watch = ArrivalWatch(newdir)
    p = lmtpload(rs[0].lmtp_port, n, name, rate=ARGS.latency_rate, stamp=True, conns=min(ARGS.conns, 16))
    wait_count("%s: delivered at %s" % (name, sink.id), lambda: delivered(sink), n, feed=p)
    feed = load_result(p)
    sampler = Sampler()
    sampler.take(*rs)
    harness.wait_until(lambda: all(r.settled() for r in rs), 120, "%s: relays settled" % name)
    time.sleep(0.2)
    watch.close()
    by_mtime, by_arrival = latencies(sink, watch)
    # The figure judged: arrival in new/ when inotify works, else mtime.
    lat = by_arrival if len(by_arrival) == len(by_mtime) and by_arrival else by_mtime
    return {"relays": nrel, "messages": n, "rate": ARGS.latency_rate,
            "measured_by": "inotify" if lat is by_arrival else "mtime",
            "feed_ack_ms": feed["ack_ms"], "feed": feed,
            "p50_ms": pct(lat, 0.50), "p90_ms": pct(lat, 0.90), "p99_ms": pct(lat, 0.99),
            "max_ms": round(lat[-1], 2) if lat else None, "samples": len(lat),
            "mtime": {"p50_ms": pct(by_mtime, 0.50), "p99_ms": pct(by_mtime, 0.99),
                      "max_ms": round(by_mtime[-1], 2) if by_mtime else None, "samples": len(by_mtime)},
            "rss_peak_mib": {k: mib(v) for k, v in sampler.rss.items()},
            "verify": check_maildir(sink, name, n),
            "store_bytes_per_msg": store_per_msg(rs, n)}


def run_latency(fed, res):
    out = {"two": run_latency_one(fed, 2)}
    log("latency two relays: p50 %s ms, p99 %s ms, max %s ms"
        % (out["two"]["p50_ms"], out["two"]["p99_ms"], out["two"]["max_ms"]))
    stop_all(fed)
    with BenchFederation("bench-latency5") as fed5:
        try:
            out["chain"] = run_latency_one(fed5, 5)
        except BaseException:
            fed5.failed = True
            raise
        finally:
            stop_all(fed5)
    log("latency five relays: p50 %s ms, p99 %s ms, max %s ms"
        % (out["chain"]["p50_ms"], out["chain"]["p99_ms"], out["chain"]["max_ms"]))
    res["latency"] = out


def run_backlog(fed, res):
    n = ARGS.backlog_messages
    a = origin_relay(fed, "a")
    b = fed.relay("b", lists=(LIST,), listen=False, log_level=ARGS.log_level)
    b.add_peer(a, dial=True)
    a.add_peer(b)
    a.start()
    a.wait_ready()           # b is down from the start: everything queues
    rss_before = proc_status(a.pid)
    perf = Perf("backlog")
    perf.attach(a)
    t0 = time.time()
    p = lmtpload(a.lmtp_port, n, "backlog")
    samples = []
    peak_rss = [0]

    def queued():
        st = proc_status(a.pid)
        if st:
            peak_rss[0] = max(peak_rss[0], st["VmRSS"])
        return a.peer("b")["queued"]
    wait_count("backlog: queued at a", queued, n, feed=p, samples=samples, t_zero=t0)
    feed = load_result(p)
    time.sleep(1.0)
    after = proc_status(a.pid)
    # The ingest rate as the store grows: first and last tenth of the feed.
    tenth = {}
    for label, lo, hi in (("first_tenth", 0, n // 10), ("last_tenth", n - n // 10, n)):
        pts = [t for t, v in samples if lo <= v <= hi]
        if len(pts) >= 2 and pts[-1] > pts[0]:
            got = [v for t, v in samples if lo <= v <= hi]
            tenth[label] = round((got[-1] - got[0]) / (pts[-1] - pts[0]), 1)
    perf.detach()
    out = {"messages": n, "feed": feed,
           "feed_msgs_per_s": round(feed["ok"] / feed["seconds"], 1) if feed["seconds"] else None,
           "feed_msgs_per_s_by_tenth": tenth,
           "rss_a_before_mib": mib(rss_before["VmRSS"]),
           "rss_a_after_mib": mib(after["VmRSS"]), "rss_a_peak_mib": mib(after["VmHWM"]),
           "store_bytes_per_msg_a": round(dir_bytes(a.data) / n),
           "store_db_bytes_per_msg_a": store_db_per_msg([a], n)["a"], "store_files_a": store_files([a])["a"]}
    # Then B comes up and must get every one of them.
    b.start()
    b.wait_ready()
    t1 = time.time()
    t_end = wait_count("backlog: delivered at b", lambda: delivered(b), n)
    out["drain_seconds"] = round(t_end - t1, 2)
    out["drain_msgs_per_s"] = round(n / (t_end - t1), 1)
    st = proc_status(a.pid)
    out["rss_a_peak_after_drain_mib"] = mib(st["VmHWM"]) if st else None
    st = proc_status(b.pid)
    out["rss_peak_mib"] = {"b": mib(st["VmHWM"]) if st else None}
    harness.wait_until(lambda: a.settled() and b.settled(), 120, "backlog: relays settled")
    out["verify"] = check_maildir(b, "backlog", n)
    out["store_bytes_per_msg"] = store_per_msg([a, b], n)
    res["backlog"] = out
    log("backlog: %d queued, A RSS %.1f MiB after (peak %.1f MiB)"
        % (n, out["rss_a_after_mib"], out["rss_a_peak_mib"]))


def run_overload(fed, res):
    n = ARGS.overload_messages
    rate = ARGS.max_rate
    a, b = chain(fed, 2, peer_opts={"max_rate": "%g" % rate})
    perf = Perf("overload")
    perf.attach(a, b)
    sampler = Sampler()
    sampler.mark(a, b)
    samples = []
    peak = {"a": 0, "queued": 0}

    def get():
        st = proc_status(a.pid)
        if st:
            peak["a"] = max(peak["a"], st["VmRSS"])
        peak["queued"] = max(peak["queued"], a.peer("b")["queued"])
        return delivered(b)
    t0 = time.time()
    p = lmtpload(a.lmtp_port, n, "overload")
    t_end = wait_count("overload: delivered at b", get, n, feed=p, samples=samples, t_zero=t0)
    feed = load_result(p)
    sampler.take(a, b)
    perf.detach()
    start = feed["start_us"] / 1e6 - t0
    feed_rate = feed["ok"] / feed["seconds"] if feed["seconds"] else None
    # The drain rate: slope of delivered-at-B between 10 % and 90 % of N.
    pts = [(t, v) for t, v in samples if 0.1 * n <= v <= 0.9 * n]
    slope = None
    if len(pts) >= 2 and pts[-1][0] > pts[0][0]:
        mt = sum(t for t, _ in pts) / len(pts)
        mv = sum(v for _, v in pts) / len(pts)
        den = sum((t - mt) ** 2 for t, _ in pts)
        slope = sum((t - mt) * (v - mv) for t, v in pts) / den if den else None
    out = {"messages": n, "max_rate": rate, "feed": feed,
           "feed_msgs_per_s": round(feed_rate, 1) if feed_rate else None,
           "feed_over_max_rate": round(feed_rate / rate, 1) if feed_rate else None,
           "feed_at_least_10x": bool(feed_rate and feed_rate >= 10 * rate),
           "seconds": round(t_end - t0 - start, 2),
           "drain_msgs_per_s": round(slope, 1) if slope else None,
           "overall_msgs_per_s": round(n / (t_end - t0 - start), 1),
           "peak_queued_at_a": peak["queued"],
           "rss_a_peak_mib": mib(max(peak["a"], sampler.rss.get("a", 0))),
           "rss_peak_mib": {k: mib(v) for k, v in sampler.rss.items()}, "cpu_s": sampler.cpu}
    finish_run(res, "overload", out, [a, b], b, "overload", n)
    log("overload: fed at %s msg/s, drained at %s msg/s (max_rate %g), A RSS peak %.1f MiB"
        % (out["feed_msgs_per_s"], out["drain_msgs_per_s"], rate, out["rss_a_peak_mib"]))


def run_soak(fed, res):
    """Two relays at a steady rate for a long time: does the memory of
    either grow? RSS (VmRSS) is sampled every 5 s; the growth is the last
    sample against the first one after a warm-up of a tenth of the run
    (at most 60 s), when caches and SQLite's page cache have filled."""
    secs, rate = ARGS.soak_seconds, ARGS.soak_rate
    n = max(1, int(secs * rate))
    a, b = chain(fed, 2)
    perf = Perf("soak")
    perf.attach(a, b)
    sampler = Sampler()
    sampler.mark(a, b)
    series = []
    nxt = [0.0]
    t0 = time.time()

    def get():
        now = time.time() - t0
        if now >= nxt[0]:
            sa, sb = proc_status(a.pid), proc_status(b.pid)
            if sa and sb:
                series.append((round(now, 1), sa["VmRSS"], sb["VmRSS"]))
            nxt[0] = now + 5.0
        return delivered(b)
    p = lmtpload(a.lmtp_port, n, "soak", rate=rate, conns=min(ARGS.conns, 16))
    t_end = wait_count("soak: delivered at b", get, n, feed=p)
    feed = load_result(p)
    sampler.take(a, b)
    perf.detach()
    warm_t = min(60.0, secs / 10.0)
    warm = next((x for x in series if x[0] >= warm_t), series[0] if series else None)
    last = series[-1] if series else None
    out = {"seconds": round(t_end - t0, 1), "messages": n, "rate": rate, "feed": feed,
           "rss_samples_kib": series, "warmup_s": warm_t,
           "rss_after_warmup_mib": {"a": mib(warm[1]), "b": mib(warm[2])} if warm else None,
           "rss_end_mib": {"a": mib(last[1]), "b": mib(last[2])} if last else None,
           "rss_growth_mib": ({"a": round((last[1] - warm[1]) / 1024.0, 1),
                               "b": round((last[2] - warm[2]) / 1024.0, 1)} if warm and last else None),
           "rss_peak_mib": {k: mib(v) for k, v in sampler.rss.items()}, "cpu_s": sampler.cpu,
           "cpu_ms_per_msg": sampler.per_msg(n)}
    finish_run(res, "soak", out, [a, b], b, "soak", n)
    log("soak: %d msgs at %g msg/s in %.0f s; RSS growth after warm-up a %s MiB, b %s MiB"
        % (n, rate, out["seconds"], out["rss_growth_mib"]["a"], out["rss_growth_mib"]["b"]))


def stop_all(fed):
    """Stop the relays of the last run (by PID, SIGTERM then SIGKILL)."""
    for r in fed.relays:
        if r.running():
            try:
                stop_relay(r, expect=None)
            except Failure:
                os.kill(r.pid, signal.SIGKILL)
                r.proc.wait(timeout=10)


# ----------------------------------------------------------- the report --

def targets(res):
    lim = res.get("limits", {})
    v = lim.get("ed25519_verify_per_s")
    out = []

    def add(name, value, goal, met, unit=""):
        out.append({"target": name, "value": value, "goal": goal, "unit": unit,
                    "met": None if value is None or met is None else bool(met)})
    if "two" in res:
        x = res["two"]["msgs_per_s"]
        add("two relays >= 0.6 x verify/s", x, round(0.6 * v) if v else None, x >= 0.6 * v if v else None, "msg/s")
    if "chain" in res:
        x = res["chain"]["msgs_per_s"]
        add("five-relay chain >= 0.15 x verify/s", x, round(0.15 * v) if v else None,
            x >= 0.15 * v if v else None, "msg/s")
    if "catchup" in res:
        x = res["catchup"]["msgs_per_s"]
        two = res.get("two", {}).get("msgs_per_s")
        add("catch-up >= two-relay throughput", x, two, x >= two if two else None, "msg/s")
    if "latency" in res:
        x = res["latency"]["two"]["p99_ms"]
        add("latency p99 two relays < 50 ms", x, 50, x is not None and x < 50, "ms")
        x = res["latency"]["chain"]["p99_ms"]
        add("latency p99 five relays < 150 ms", x, 150, x is not None and x < 150, "ms")
    if "backlog" in res:
        x = res["backlog"]["rss_a_peak_mib"]
        n = res["backlog"]["messages"]
        add("RSS of A < 64 MiB with %d queued" % n, x, 64, x < 64, "MiB")
    if "overload" in res:
        x = res["overload"]["drain_msgs_per_s"]
        r = res["overload"]["max_rate"]
        add("overload: queue drains at ~max_rate (within 20 %)", x, r,
            x is not None and abs(x - r) <= 0.2 * r, "msg/s")
    if "soak" in res and res["soak"]["rss_growth_mib"]:
        x = max(res["soak"]["rss_growth_mib"].values())
        add("soak: RSS grows <= 4 MiB after warm-up (%.0f s)" % res["soak"]["seconds"], x, 4, x <= 4, "MiB")
    return out


def verifications(res):
    out = []
    for name, r in res.items():
        if name == "latency":
            for k, v in r.items():
                out.append(("latency/" + k, v["verify"]))
        elif isinstance(r, dict) and "verify" in r:
            out.append((name, r["verify"]))
    return out


def fmt(x):
    if x is None:
        return "-"
    if isinstance(x, float):
        return "%.1f" % x if abs(x) >= 10 else "%.2f" % x
    return str(x)


def report(res, tg, broken):
    lim = res.get("limits", {})
    rows = []
    if lim:
        samples = lim.get("ed25519_samples", [])
        rows += [("Ed25519 verify, one core", fmt(lim.get("ed25519_verify_per_s")), "/s",
                  "fastest of %d samples (%s)" % (len(samples), " ".join(str(x["verify_per_s"])
                                                                      for x in samples))
                  if len(samples) > 1 else ""),
                 ("Ed25519 sign, one core", fmt(lim.get("ed25519_sign_per_s")), "/s", ""),
                 ("SQLite 100-row tx inserts", fmt(lim.get("sqlite_rows_per_s")), "rows/s",
                  "%s commits/s" % lim["sqlite_detail"]["commits_per_s"])]
    for name, label in (("two", "two relays A->B"), ("chain", "chain A->B->C->D->E"),
                        ("catchup", "catch-up (backlog at A)")):
        if name in res:
            r = res[name]
            runs = r.get("runs_msgs_per_s")
            rows.append((label, fmt(r["msgs_per_s"]), "msg/s",
                         ("median of %d runs (%s); " % (len(runs), " ".join(fmt(x) for x in runs))
                          if runs else "") +
                         "x%s verify; %d msgs in %.1f s; CPU ms/msg %s; written KiB/msg %s; RSS MiB %s; "
                         "store B/msg %s (db file alone %s)"
                         % (fmt(ratio(r["msgs_per_s"], lim)), r["messages"], r["seconds"],
                            " ".join("%s=%s" % kv for kv in sorted(r["cpu_ms_per_msg"].items())),
                            " ".join("%s=%.1f" % (k, v["written_bytes"] / 1024.0)
                                     for k, v in sorted(r["io_per_msg"].items())),
                            " ".join("%s=%s" % kv for kv in sorted(r["rss_peak_mib"].items())),
                            " ".join("%s=%s" % kv for kv in sorted(r["store_bytes_per_msg"].items())),
                            " ".join("%s=%s" % kv for kv in sorted(r["store_db_bytes_per_msg"].items())))))
    if "latency" in res:
        for k, label in (("two", "latency, two relays"), ("chain", "latency, five relays")):
            r = res["latency"][k]
            rows.append((label, "%s/%s/%s" % (fmt(r["p50_ms"]), fmt(r["p99_ms"]), fmt(r["max_ms"])),
                         "ms p50/p99/max", "%g msg/s, %d msgs, by %s; by mtime %s/%s/%s; LMTP ack p50 %s ms"
                         % (r["rate"], r["messages"], r["measured_by"], fmt(r["mtime"]["p50_ms"]),
                            fmt(r["mtime"]["p99_ms"]), fmt(r["mtime"]["max_ms"]), r["feed_ack_ms"]["p50"])))
    if "backlog" in res:
        r = res["backlog"]
        rows.append(("RSS of A, %d queued" % r["messages"], fmt(r["rss_a_after_mib"]), "MiB",
                     "peak %s MiB; fed at %s msg/s; store %s B/msg (db file alone %s); then drained at %s msg/s"
                     % (r["rss_a_peak_mib"], r["feed_msgs_per_s"], r["store_bytes_per_msg_a"],
                        r["store_db_bytes_per_msg_a"],
                        r["drain_msgs_per_s"])))
    if "overload" in res:
        r = res["overload"]
        rows.append(("overload, max_rate %g" % r["max_rate"], fmt(r["drain_msgs_per_s"]), "msg/s drain",
                     "fed at %s msg/s (x%s max_rate%s); peak queued %d; A RSS peak %s MiB"
                     % (r["feed_msgs_per_s"], r["feed_over_max_rate"],
                        "" if r["feed_at_least_10x"] else ", under the 10x asked: the ingest is slower",
                        r["peak_queued_at_a"],
                        r["rss_a_peak_mib"])))
    if "soak" in res:
        r = res["soak"]
        g, w0, e = r["rss_growth_mib"] or {}, r["rss_after_warmup_mib"] or {}, r["rss_end_mib"] or {}
        rows.append(("soak, RSS growth", "%s/%s" % (fmt(g.get("a")), fmt(g.get("b"))), "MiB a/b",
                     "%d msgs at %g msg/s over %.0f s; RSS a %s -> %s, b %s -> %s MiB (after %.0f s "
                     "warm-up -> end); peak a %s, b %s; CPU ms/msg %s"
                     % (r["messages"], r["rate"], r["seconds"], w0.get("a"), e.get("a"), w0.get("b"),
                        e.get("b"), r["warmup_s"], r["rss_peak_mib"].get("a"), r["rss_peak_mib"].get("b"),
                        " ".join("%s=%s" % kv for kv in sorted(r["cpu_ms_per_msg"].items())))))
    w = max([len(r[0]) for r in rows] + [10])
    print()
    print("%-*s  %14s  %-14s  %s" % (w, "measure", "value", "unit", "detail"))
    print("-" * (w + 60))
    for r in rows:
        print("%-*s  %14s  %-14s  %s" % (w, r[0], r[1], r[2], r[3]))
    if tg:
        print()
        print("targets (information)")
        for t in tg:
            state = "met" if t["met"] else ("not met" if t["met"] is False else "n/a")
            print("  %-52s %10s %-6s  goal %-8s %s" % (t["target"], fmt(t["value"]), t["unit"], fmt(t["goal"]),
                                                   state))
    print()
    print("delivery checks (by Message-ID in the receiving Maildir)")
    for name, v in verifications(res):
        print("  %-16s files %7d  lost %d  duplicated %d  foreign %d"
              % (name, v["files"], v["lost"], v["duplicated"], v["foreign"]))
    for b in broken:
        print("  BROKEN %s" % b)


def machine():
    info = {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            info["cpu"] = m.group(1) if m else None
    except OSError:
        pass
    try:
        info["commit"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode().strip()
        info["dirty"] = bool(subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "-uno"],
                                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.strip())
    except OSError:
        pass
    try:
        info["openssl"] = subprocess.run(["openssl", "version"], stdout=subprocess.PIPE).stdout.decode().strip()
    except OSError:
        pass
    info["sqlite"] = sqlite3.sqlite_version
    return info


def main():
    for b in (os.environ["INTERLISTD"], os.environ["INTERLISTCTL"], LMTPLOAD):
        if not os.access(b, os.X_OK):
            print("bench.py: %s is missing: build first (scripts/bench does)" % b, file=sys.stderr)
            return 2
    if (ARGS.profile or ARGS.trace) and not shutil.which("perf"):
        log("perf not found: --profile and --trace ignored")
        ARGS.profile = ARGS.trace = None
    res = {}
    broken = []
    started = time.time()
    fns = {"limits": run_limits, "two": run_two, "chain": run_chain, "catchup": run_catchup,
           "latency": run_latency, "backlog": run_backlog, "overload": run_overload,
           "soak": run_soak}
    load = {}
    try:
        for name in RUNS:
            if name not in ARGS.only:
                continue
            t = time.monotonic()
            load[name] = round(os.getloadavg()[0], 2)
            log("%s ... (load average %.2f)" % (name, load[name]))
            reps = ARGS.repeat if name in REPEATED else 1
            outs = []
            for k in range(reps):
                one = {}
                with BenchFederation("bench-" + name + ("-%d" % (k + 1) if reps > 1 else "")) as fed:
                    try:
                        fns[name](fed, one)
                    except Exception as e:
                        fed.failed = True
                        broken.append("%s: %s: %s" % (name, type(e).__name__, e))
                        log("%s broke: %s" % (name, e))
                        if not isinstance(e, Failure):
                            import traceback
                            traceback.print_exc()
                    finally:
                        stop_all(fed)
                if name not in one:
                    break
                outs.append(one[name])
                res.update({k2: v for k2, v in one.items() if k2 != name})
            if outs:
                res[name] = median_run(outs)
            if name in REPEATED and "limits" in res:
                ed25519_speed(res["limits"])
                log("limits again after %s: verify %s/s (samples %s)"
                    % (name, res["limits"].get("ed25519_verify_per_s"),
                       [x["verify_per_s"] for x in res["limits"].get("ed25519_samples", [])]))
            log("%s took %.1f s" % (name, time.monotonic() - t))
    finally:
        BenchFederation.remove_later()
    tg = targets(res)
    bad = [(n, v) for n, v in verifications(res) if v["lost"] or v["duplicated"]]
    doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
           "total_seconds": round(time.time() - started, 1), "machine": machine(),
           "params": {"quick": ARGS.quick, "messages": ARGS.messages, "repeat": ARGS.repeat,
                      "conns": ARGS.conns,
                      "size": ARGS.size, "random_ids": ARGS.random_ids,
                      "chunking": not ARGS.no_chunking,
                      "backlog_messages": ARGS.backlog_messages,
                      "overload_messages": ARGS.overload_messages, "max_rate": ARGS.max_rate,
                      "latency_seconds": ARGS.latency_seconds, "latency_rate": ARGS.latency_rate,
                      "soak_seconds": ARGS.soak_seconds, "soak_rate": ARGS.soak_rate,
                      "log_level": ARGS.log_level, "build": ARGS.build},
           "load_average_at_start": load, "results": res, "targets": tg,
           "ratios_to_verify": {k: ratio(res[k]["msgs_per_s"], res.get("limits", {}))
                                for k in ("two", "chain", "catchup") if k in res},
           "lost_or_duplicated": [n for n, _ in bad], "broken": broken,
           "ok": not bad and not broken}
    with open(ARGS.json, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    report(res, tg, broken)
    print("\nresults in %s (%.0f s)" % (ARGS.json, time.time() - started))
    if bad or broken:
        print("FAILED: %s" % ", ".join([n for n, _ in bad] + [b.split(":")[0] for b in broken]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
