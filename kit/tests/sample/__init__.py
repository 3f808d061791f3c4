"""Two tiny services used by the kit's tests: a producer of events and a consumer of them."""
