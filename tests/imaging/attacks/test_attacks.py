"""Attacks: known answers on a linear classifier, feasibility/success on a tiny trained MLP."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ncvx_imaging.attacks import (
    AttackResult,
    MaxLossConfig,
    MinDistanceConfig,
    margins,
    max_loss_attack,
    min_distance_attack,
)
from ncvx_imaging.attacks.models import DigitsMLP, load_digits_data, train_classifier

D = torch.float64
A = torch.tensor([1.0, -2.0, 0.5, 1.5], dtype=D)  # w_y - w_other of the linear model
M0 = 0.6  # clean margin at x = 0.5


@pytest.fixture(scope="module")
def linear() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """2-class linear model on 2×2 images; x = 0.5 everywhere has margin 0.6 for class 0."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).double().eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([A, torch.zeros(4, dtype=D)]))
        model[1].bias.copy_(torch.tensor([M0 - 0.5 * float(A.sum()), 0.0], dtype=D))
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.full((1, 1, 2, 2), 0.5, dtype=D)
    y = torch.tensor([0])
    assert float(margins(model(x), y)[0]) == pytest.approx(M0)
    return model, x, y


@pytest.mark.parametrize(("dist", "dual"), [("l2", 2.0), ("linf", 1.0), ("l1", float("inf"))])
@pytest.mark.parametrize("fold", [False, True])
def test_min_distance_known_answer(linear, dist: str, dual: float, fold: bool) -> None:
    """Min distance to a hyperplane: (margin + confidence) / ||a||_dual (box inactive)."""
    model, x, y = linear
    res = min_distance_attack(model, x, y, distance=dist, fold=fold, maxit=300)
    e = res.examples[0]
    want = (M0 + 1e-4) / float(torch.linalg.vector_norm(A, ord=dual))
    assert e.success and e.feasible
    assert e.max_violation <= 1e-6
    assert e.distance == pytest.approx(want, rel=2e-3)
    assert e.distance >= want * (1 - 1e-5)  # no feasible point is closer than the optimum


@pytest.mark.parametrize(("dist", "dual"), [("l2", 2.0), ("linf", 1.0), ("l1", float("inf"))])
def test_max_loss_known_answer(linear, dist: str, dual: float) -> None:
    """Lowest margin in an eps-ball around x: m0 - eps ||a||_dual (too small to succeed)."""
    model, x, y = linear
    eps = 0.1
    res = max_loss_attack(model, x, y, distance=dist, eps=eps, restarts=0, maxit=300)
    e = res.examples[0]
    want = M0 - eps * float(torch.linalg.vector_norm(A, ord=dual))
    assert e.feasible and not e.success
    assert e.distance <= eps + 1e-6
    assert e.margin == pytest.approx(want, abs=2e-4)
    assert e.margin >= want - 1e-6


@pytest.fixture(scope="module")
def digits() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    data = load_digits_data(seed=1)
    model = train_classifier(DigitsMLP(hidden=16), data.x_train, data.y_train, epochs=10, seed=1)
    with torch.no_grad():
        ok = model(data.x_test[:20]).argmax(1) == data.y_test[:20]
    idx = ok.nonzero()[:2, 0]
    return model, data.x_test[idx], data.y_test[idx]


def _check_result(res: AttackResult, model: nn.Module, x: torch.Tensor) -> None:
    """Independent re-check of every returned point: in the box, misclassified."""
    assert res.success_rate == 1.0 and res.all_feasible
    xa = res.x_adv
    assert xa.shape == x.shape
    assert float(xa.min()) >= -1e-6 and float(xa.max()) <= 1 + 1e-6
    with torch.no_grad():
        pred = model(xa).argmax(1)
    for e, p in zip(res.examples, pred.tolist()):
        assert p != e.label
        assert e.margin < 0
        assert e.distance > 0


@pytest.mark.parametrize("dist", ["l2", "linf", "l1"])
def test_min_distance_digits(digits, dist: str) -> None:
    model, x, y = digits
    res = min_distance_attack(model, x, y, distance=dist, maxit=40, max_seconds=10.0, versus_top=0)
    _check_result(res, model, x)
    for e in res.examples:
        assert e.distances[dist] == pytest.approx(e.distance)


def test_min_distance_targeted_and_restarts(digits) -> None:
    model, x, y = digits
    target = (y + 1) % 10
    cfg = MinDistanceConfig(targeted=True, restarts=1, restart_maxit=3, maxit=20)
    res = min_distance_attack(model, x, y, cfg, target=target)
    _check_result(res, model, x)
    with torch.no_grad():
        assert model(res.x_adv).argmax(1).tolist() == target.tolist()
    assert all(e.target == int(t) for e, t in zip(res.examples, target))


@pytest.mark.parametrize("dist", ["feature", "ssim"])
def test_min_distance_perceptual(digits, dist: str) -> None:
    model, x, y = digits
    res = min_distance_attack(
        model, x[:1], y[:1], distance=dist, maxit=40, max_seconds=10.0, versus_top=0
    )
    _check_result(res, model, x[:1])


def test_max_loss_digits(digits) -> None:
    model, x, y = digits
    big = max_loss_attack(model, x, y, MaxLossConfig(distance="l2", eps=3.0, loss="ce"))
    _check_result(big, model, x)
    assert all(e.distance <= 3.0 + 1e-6 for e in big.examples)
    small = max_loss_attack(model, x, y, distance="linf", eps=1e-3, restarts=0, maxit=15)
    assert small.all_feasible and small.success_rate == 0.0
    assert all(e.distances["linf"] <= 1e-3 + 1e-6 for e in small.examples)


def test_versus_top_never_worse(digits) -> None:
    """Per-class subproblems add candidates; the main run is unchanged, so never worse."""
    model, x, y = digits
    base = min_distance_attack(model, x[:1], y[:1], distance="l2", maxit=30, versus_top=0)
    more = min_distance_attack(model, x[:1], y[:1], distance="l2", maxit=30)  # default 2
    _check_result(more, model, x[:1])
    assert more.examples[0].distance <= base.examples[0].distance + 1e-12
    assert more.examples[0].iters > base.examples[0].iters


def test_faces_data_and_folded_attack() -> None:
    """lfw_subset faces (625 pixels): a tiny classifier, a folded L2 attack re-checked."""
    from ncvx_imaging.attacks.models import FacesMLP, accuracy, load_faces_data

    data = load_faces_data(seed=0)
    assert data.x_train.shape[1:] == (1, 25, 25) and data.x_train.dtype == D
    assert set(data.y_train.tolist()) == {0, 1}
    assert float(data.x_train.min()) >= 0 and float(data.x_train.max()) <= 1
    model = train_classifier(FacesMLP(hidden=8), data.x_train, data.y_train, epochs=20)
    assert accuracy(model, data.x_test, data.y_test) > 0.7
    with torch.no_grad():
        ok = (model(data.x_test).argmax(1) == data.y_test).nonzero()[:1, 0]
    x, y = data.x_test[ok], data.y_test[ok]
    res = min_distance_attack(
        model, x, y, distance="l2", fold=True, maxit=30, limited_mem_size=10, versus_top=0
    )
    _check_result(res, model, x)
