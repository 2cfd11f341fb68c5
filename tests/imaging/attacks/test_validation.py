"""Bad inputs to the attacks are rejected with errors that name the problem."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ncvx_imaging.attacks import MaxLossConfig, MinDistanceConfig, margins, min_distance_attack

D = torch.float64


@pytest.fixture
def setup() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).double().eval()
    x = torch.rand(2, 1, 2, 2, dtype=D)
    y = torch.tensor([0, 2])
    return model, x, y


def test_model_in_train_mode(setup) -> None:
    model, x, y = setup
    with pytest.raises(ValueError, match=r"training mode.*model\.eval\(\)"):
        min_distance_attack(model.train(), x, y)


def test_inputs_outside_unit_box(setup) -> None:
    model, x, y = setup
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        min_distance_attack(model, x * 255, y)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        min_distance_attack(model, x - 0.5, y)
    with pytest.raises(ValueError, match="NaN"):
        min_distance_attack(model, x.masked_fill(x > 0.5, float("nan")), y)


def test_non_integer_labels(setup) -> None:
    model, x, y = setup
    with pytest.raises(TypeError, match="integer class labels"):
        min_distance_attack(model, x, y.double())
    with pytest.raises(TypeError, match="integer class labels"):
        min_distance_attack(model, x, y == 0)
    with pytest.raises(TypeError, match=r"torch\.Tensor of integer"):
        min_distance_attack(model, x, [0, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        min_distance_attack(model, x, torch.tensor([0, 3]))


def test_wrong_shapes(setup) -> None:
    model, x, y = setup
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        min_distance_attack(model, x, y[:1])
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        min_distance_attack(model, x, y.reshape(2, 1))
    with pytest.raises(ValueError, match="at least 2 dims"):
        min_distance_attack(model, x.reshape(-1), y)
    with pytest.raises(ValueError, match="empty batch"):
        min_distance_attack(model, x[:0], y[:0])
    with pytest.raises(ValueError, match=r"logits \(B, K\)"):
        min_distance_attack(nn.Sequential(nn.Flatten(0)).double().eval(), x, y)


def test_types_and_dtypes(setup) -> None:
    model, x, y = setup
    with pytest.raises(TypeError, match=r"nn\.Module"):
        min_distance_attack(lambda t: t, x, y)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float64"):
        min_distance_attack(model, x.float(), y)
    with pytest.raises(TypeError, match="floating-point"):
        min_distance_attack(model, (x > 0.5).long(), y)
    with pytest.raises(TypeError, match="MinDistanceConfig"):
        min_distance_attack(model, x, y, MaxLossConfig())  # type: ignore[arg-type]


def test_targets(setup) -> None:
    model, x, y = setup
    with pytest.raises(ValueError, match="needs target"):
        min_distance_attack(model, x, y, targeted=True)
    with pytest.raises(ValueError, match="targeted=False"):
        min_distance_attack(model, x, y, target=torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="equals the true label at example 1"):
        min_distance_attack(model, x, y, targeted=True, target=torch.tensor([1, 2]))


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="distance"):
        MinDistanceConfig(distance="l3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="confidence"):
        MinDistanceConfig(confidence=1e-7)
    with pytest.raises(ValueError, match="eps"):
        MaxLossConfig(eps=0.0)
    with pytest.raises(ValueError, match="loss"):
        MaxLossConfig(loss="hinge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="maxit"):
        MinDistanceConfig(maxit=-1)
    with pytest.raises(ValueError, match="fold"):
        MinDistanceConfig(fold="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        MinDistanceConfig(nonexistent=1)  # type: ignore[call-arg]


def test_margins() -> None:
    z = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]], dtype=D)
    assert margins(z, torch.tensor([0, 2])).tolist() == [1.0, -6.0]
    assert margins(z, torch.tensor([2, 1]), targeted=True).tolist() == [1.0, -5.0]
