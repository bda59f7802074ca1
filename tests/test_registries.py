"""Every registered component, tested through its family's template (see ``tests/cases.py``)."""
from __future__ import annotations

import math

import pytest

from cases import (TEMPLATES, EncoderCase, LossCase, MutationCase, OptimizerCase, RegularizerCase,
                   SamplerCase)

# --------------------------------------------------------------------------- samplers
class TestUniform(SamplerCase):
    name = "uniform"


class TestUniformExcludingTheTrueEntity(SamplerCase):
    name = "uniform"
    options = {"exclude_true": True}


class TestBernoulli(SamplerCase):
    name = "bernoulli"


class TestSANS(SamplerCase):
    name = "sans"
    options = {"k": 2, "num_walks": 50}


# --------------------------------------------------------------------------- losses
def _log_sum_exp(xs):
    return math.log(sum(math.exp(x) for x in xs))


class TestCrossEntropy(LossCase):
    name = "ce"
    # -log softmax(s)_0, averaged over rows
    known = [([[0.0, 0.0, 0.0]], math.log(3)),
             ([[1.0, 0.0], [0.0, 2.0]], ((_log_sum_exp([1, 0]) - 1) + (_log_sum_exp([0, 2]) - 0)) / 2)]


class TestSoftplus(LossCase):
    name = "softplus"
    # 0.5 * (softplus(-s0) + mean_k softplus(s_k))
    known = [([[0.0, 0.0, 0.0]], math.log(2)),
             ([[1.0, -1.0, 2.0]], 0.5 * (math.log1p(math.exp(-1)) + (math.log1p(math.exp(-1)) + math.log1p(math.exp(2))) / 2))]


class TestBCE(LossCase):
    name = "bce"
    # mean over all 1 + K scores of softplus(-s0) and softplus(s_k)
    known = [([[0.0, 0.0, 0.0]], math.log(2)),
             ([[1.0, -1.0, 2.0]], (math.log1p(math.exp(-1)) + math.log1p(math.exp(-1)) + math.log1p(math.exp(2))) / 3)]


class TestSoftplusSelfAdversarial(LossCase):
    name = "softplus"
    options = {"adversarial_temperature": 1.0}
    exact_gradient = False  # the self-adversarial weights are detached (Sun et al. 2019)
    # weights softmax(1 * s_k): e^-1 / (e^-1 + e^2) and e^2 / (e^-1 + e^2)
    _w = (math.exp(-1) / (math.exp(-1) + math.exp(2)), math.exp(2) / (math.exp(-1) + math.exp(2)))
    known = [([[1.0, -1.0, 2.0]], 0.5 * (math.log1p(math.exp(-1))
                                         + _w[0] * math.log1p(math.exp(-1)) + _w[1] * math.log1p(math.exp(2))))]


    def test_gradient_holds_the_weights_constant(self):
        import torch
        scores = torch.tensor([[1.0, -1.0, 2.0]], dtype=torch.float64, requires_grad=True)
        self.make()(scores).backward()
        w = torch.tensor(self._w, dtype=torch.float64)
        expected = torch.cat([-0.5 * torch.sigmoid(-scores[0, :1]), 0.5 * w * torch.sigmoid(scores[0, 1:])])
        torch.testing.assert_close(scores.grad[0], expected.detach())


class TestMarginRanking(LossCase):
    name = "margin"
    # mean_k max(0, margin - s0 + s_k)
    known = [([[2.0, 1.5, 0.0]], (0.5 + 0.0) / 2)]




# --------------------------------------------------------------------------- encoders
class TestLookup(EncoderCase):
    name = "lookup"


class TestRGCNBasis(EncoderCase):
    name = "rgcn"
    options = {"num_bases": 2, "dropout": 0.0}


class TestRGCNBlockDiagonal(EncoderCase):
    name = "rgcn"
    options = {"decomposition": "bdd", "num_bases": 2, "dropout": 0.0}


class TestCompGCN(EncoderCase):
    name = "compgcn"
    options = {"composition": "corr", "dropout": 0.0}


# --------------------------------------------------------------------------- EMU variants
class TestMutation(MutationCase):
    name = "mutation"
    options = {"keep_prob": 0.39}


class TestMixup(MutationCase):
    name = "mixup"


class TestSoftLabelsOnly(MutationCase):
    name = "smoothing"
    unmutated = True


# --------------------------------------------------------------------------- regularisers, optimisers
class TestLp(RegularizerCase):
    name = "lp"
    # weight * sum over tensors of mean_b sum_i |x_bi|^p: rows 1 + 8 and 27 + 0 -> mean 18
    known = [({"weight": 0.1, "p": 3.0}, [[1.0, -2.0], [3.0, 0.0]], 0.1 * 18),
             ({"weight": 1.0, "p": 2.0}, [[1.0, -2.0], [3.0, 0.0]], (5 + 9) / 2)]


class TestTable(RegularizerCase):
    name = "table"
    # weight * sum of |x|^p over every entry of the table (not a mean over rows): 1 + 8 + 27 + 0
    known = [({"weight": 0.1, "p": 3.0}, [[1.0, -2.0], [3.0, 0.0]], 0.1 * 36),
             ({"weight": 1.0, "p": 2.0}, [[1.0, -2.0], [3.0, 0.0]], 14.0)]


class TestAdagrad(OptimizerCase):
    name = "adagrad"
    options = {"initial_accumulator_value": 0.1}


class TestAdam(OptimizerCase):
    name = "adam"


class TestSGD(OptimizerCase):
    name = "sgd"
    options = {"momentum": 0.5}


# --------------------------------------------------------------------------- meta-tests
def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@pytest.mark.parametrize("template", list(TEMPLATES), ids=lambda t: t.__name__)
def test_every_registered_component_has_a_test_case(template):
    registry = TEMPLATES[template]
    covered = {registry.canonical(sub.name) for sub in _subclasses(template)}
    missing = sorted(set(registry.names()) - covered)
    assert not missing, (f"{registry.family} {missing} registered without a test case: add a "
                         f"subclass of {template.__name__} to tests/test_registries.py")
