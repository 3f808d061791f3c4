"""``crm-dlq``: look at and replay the events a service's handlers kept failing on.

    crm-dlq list customer                 # waiting dead letters of the customer service
    crm-dlq list customer --all           # also the ones already replayed
    crm-dlq replay customer               # re-run every waiting one (after the fix is deployed)
    crm-dlq replay customer --id 3 --id 7 # just these

It calls the service's ``list_dead_letters`` / ``replay_dead_letters`` RPCs on the broker at
CRM_AMQP_URI, so it works wherever the service runs. Exit code 1 if a replay failed again.
"""
import argparse
import json
import sys

from crm_kit import config
from crm_kit.rpc_client import RpcClient, RpcError


def main(argv=None):
    parser = argparse.ArgumentParser(prog="crm-dlq", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show dead letters")
    listing.add_argument("service")
    listing.add_argument("--all", action="store_true", help="include replayed ones")
    replay = commands.add_parser("replay", help="re-run dead letters through their handlers")
    replay.add_argument("service")
    replay.add_argument("--id", dest="ids", type=int, action="append",
                        help="only this dead letter (repeatable)")
    args = parser.parse_args(argv)

    client = RpcClient(config.amqp_uri(), timeout=max(config.rpc_timeout(), 60.0),
                       client_name="crm-dlq")
    try:
        if args.command == "list":
            letters = client.call(args.service, "list_dead_letters",
                                  status=None if args.all else "dead")
            print(json.dumps(letters, indent=2, ensure_ascii=False))
            return 0
        result = client.call(args.service, "replay_dead_letters", ids=args.ids)
        print(json.dumps(result, indent=2))
        return 1 if result["failed"] else 0
    except RpcError as exc:
        print(f"crm-dlq: {args.service}: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
