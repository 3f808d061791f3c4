"""Demo data for the CRM: a realistic Chengdu long-term rental operator, sent through the
gateway's public API. `make demo` (``python -m demo``); see README.md, "Demo data".

- ``demo.vocab``: the reference data (names, districts, projects, employers, ticket texts …);
- ``demo.plan``: the deterministic plan of the data set for a seed and sizes;
- ``demo.send``: sends a plan through the API, phase by phase, on a thread pool;
- ``demo.client``: the HTTP client (a session per thread, a token per staff member, retries);
- ``demo.progress``: the progress bar; ``demo.cli``: the command line.
"""
