"""compiler/system: kernels divided among the chips of a system, run on ``golden.system.SystemSim``.

Every kernel must give its numpy result with the predicted cycles (the system's and every chip's) and no
fault; the cost model's choice and its reasons, the transfers and the errors are checked too. Random
operands come from the printed seeds.
"""
import numpy as np
import pytest

from compiler import kernels
from compiler.memory import MemoryFull
from compiler.schedule import ProgramBuilder
from compiler.system import SPLITS, chips_needed, gemm, system_config
from compiler.system.gemm import shares
from compiler.system.mlp import mlp
from compiler.system.transfer import reduce_line, send
from golden import vxu as gvxu
from golden.mxu import matmul
from golden.system import SystemSim
from spec import isa
from spec.config import PRESETS

TINY, SMALL = PRESETS["tiny"], PRESETS["small"]
#: tiny with a fourth MEM slice: on tiny's three the one-chip MLP phases that each chip runs do not always
#: schedule (a weight READ and a result WRITE wanting one queue in one cycle; compiler.kernels.mlp has the
#: same limit, and with few rows also on four slices, where its bias READs and sums WRITEs share one)
TINY4 = TINY.replace(name="tiny4", slices=("mem", "mem", "mxu", "vxu", "mem", "mem"))
Q = (1 << 14, 18, 3)


def op(rng, shape):
    return rng.integers(-128, 128, shape, dtype=np.int8)


def check_run(kern):
    run = kern.run()
    assert run.system.error is None, run.system.error
    assert run.system.chip_cycles == kern.chip_cycles, (run.system.chip_cycles, kern.chip_cycles)
    assert run.cycles == kern.predicted_cycles
    diff = np.argwhere(run.result != kern.expected)
    assert not len(diff), f"first mismatch at {tuple(diff[0])}: {run.result[tuple(diff[0])]} != " \
                          f"{kern.expected[tuple(diff[0])]} ({len(diff)} differ)"
    assert run.ok
    return run


def test_shares_are_even_whole_units_and_refuse_too_many_chips():
    assert shares(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert shares(40, 3, 16) == [(0, 16), (16, 32), (32, 40)]
    with pytest.raises(ValueError, match=r"^20 columns cannot be divided among 3 chips: each needs at least one "
                                         r"of the 2 tiles of 16 columns$"):
        shares(20, 3, 16, "columns")


def test_system_config_adds_links_for_more_than_one_chip():
    assert system_config(TINY, 1) is TINY
    assert system_config(TINY, 2).slices == ("link",) + TINY.slices + ("link",)
    linked = TINY.with_links()
    assert system_config(linked, 3) is linked


@pytest.mark.parametrize("seed", range(6))
def test_random_gemms_on_1_to_4_chips_every_split(seed):
    rng = np.random.default_rng(seed)
    chips = int(rng.integers(1, 5))
    m = int(rng.integers(chips, 40))
    k = int(rng.integers(1, 20))
    n = int(rng.integers(TINY.mxu_cols * chips - TINY.mxu_cols + 1, TINY.mxu_cols * chips + 6))
    print(f"seed {seed}: {m} x {k} x {n} on {chips} chips")
    X, W = op(rng, (m, k)), op(rng, (k, n))
    for split in SPLITS:
        kern = gemm(TINY, X, W, chips, split=split)
        assert kern.split == split and kern.chips == chips and not kern.transfers
        check_run(kern)


def test_a_gemm_split_divides_the_cycles_and_auto_takes_the_faster():
    rng = np.random.default_rng(7)
    X, W = op(rng, (256, 256)), op(rng, (256, 64))
    one = kernels.gemm(SMALL, X, W).program.predicted_cycles
    for chips in (2, 4):
        kern = gemm(SMALL, X, W, chips)
        assert kern.reason.startswith(f"{kern.split} chosen: rows: ")
        cycles = {s: gemm(SMALL, X, W, chips, split=s).predicted_cycles for s in SPLITS}
        assert kern.predicted_cycles == min(cycles.values())
        assert one / kern.predicted_cycles >= 0.95 * chips, (one, kern.predicted_cycles)
        assert 0 < kern.utilization <= 1


def test_a_gemm_too_large_for_two_chips_says_how_many_it_needs():
    X, W = np.zeros((1024, 256), np.int8), np.zeros((256, 256), np.int8)
    assert chips_needed(SMALL, 1024, 256, 256) == (3, "rows")
    with pytest.raises(MemoryFull, match=r"GEMM 1024 x 256 x 256 does not fit 2 chips of config small_link: rows: "
                                         r"does not fit \(Y .*; tensor: does not fit \(W .*; it needs at least 3 "
                                         r"chips \(rows split\)$"):
        gemm(SMALL, X, W, 2)
    with pytest.raises(MemoryFull, match=r"^GEMM 1024 x 256 x 256 does not fit 2 chips .*: tensor: does not fit"):
        gemm(SMALL, X, W, 2, split="tensor")


def test_bad_arguments_are_named():
    X, W = np.zeros((4, 4), np.int8), np.zeros((4, 4), np.int8)
    with pytest.raises(ValueError, match=r"^chips must be an integer between 1 and 64, not 0$"):
        gemm(TINY, X, W, 0)
    with pytest.raises(ValueError, match=r"^split must be one of 'rows', 'tensor', 'auto', not 'cols'$"):
        gemm(TINY, X, W, 2, split="cols")
    with pytest.raises(ValueError, match=r"^topology must be 'line' or 'ring', not 'star'$"):
        mlp(TINY, X, W, np.zeros(4, np.int64), Q, W, 2, topology="star")


@pytest.mark.parametrize("seed", range(6))
def test_random_mlps_in_tensor_parallel_add_their_partial_sums_over_the_links(seed):
    rng = np.random.default_rng(100 + seed)
    chips = int(rng.integers(2, 5))
    C = TINY.mxu_cols
    m, k = int(rng.integers(1, 12)), int(rng.integers(1, 12))
    n1 = int(rng.integers(C * (chips - 1) + 1, C * chips + 3))
    n2 = int(rng.integers(1, 2 * C + 2))
    print(f"seed {100 + seed}: MLP {m} x {k} x {n1} x {n2} on {chips} chips")
    X, W1, W2 = op(rng, (m, k)), op(rng, (k, n1)), op(rng, (n1, n2))
    b1 = rng.integers(-3000, 3000, n1)
    kern = mlp(TINY4, X, W1, b1, Q, W2, chips, split="tensor")
    assert kern.split == "tensor"
    words = -(-n2 // C) * m
    assert kern.transfers == {f"c{c + 1}.west->c{c}.east": words for c in range(chips - 1)}
    assert np.array_equal(kern.expected, matmul(kernels._dense_expected(X, W1, b1, gvxu.RequantParams(*Q))
                                                .astype(np.int8), W2))
    run = check_run(kern)
    for ln in run.system.links:            # only the reduction's links carry words, as many as predicted
        assert ln.words == kern.transfers.get(ln.name, 0), ln


def test_mlp_auto_takes_rows_for_many_rows_and_tensor_for_one():
    rng = np.random.default_rng(3)
    W1, W2 = op(rng, (64, 64)), op(rng, (64, 16))
    b1 = rng.integers(-3000, 3000, 64)
    many = mlp(SMALL, op(rng, (256, 64)), W1, b1, Q, W2, 4)
    assert many.split == "rows" and many.reason.startswith("rows chosen: rows: ")
    one_row = mlp(SMALL, op(rng, (1, 64)), W1, b1, Q, W2, 4)
    assert one_row.split == "tensor"
    assert "rows: does not fit (1 rows cannot be divided among 4 chips" in one_row.reason
    check_run(many)
    base = kernels.mlp(SMALL, op(rng, (1, 64)), W1, b1, Q, W2).program.predicted_cycles
    assert check_run(one_row).cycles < base


def _builders(config, n):
    return [ProgramBuilder(config) for _ in range(n)]


@pytest.mark.parametrize("src,dst", [(0, 1), (2, 1)])
def test_send_moves_words_between_neighbours(src, dst):
    c = TINY.with_links()
    rng = np.random.default_rng(11)
    words = rng.integers(-2**31, 2**31, (5, c.lanes))
    mem = c.positions("mem")
    src_locs = [(mem[0], 0, a) for a in range(5)]
    dst_locs = [(mem[-1], 1, 10 + a) for a in range(5)]
    bs = _builders(c, 3)
    s = send(bs, src, dst, src_locs, dst_locs, 3)
    progs = [b.finish() for b in bs]
    sim = SystemSim(c, 3, "line")
    for k, p in enumerate(progs):
        sim.load(k, p.words)
    sim.write_mem(src, mem[0], 0, 0, words)
    res = sim.run()
    assert res.error is None and res.chip_cycles == tuple(p.predicted_cycles for p in progs)
    assert np.array_equal(res.read_mem(dst, mem[-1], 1, 10, 5), words)
    link = res.link(f"c{src}.{'east' if dst > src else 'west'}->c{dst}.{'west' if dst > src else 'east'}")
    assert link.words == 5
    assert progs[dst].predicted_cycles >= s + isa.link_recv_delay(c) + 5 * c.link_interval


def test_transfer_and_reduction_errors():
    c = TINY.with_links()
    bs = _builders(c, 3)
    with pytest.raises(ValueError, match=r"^chips 0 and 2 are not neighbours in a line"):
        send(bs, 0, 2, [(1, 0, 0)], [(1, 0, 0)], 0)
    with pytest.raises(ValueError, match=r"^a transfer needs as many destination words as source words"):
        send(bs, 0, 1, [(1, 0, 0)], [], 0)
    with pytest.raises(ValueError, match=r"^reduce_line needs as many partial-sum regions as chips \(3\)"):
        reduce_line(bs, [[(1, 0, 0)]] * 2, 0)
    assert reduce_line(bs[:1], [[(1, 0, 0)]], 0) is None
    with pytest.raises(ValueError, match=r"^config tiny has no link slice at its east end"):
        send(_builders(TINY, 2), 0, 1, [(0, 0, 0)], [(0, 0, 0)], 0)
