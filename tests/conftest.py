"""Shared fixtures: tiny seeded data, generated here (nothing downloaded)."""

from __future__ import annotations

import contextlib
import signal

import numpy as np
import pandas as pd
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def mixed_frame() -> pd.DataFrame:
    """A table with numbers, missing numbers, strings, a many-valued category and a label
    that depends on them."""
    rng = np.random.default_rng(0)
    n = 600
    age = rng.normal(40, 12, n)
    income = rng.lognormal(10, 0.5, n)
    city = rng.choice(["paris", "lyon", "nice"], n)
    shop = rng.choice([f"shop{i:02d}" for i in range(30)], n)
    score = age / 10 + (city == "paris") * 2.0 + (np.array([int(s[-2:]) for s in shop]) % 3) + rng.normal(0, 0.2, n)
    label = np.where(score > np.median(score), "yes", "no")
    frame = pd.DataFrame({"age": age, "income": income, "city": city, "shop": shop, "label": label})
    frame.loc[rng.choice(n, 40, replace=False), "age"] = np.nan
    frame.loc[rng.choice(n, 25, replace=False), "city"] = np.nan
    return frame


@pytest.fixture(scope="module")
def one_thread():
    """Small models run faster on one thread, and far faster when other processes share the cores.
    Modules of small-model tests use it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def keep_logging():
    """cli.main points deepfit's log at the stderr of the moment (captured in tests): put it back."""
    import logging

    logger = logging.getLogger("deepfit")
    saved = logger.handlers[:], logger.level, logger.propagate
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def fast() -> dict:
    """Settings that keep a training run short in tests."""
    return {"epochs": 30, "patience": 5, "progress": False}

# Property tests draw the same examples on every run, so CI is reproducible; a longer, random
# hunt: DEEPFIT_PROPERTY_HUNT=1 (with DEEPFIT_PROPERTY_EXAMPLES=N for more examples).
import os  # noqa: E402

from hypothesis import settings  # noqa: E402

settings.register_profile("deepfit", derandomize=not os.environ.get("DEEPFIT_PROPERTY_HUNT"),
                          database=None)
settings.load_profile("deepfit")


@contextlib.contextmanager
def _within(seconds: int, what: str = "no answer"):
    """A hang becomes a TimeoutError after `seconds` (SIGALRM; the previous handler restored)."""
    def hung(signum, frame):
        raise TimeoutError(f"{what} within {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def answer_within():
    """`with answer_within(30): ...` fails the test instead of hanging it."""
    return _within
