#!/usr/bin/env python3
"""Generates the example evidence streams in this folder, one JSON Lines
file per compliance pack, each with compliant and violating cases.

    python3 examples/events/generate.py      # rewrites examples/events/*.jsonl

The output is deterministic (no clock, no randomness) and committed; the
tests in crates/cli/tests/compliance.rs append each stream to a fresh log
and assert the exact verdicts and violating leaf indices, so a change here
must come with a change there. Digests are SHA-256 of a short description
of the record they stand for, since the records themselves are not part of
the ledger.
"""

import hashlib
import json
import pathlib
from datetime import datetime, timedelta, timezone

HERE = pathlib.Path(__file__).resolve().parent
ZERO = "sha256:" + "0" * 64


def digest(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def ts(dt, digits=9):
    """RFC 3339 in UTC with `digits` fraction digits (0 for whole seconds)."""
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        ns = dt.microsecond * 1000 + getattr(dt, "extra_ns", 0)
        base += "." + f"{ns:09d}"[:digits]
    return base + "Z"


def event(when, layer, kind, inp, out, meta, digits=9, parents=None):
    e = {
        "version": "1.0",
        "timestamp": ts(when, digits),
        "layer": layer,
        "type": kind,
        "input": inp,
        "output": out,
        "metadata": meta,
    }
    if parents:
        e["parents"] = parents
    return e


def telecoms():
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ev = []

    def svc(when, kind, service, **meta):
        ev.append(event(when, "network", kind, digest(f"{service} probe"), digest(f"{service} {kind} {when}"),
                        {"service": service, **meta}))

    for day in range(31):  # daily health checks span the 30-day period
        for s in ("core-router-east", "sip-gateway-2"):
            svc(t0 + timedelta(days=day), "service_check", s, probe="icmp+sip-options")
    # core-router-east: one 12 s outage (99.99954 % over 30 days: compliant)
    svc(t0 + timedelta(days=9, hours=3, minutes=14), "service_down", "core-router-east", cause="linecard reset")
    svc(t0 + timedelta(days=9, hours=3, minutes=14, seconds=12), "service_up", "core-router-east")
    # sip-gateway-2: a 5 min 40 s outage (99.9869 %: violates five nines)
    svc(t0 + timedelta(days=17, hours=22, minutes=5), "service_down", "sip-gateway-2", cause="certificate expiry")
    svc(t0 + timedelta(days=17, hours=22, minutes=10, seconds=40), "service_up", "sip-gateway-2")
    # capacity: N+2 on the router, only N+1 on the gateway
    svc(t0 + timedelta(days=1, hours=6), "capacity_report", "core-router-east", required=4, available=6)
    svc(t0 + timedelta(days=1, hours=6), "capacity_report", "sip-gateway-2", required=3, available=4)
    # failovers: 18 ms and 42 ms pass, 73 ms fails
    for day, ms, pair in ((4, 18, "east-a>east-b"), (12, 42, "east-b>east-a"), (22, 73, "gw2-a>gw2-b")):
        svc(t0 + timedelta(days=day, hours=11), "failover", "core-router-east" if "east" in pair else "sip-gateway-2",
            duration_ms=ms, pair=pair)
    return ev


def trading():
    t0 = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)
    ev = []
    orders = [  # id, desk, latency ns, fraction digits of the execution timestamp
        ("ORD-7731", "trading", 420_000, 9),
        ("ORD-7732", "trading", 880_000, 9),
        ("ORD-7733", "proprietary", 1_450_000, 9),  # too slow
        ("ORD-7734", "trading", 610_000, 3),  # millisecond timestamp: too coarse
        ("ORD-7735", "sales", 95_000, 6),
    ]
    for n, (oid, desk, lat, digits) in enumerate(orders):
        sub = t0 + timedelta(seconds=7 * n, microseconds=137 * n)
        ev.append(event(sub, "application", "order_submitted", digest(f"{oid} order ticket"),
                        digest(f"{oid} routed"), {"desk": desk, "order_id": oid}))
        exe = sub + timedelta(microseconds=lat // 1000)
        ev.append(event(exe, "application", "order_executed", digest(f"{oid} routed"),
                        digest(f"{oid} fill"), {"desk": desk, "order_id": oid, "latency_ns": lat, "venue": "XLON"},
                        digits=digits, parents=[digest(f"{oid} order ticket")]))
    accesses = [  # reader desk, tenant, owner desk, owner tenant
        ("compliance", "acme", "trading", "acme"),
        ("trading", "acme", "research", "acme"),  # research/trading wall
        ("sales", "acme", "sales", "acme"),
        ("trading", "acme", "trading", "globex"),  # another tenant
    ]
    for n, (desk, tenant, sdesk, stenant) in enumerate(accesses):
        when = t0 + timedelta(minutes=5, seconds=n)
        ev.append(event(when, "application", "info_access", digest(f"{sdesk} report {n}"), digest(f"{desk} view {n}"),
                        {"desk": desk, "tenant": tenant, "source_desk": sdesk, "source_tenant": stenant}))
    return ev


def gmp():
    t0 = datetime(2026, 2, 9, 7, 0, tzinfo=timezone.utc)
    ev = []
    batches = [
        ("B-2026-0141", {"process": "granulation", "operator": "op-214"}, True),
        ("B-2026-0142", {"process": "granulation"}, True),  # no operator
        ("B-2026-0143", {"process": "tableting", "operator": "op-118"}, False),  # no output record
    ]
    for n, (bid, meta, has_out) in enumerate(batches):
        ev.append(event(t0 + timedelta(hours=n), "physical", "batch_record", digest(f"{bid} materials"),
                        digest(f"{bid} product") if has_out else ZERO, {"batch_id": bid, **meta}))
    systems = [("LIMS", True), ("MES-2", False)]
    for n, (system, reported) in enumerate(systems):
        base = t0 - timedelta(days=40 - n)
        ev.append(event(base, "application", "system_registered", digest(f"{system} URS"), digest(f"{system} entry"),
                        {"system": system}))
        ev.append(event(base + timedelta(days=3), "application", "validation_protocol", digest(f"{system} URS"),
                        digest(f"{system} IQ/OQ/PQ protocol"), {"system": system}))
        if reported:
            ev.append(event(base + timedelta(days=20), "application", "validation_report",
                            digest(f"{system} IQ/OQ/PQ protocol"), digest(f"{system} validation report"), {"system": system}))
    changes = [("CR-311", [0, 2, 5]), ("CR-312", [0, 5, 2])]  # hours after t0 for request, approval, implementation
    for cid, (rq, ap, im) in changes:
        for kind, h in (("change_request", rq), ("change_approved", ap), ("change_implemented", im)):
            ev.append(event(t0 + timedelta(days=1, hours=h), "application", kind, digest(f"{cid} {kind} in"),
                            digest(f"{cid} {kind}"), {"change_id": cid}))
    return ev


def itil():
    t0 = datetime(2026, 4, 1, tzinfo=timezone.utc)
    ev = []
    for day in range(31):
        for s in ("service-desk-portal", "email"):
            ev.append(event(t0 + timedelta(days=day), "application", "service_check", digest(f"{s} probe"),
                            digest(f"{s} check {day}"), {"service": s}))
    for s, start, minutes in (("service-desk-portal", timedelta(days=3, hours=2), 3), ("email", timedelta(days=11, hours=8), 10)):
        ev.append(event(t0 + start, "application", "service_down", digest(f"{s} probe"), digest(f"{s} down"), {"service": s}))
        ev.append(event(t0 + start + timedelta(minutes=minutes), "application", "service_up", digest(f"{s} probe"),
                        digest(f"{s} up"), {"service": s}))
    for iid, day, opened, minutes in (("INC-1001", 2, (9, 0), 7), ("INC-1002", 6, (13, 10), 22), ("INC-1003", 14, (16, 45), 14)):
        o = t0 + timedelta(days=day, hours=opened[0], minutes=opened[1])
        ev.append(event(o, "application", "incident_opened", digest(f"{iid} report"), digest(f"{iid} ticket"),
                        {"incident_id": iid, "priority": "P2"}))
        ev.append(event(o + timedelta(minutes=minutes), "application", "incident_responded", digest(f"{iid} ticket"),
                        digest(f"{iid} first response"), {"incident_id": iid, "responder": "l2-oncall"}))
    for cid, day, cab, impl in (("CHG-77", 8, 10, 15), ("CHG-78", 20, 16, 11)):  # hours of day
        ev.append(event(t0 + timedelta(days=day, hours=cab), "application", "cab_approved", digest(f"{cid} RFC"),
                        digest(f"{cid} CAB minutes"), {"change_id": cid}))
        ev.append(event(t0 + timedelta(days=day, hours=impl), "application", "change_implemented", digest(f"{cid} RFC"),
                        digest(f"{cid} implementation record"), {"change_id": cid}))
    return ev


def main():
    for name, fn in (("telecoms", telecoms), ("trading", trading), ("gmp", gmp), ("itil", itil)):
        events = sorted(fn(), key=lambda e: e["timestamp"])  # stable: ties keep their order
        path = HERE / f"{name}.jsonl"
        path.write_text("".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n" for e in events))
        print(f"{path.relative_to(HERE.parent.parent)}: {len(events)} events")


if __name__ == "__main__":
    main()
