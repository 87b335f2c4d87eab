"""
test_acceptoom: an LMTP listener that had no memory for a session does not
stall. libuv accepts nothing more on a listener until its waiting connection
is taken; the relay takes it on its next tick.

A real interlistd runs with tests/tools/failalloc.c preloaded: while a flag
file exists, the next calloc of 64 KiB or more (an LMTP session with its
read buffer) fails once. The connection that met the failure still gets its
greeting, and the listener goes on taking posts. (Not in the sanitizer run:
the shim's allocations would not be the sanitizer's.)
"""
import os
import smtplib
import socket
import sys

from harness import free_port, make_msg, preload_env, run, wait_until

LIST = "incidents"


def main(t, fed):
    port = free_port()
    a = fed.relay("a", list_conf={LIST: {"deliver": None, "ingest": "lmtp://127.0.0.1:%d" % port}})
    b = fed.relay("b", listen=False)    # a peer that never comes: a queues for it
    a.add_peer(b)
    flag = os.path.join(fed.tmp, "fail-next")
    a.extra_env = preload_env(os.environ["IL_FAILALLOC"], IL_FAILALLOC_FLAG=flag,
                              IL_FAILALLOC_MIN="65536")
    fed.start_all(a)

    open(flag, "w").close()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        greeting = s.recv(200)
    except socket.timeout:
        greeting = b""
    t.ok(not os.path.exists(flag), "the session's allocation failed (the shim used its flag)")
    t.ok(a.log_events("lmtp_accept_failed"), "a logs lmtp_accept_failed", a.log_tail(5))
    t.ok(greeting.startswith(b"220"), "the connection that waited for memory gets its greeting",
         greeting)
    s.close()

    lm = smtplib.LMTP("127.0.0.1", port, timeout=10)
    try:
        lm.ehlo("mta.example.org")
        refused = lm.sendmail("owner@example.org", ["incidents@relay.test"],
                              make_msg("after-oom@example.org"))
    finally:
        lm.close()
    t.eq(refused, {}, "the listener goes on taking posts")
    wait_until(lambda: a.peer("b")["queued"] == 1, 10, "the post queued for b")
    t.ok(True, "the post is stored and queued for b")
    a.stop()


if __name__ == "__main__":
    if not os.environ.get("IL_FAILALLOC"):
        print("1..0 # SKIP no calloc shim in a sanitizer build")
        sys.exit(77)
    run(main)
