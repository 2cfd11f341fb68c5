"""The CNN attacked by the benchmark suite is the same network on every machine."""

from __future__ import annotations

import torch

from benchmarks.problems import prepare_digits_cnn


def test_digits_cnn_is_reproducible_and_keyed_by_epochs(tmp_path):
    first = prepare_digits_cnn(epochs=1, path=tmp_path / "a.pt")
    second = prepare_digits_cnn(epochs=1, path=tmp_path / "b.pt")
    assert int(first["epochs"]) == 1
    for name, weight in first["state"].items():
        assert torch.equal(weight, second["state"][name]), name
    assert torch.equal(first["image"], second["image"])
    # A cache trained for another number of epochs is rebuilt, not silently reused.
    rebuilt = prepare_digits_cnn(epochs=2, path=tmp_path / "a.pt")
    assert int(rebuilt["epochs"]) == 2
    assert not torch.equal(rebuilt["state"]["fc.weight"], first["state"]["fc.weight"])
    assert int(torch.load(tmp_path / "a.pt", weights_only=True)["epochs"]) == 2
