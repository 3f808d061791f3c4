"""Names shared by the kit's tests."""
PRODUCER = "sample.services:Producer"
CONSUMER = "sample.services:Consumer"
