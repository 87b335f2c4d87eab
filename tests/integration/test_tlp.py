"""
test_tlp: TLP filtering, list origin rules, cross-posts and key revocation.

- TLP matrix: a hub posts one message at each level (marked by a TLP:
  header, a [TLP:X] subject tag, both, or the list default) to five peers
  whose max_tlp are clear, green, amber, amber+strict and red. Each peer
  gets exactly the levels at or below its max_tlp, RED goes nowhere, and
  the hub counts held_tlp.
- accept_origins: a list that takes only some origins refuses the others
  (counted, and in the bringing peer's rejected).
- Revocation: removing an [origin] section and reloading makes that
  origin unknown from then on.
- Cross-post: the same Message-ID posted on the same list at two relays is
  delivered once at a third and counted as a duplicate.
"""
from harness import make_msg, run, wait_until

LIST = "incidents"
LEVELS = ["clear", "green", "amber", "amber+strict", "red"]


def tlp_matrix(t, fed):
    hub = fed.relay("hub", list_conf={LIST: {"default_tlp": "green"}})
    peers = {}
    for lvl in LEVELS:
        p = fed.relay("p-" + lvl.replace("+", "-"), listen=False)
        p.add_peer(hub, dial=True)
        hub.add_peer(p, max_tlp=lvl)
        peers[lvl] = p
    hub.start()
    hub.wait_ready()
    for p in peers.values():
        p.start()
    for p in peers.values():
        p.wait_ready()
    wait_until(lambda: all(x["connected"] for x in hub.status()["peers"]), 20, "all peers connected")

    # How each post is marked, and the level it must be read as.
    posts = [
        ("clear", "TLP: CLEAR\n", "report"),
        ("green", "", "no marking: the list default"),
        ("amber", "TLP:amber\n", "report"),
        ("amber+strict", "", "[TLP:AMBER+STRICT] outage"),
        ("red", "TLP: GREEN\n", "[tlp:red] two markings: the stricter wins"),
    ]
    ids = {}
    for lvl, hdr, subj in posts:
        rc, out = hub.submit(LIST, make_msg("tlp-%s@example.org" % lvl, subject=subj,
                                            extra_headers=hdr))
        t.ok(rc == 0, "posted the %s message" % lvl, (rc, out, hub.last_submit_stderr))
        ids[lvl] = out
    for plvl, p in peers.items():
        want = {ids[l] for l in LEVELS[:LEVELS.index(plvl) + 1] if l != "red"}
        wait_until(lambda: set(p.delivered_ids(LIST)) >= want, 20,
                   "peer with max_tlp %s to get its levels" % plvl)
    wait_until(hub.settled, 20, "hub queues drained")
    for plvl, p in peers.items():
        got = {d.hdr["X-Interlist-Id"]: d.hdr["X-Interlist-TLP"] for d in p.delivered(LIST)}
        want = {ids[l]: l.upper() for l in LEVELS[:LEVELS.index(plvl) + 1] if l != "red"}
        t.eq(got, want, "max_tlp %s receives exactly the levels at or below it, RED never" % plvl)
    # Held from at least one peer: green, amber, amber+strict, red.
    t.eq(hub.counters()["held_tlp"], 4, "hub counts held_tlp once per held message")
    for p in peers.values():
        t.eq(p.counters()["held_tlp"], 0, "%s refused nothing for TLP" % p.id)


def origins(t, fed):
    # o1 and o2 post; y carries their posts to z; z's list takes only o1.
    o1, o2 = fed.relay("o1"), fed.relay("o2")
    y = fed.relay("y")
    z = fed.relay("z", listen=False, list_conf={LIST: {"accept_origins": "o1, y"}})
    for o in (o1, o2):
        o.add_peer(y)
        y.add_peer(o, dial=True)
    y.add_peer(z)
    z.add_peer(y, dial=True)
    z.add_origin(o1)
    z.add_origin(o2)
    for r in (o1, o2, y, z):
        r.start()
    for r in (o1, o2, y, z):
        r.wait_ready()
    wait_until(lambda: all(p["connected"] for p in y.status()["peers"]), 20, "y connected to all")
    rc1, id1 = o1.submit(LIST, make_msg("from-o1@example.org"))
    rc2, id2 = o2.submit(LIST, make_msg("from-o2@example.org"))
    t.ok(rc1 == 0 and rc2 == 0, "both origins posted")
    wait_until(lambda: id1 in z.delivered_ids(LIST), 20, "o1's post at z")
    wait_until(lambda: z.counters()["not_accepted"] >= 1, 20, "z to refuse o2's post")
    wait_until(y.settled, 20, "y's queue to z drained (a refusal is final)")
    t.ok(id2 not in z.delivered_ids(LIST), "o2's post is not delivered at z")
    t.eq(z.peer("y")["rejected"], 1, "the refusal counts in rejected of the peer that brought it")
    t.ok(z.log_events("refused", reason="origin_not_accepted"), "z logs the refusal")

    # Revoke o1 at z: drop its [origin] section and reload.
    z.origins = [(oid, pub) for oid, pub in z.origins if oid != "o1"]
    z.write_config()
    rc, out, err = z.ctl("reload")
    t.eq(rc, 0, "reload without o1's key accepted")
    rc, id3 = o1.submit(LIST, make_msg("from-o1-after@example.org"))
    wait_until(lambda: z.counters()["unknown_origin"] >= 1, 20, "z to refuse o1 after revocation")
    t.ok(id3 not in z.delivered_ids(LIST), "a revoked origin's new post is not delivered")


def crosspost(t, fed):
    a, c = fed.relay("xa"), fed.relay("xc")
    b = fed.relay("xb", listen=False)
    a.add_peer(c, dial=True)
    c.add_peer(a)
    c.add_peer(b)
    b.add_peer(c, dial=True)
    # a and b's posts reach each other only through c: c must know both keys
    # (peers), a and b need each other's as origins.
    a.add_origin(b)
    b.add_origin(a)
    # Both posts happen while c (the only path between them) is down, as a
    # member posting to both lists at once would race the federation.
    for r in (a, b):
        r.start()
    for r in (a, b):
        r.wait_ready()
    msg_a = make_msg("cross@example.org", subject="same post", body="as sent to list A\n")
    msg_b = make_msg("cross@example.org", subject="same post", body="as sent to list B\n")
    rca, ida = a.submit(LIST, msg_a)
    rcb, idb = b.submit(LIST, msg_b)
    t.ok(rca == 0 and rcb == 0 and ida != idb, "the cross-post was accepted at both relays")
    c.start()
    c.wait_ready()
    wait_until(lambda: len(c.delivered(LIST)) >= 1, 20, "c to deliver the cross-post")
    wait_until(lambda: all(r.settled() for r in (a, b, c)), 20, "everything drained")
    t.eq([d.message_id for d in c.delivered(LIST)], ["cross@example.org"],
         "c delivers the cross-post once")
    t.eq(a.delivered(LIST) + b.delivered(LIST), [],
         "a and b deliver nothing: their own list already has it")
    total = sum(r.counters()["duplicates"] for r in (a, b, c))
    t.ok(total >= 1, "the second copy is counted as a duplicate (%d)" % total)


def main(t, fed):
    tlp_matrix(t, fed)
    origins(t, fed)
    crosspost(t, fed)


if __name__ == "__main__":
    run(main)
