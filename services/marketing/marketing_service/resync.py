"""Filling marketing's copy from the customer and sales services' list RPCs.

Events keep the copy current, and while the service is down they wait in its durable queues.
``resync`` is for what events cannot give: a marketing service deployed after customers exist,
or a database restored from an old backup. It pages through ``customer.list_customers`` and
``sales.list_leases`` (active leases) and applies each record as if its event had come; a record
older than what the copy holds changes nothing, so running it beside the live event stream, or
twice, is safe. Run it with ``python -m marketing_service.resync`` (it asks the running
marketing service to do it).
"""
import argparse
import json
import sys

from marketing_service import audience

PAGE = 200


def pages(fetch_page, apply_page):
    """``fetch_page(page)`` → a page of a list RPC; ``apply_page(items)`` applies it (each page
    its own transaction). Returns how many items were applied."""
    page, done = 1, 0
    while True:
        found = fetch_page(page)
        apply_page(found["items"])
        done += len(found["items"])
        if page * found["per_page"] >= found["total"] or not found["items"]:
            return done
        page += 1


def apply_customers(session, items):
    for snapshot in items:
        audience.apply_customer(session, snapshot)


def apply_leases(session, items):
    for lease in items:
        envelope = {"occurred_at": lease["updated_at"]}
        audience.apply_lease(session, {**lease, "lease_id": lease["id"]}, envelope)


def main(argv=None):
    from nameko.standalone.rpc import ClusterRpcProxy

    from crm_kit import config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    with ClusterRpcProxy({"AMQP_URI": config.amqp_uri()}, timeout=args.timeout) as rpc:
        print(json.dumps(rpc.marketing.resync_audience()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
