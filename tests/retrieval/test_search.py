from __future__ import annotations

from retrieval.search import rrf_fuse


def test_rrf_rewards_items_both_rankings_agree_on() -> None:
    fused = rrf_fuse([([1, 2, 3], 1.0), ([3, 1, 4], 1.0)], rrf_k=60)
    order = [item for item, _ in fused]
    assert order[0] == 1  # ranked 1st and 2nd beats 3rd and 1st
    assert order.index(3) < order.index(2)
    assert set(order) == {1, 2, 3, 4}


def test_rrf_weights_shift_the_balance() -> None:
    fused = rrf_fuse([([1, 2], 0.1), ([2, 1], 5.0)], rrf_k=60)
    assert fused[0][0] == 2
