"""Batching shared by evaluation, parity checks and the Predictor."""

import numpy as np

from annotune.core.features import MAX_PADDING, collate, length_sorted_batches
from annotune.core.tasks import Feature


def features(lengths):
    return [Feature(example_index=i, input_ids=[7] * n, token_type_ids=[0] * n)
            for i, n in enumerate(lengths)]


def test_every_feature_lands_in_exactly_one_batch_sorted_by_length():
    lengths = [30, 5, 12, 5, 60, 18, 7, 44, 9, 13]
    batches = list(length_sorted_batches(features(lengths), 4))
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)
    assert all(1 <= len(batch) <= 4 for batch in batches)


def test_a_batch_closes_before_padding_grows_past_the_limit():
    batched = features([10, 10, 11, 12, 40, 41, 90])
    batches = list(length_sorted_batches(batched, 32))
    assert batches == [[0, 1, 2, 3], [4, 5], [6]]
    for batch in batches:
        padded = collate([batched[i] for i in batch], 0)["input_ids"].size
        real = sum(len(batched[i]) for i in batch)
        assert padded <= real * (1 + MAX_PADDING)


def test_equal_lengths_fill_whole_batches():
    assert [len(b) for b in length_sorted_batches(features([16] * 70), 32)] == [32, 32, 6]
    assert list(length_sorted_batches([], 32)) == []


def test_collate_pads_each_row_and_masks_only_real_tokens():
    batch = [Feature(0, [101, 5, 102], [0, 0, 0]), Feature(1, [101, 102], [0, 1]),
             Feature(2, [101, 7, 8, 9, 102], [0, 0, 1, 1, 1])]
    arrays = collate(batch, pad_token_id=3)
    assert arrays["input_ids"].tolist() == [[101, 5, 102, 3, 3], [101, 102, 3, 3, 3],
                                            [101, 7, 8, 9, 102]]
    assert arrays["token_type_ids"].tolist() == [[0, 0, 0, 0, 0], [0, 1, 0, 0, 0],
                                                 [0, 0, 1, 1, 1]]
    assert arrays["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0],
                                                 [1, 1, 1, 1, 1]]
    assert {a.dtype for a in arrays.values()} == {np.dtype(np.int64)}


def test_collate_takes_ids_of_any_sequence_type():
    # a third-party task may hand numpy arrays or tuples instead of lists
    lists = [Feature(0, [101, 5, 102], [0, 0, 0]), Feature(1, [101, 102], [0, 0])]
    others = [Feature(0, np.array([101, 5, 102]), (0, 0, 0)),  # type: ignore[arg-type]
              Feature(1, (101, 102), np.zeros(2, dtype=np.int64))]  # type: ignore[arg-type]
    expected, got = collate(lists, 0), collate(others, 0)
    for name in expected:
        assert got[name].tolist() == expected[name].tolist()
