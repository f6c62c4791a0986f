"""Factories that fail in each way the explorer must explain: raising, no module, too slow."""

import time


def raises():
    raise RuntimeError("the factory failed on purpose")


def not_a_module():
    return 42


def slow():
    time.sleep(30)
