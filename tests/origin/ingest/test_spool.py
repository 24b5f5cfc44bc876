"""The item spool: batches written, items read back in order, in chunks of any size."""

from __future__ import annotations

import pytest

from origin.ingest import spool as spool_module
from origin.ingest.feed_fields import parse_item
from origin.ingest.spool import ItemSpool
from origin.ingest.synthetic_feed import synthetic_items


@pytest.mark.parametrize("size", [1, 3, 7, 50])
def test_items_come_back_in_order_in_chunks_of_any_size(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "BATCH", 4)  # batches cut within and across extends
    items = [parse_item(fields, "USD") for fields in synthetic_items(23)]
    frames = [(item, n.to_bytes(16, "big")) for n, item in enumerate(items)]
    with ItemSpool() as spool:
        for start, stop in ((0, 0), (0, 5), (5, 6), (6, 17), (17, 23)):
            spool.extend(frames[start:stop])
        assert spool.count == 23
        chunks = list(spool.chunks(size))
    assert all(len(chunk) == size for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= size
    assert [frame for chunk in chunks for frame in chunk] == frames
