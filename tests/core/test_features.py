"""Batching shared by evaluation, parity checks and the Predictor."""

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
