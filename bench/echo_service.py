"""A bare nameko service: the "stock nameko" baseline of the bench.

Started by bench/run.py with the stock CLI, ``nameko run --broker <uri> echo_service``
(cwd=bench), so nothing of the CRM's kit is involved.
"""
from nameko.rpc import rpc


class EchoService:
    name = "bench_echo"

    @rpc
    def echo(self, value):
        return value
