"""The list polls' part of the budget: what detail fetches leave."""

from __future__ import annotations

import math

import pytest

from exporter.poll.capacity import ListShare


def test_detail_fetches_keep_their_share_of_the_budget() -> None:
    share = ListShare()
    assert share.capacity(2.0, 0, 0, 0.0) == pytest.approx(0.95 * 2.0)
    capacity = share.capacity(2.0, 600, 0, 600.0)  # one detail fetch a second for ten minutes
    assert capacity < 0.95 * 2.0
    assert capacity >= 0.95 * 1.0  # list polls keep at least half
    assert share.capacity(math.inf, 600, 0, 700.0) == math.inf
