"""Real local cloud servers on loopback, for the test suite and ``make run``."""
