"""How the OpenVINO encoder cuts passages into model inputs (no model needed)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from qa_service.embedding.openvino import FULL_BATCH_WIDTH, PASSAGE_WIDTHS, _batches


def _encodings(lengths: list[int]) -> list[Any]:
    return [SimpleNamespace(ids=list(range(1, n + 1))) for n in lengths]


def test_batches_keep_every_text_once_padded_to_a_listed_width() -> None:
    lengths = [3, 181, 40, 150, 9, 77, 160, 12]
    batches = list(_batches(_encodings(lengths), 0, 3, PASSAGE_WIDTHS))
    seen = sorted(int(r) for rows, _, _ in batches for r in rows)
    assert seen == list(range(len(lengths)))
    for rows, ids, mask in batches:
        assert ids.shape[1] in PASSAGE_WIDTHS and ids.shape[1] >= max(lengths[r] for r in rows)
        assert [int(m) for m in mask.sum(axis=1)[:len(rows)]] == [lengths[r] for r in rows]
        assert np.all(ids[mask == 0] == 0)


def test_short_batches_are_padded_to_a_power_of_two_rows_by_repeating_a_text() -> None:
    """Each input shape the runtime has run keeps memory: row counts are few, not every one to 32."""
    lengths = [20] * 32 + [20] * 5 + [100] * 3 + [300] * 9
    batches = list(_batches(_encodings(lengths), 0, 32, PASSAGE_WIDTHS))
    heights = {ids.shape[0] for _, ids, _ in batches}
    assert heights <= {1, 2, 4, 8, 16, 32, 32 * FULL_BATCH_WIDTH**2 // 320**2}
    for rows, ids, mask in batches:
        assert ids.shape[0] >= len(rows) and np.all(ids[len(rows):] == ids[len(rows) - 1])
        assert np.all(mask[len(rows):] == mask[len(rows) - 1])
    assert sorted(int(r) for rows, _, _ in batches for r in rows) == list(range(len(lengths)))


def test_question_batches_are_never_padded_in_rows() -> None:
    batches = list(_batches(_encodings([7, 9, 11]), 0, 32))
    assert [ids.shape for _, ids, _ in batches] == [(3, 11)]


def test_batches_wider_than_the_prepared_one_hold_fewer_rows() -> None:
    """Activation memory grows with rows x width²: a batch of 500-token texts must not need more
    than a full batch of chunks."""
    batches = list(_batches(_encodings([500] * 40 + [150] * 40), 0, 32, PASSAGE_WIDTHS))
    for _, ids, _ in batches:
        rows, width = ids.shape
        assert rows * width**2 <= 32 * FULL_BATCH_WIDTH**2 or rows == 1
    shapes = [ids.shape for _, ids, _ in batches]
    assert (32, 160) in shapes and max(r for r, w in shapes if w == 512) == 32 * FULL_BATCH_WIDTH**2 // 512**2
