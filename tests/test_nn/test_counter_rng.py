"""The counter-based keep-mask: the formula, exact rates, independence, global rows, resume."""
from __future__ import annotations

import math

import pytest
import torch

from dgl_emu.counter_rng import (GOLDEN, CounterStream, counter_mask, counter_uniforms, draw_key, keep_threshold,
                                 mix64)
from dgl_emu.nn.fused import keep_mask, kernels

M64 = (1 << 64) - 1


def hand_uniform(key: int, row: int, k: int, j: int) -> int:
    """The 32-bit uniform of coordinate ``j`` of negative ``k`` of row ``row``, written out."""
    z = (key + ((row << 40) | (k << 20) | (j // 2)) * GOLDEN) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    z ^= z >> 31
    return z >> 32 if j % 2 == 0 else z & 0xFFFFFFFF


def test_splitmix_finaliser_known_values():
    # SplitMix64 seeded 0: its first output is mix64(0 + GOLDEN) = 0xe220a8397b1dcdaf (Vigna's reference)
    assert mix64(GOLDEN) == 0xE220A8397B1DCDAF
    assert mix64(0) == 0


@pytest.mark.parametrize("row0, shape", [(0, (3, 4, 5)), (1000, (2, 3, 8)), (123, (1, 1, 1))])
def test_uniforms_are_the_written_formula(row0, shape):
    key = draw_key(42, 7)
    u = counter_uniforms(key, row0, shape)
    rows, negatives, width = shape
    want = [[[hand_uniform(key, row0 + b, k, j) for j in range(width)] for k in range(negatives)]
            for b in range(rows)]
    assert u.tolist() == want


def test_keys_of_draws_and_seeds_differ():
    keys = {draw_key(seed, s) for seed in range(5) for s in range(200)}
    assert len(keys) == 1000


@pytest.mark.parametrize("p, exact", [(0.0, 0.0), (1.0, 1.0), (0.5, None), (0.39, None), (0.999, None),
                                      (1 / 256, None)])
def test_keep_rate(p, exact):
    m = counter_mask(draw_key(1, 0), 0, (200, 100, 100), p, dtype=torch.float64)
    rate = m.mean().item()
    if exact is not None:
        assert rate == exact
    else:
        assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / m.numel())


def test_threshold_is_floor_of_p_times_two_to_32():
    assert keep_threshold(0.39) == math.floor(0.39 * 2 ** 32)
    assert abs(keep_threshold(0.39) / 2 ** 32 - 0.39) < 2 ** -32
    with pytest.raises(ValueError, match="p must be in"):
        keep_threshold(1.5)


def _pair_frequency(a: torch.Tensor, b: torch.Tensor, p: float):
    both = (a & b).double().mean().item()
    se = math.sqrt(p * p * (1 - p * p) / a.numel())
    return both, se


@pytest.mark.parametrize("p", [0.39, 0.5])
def test_bits_are_independent_across_rows_negatives_coordinates_and_draws(p):
    """Neighbouring bits along every axis, the two halves of one 64-bit word (coordinates 2i and
    2i + 1), and the same coordinates of consecutive draws are kept together with frequency p²."""
    shape = (200, 64, 60)
    m = counter_mask(draw_key(9, 0), 0, shape, p)
    nxt = counter_mask(draw_key(9, 1), 0, shape, p)
    pairs = {"rows": (m[:-1], m[1:]), "negatives": (m[:, :-1], m[:, 1:]),
             "same word": (m[..., 0::2], m[..., 1::2]), "across words": (m[..., 1:-1:2], m[..., 2::2]),
             "draws": (m, nxt), "real and imaginary halves": (m[..., :30], m[..., 30:])}
    for name, (a, b) in pairs.items():
        both, se = _pair_frequency(a, b, p)
        assert abs(both - p * p) < 4 * se, name


def test_rows_are_global():
    """A process holding rows 30..49 of a batch computes exactly those rows' bits."""
    full = counter_mask(draw_key(2, 3), 0, (50, 16, 20), 0.39)
    assert torch.equal(counter_mask(draw_key(2, 3), 30, (20, 16, 20), 0.39), full[30:])


def test_counter_fields_are_checked():
    with pytest.raises(ValueError, match="counter fields out of range"):
        counter_uniforms(0, 0, (1, 1 << 21, 4))
    with pytest.raises(ValueError, match="counter fields out of range"):
        counter_uniforms(0, (1 << 24) - 1, (2, 1, 4))


def test_stream_resumes_from_its_count():
    a = CounterStream(seed=5)
    for _ in range(3):
        a.next_draw()
    b = CounterStream(seed=5)
    b.load_state_dict(a.state_dict())
    assert a.next_draw() == b.next_draw() == (draw_key(5, 3), 0)
    b.window = (10, slice(6, 10))
    assert b.next_draw() == (draw_key(5, 4), 6)


@pytest.mark.parametrize("width", [7, 100])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_mask_equals_the_torch_formula(width, dtype):
    if kernels() is None:
        pytest.skip("the fused kernels are not available here")
    key = draw_key(11, 2)
    want = counter_mask(key, 5, (9, 13, width), 0.39, dtype=dtype)
    assert torch.equal(keep_mask(key, 5, (9, 13, width), 0.39, torch.device("cpu"), dtype), want)
