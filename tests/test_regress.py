"""The constrained-random regression (verify/regress.py): the CI slice of 200 seeds on ``tiny`` (RTL in Verilator
against golden), the generator's promises on golden alone, and the report of a failure (a golden result
corrupted on purpose) with its one-line reproduction command."""
import io

import pytest

from golden.host import HostModel
from spec.config import PRESETS
from verify import regress

TINY = PRESETS["tiny"]
CI_START, CI_SEEDS = 0, 200          #: the fixed CI slice


def test_cases_are_deterministic_and_varied():
    """make_case is a pure function of (config, seed); 200 seeds mix every kind, kernels straddle tiles,
    and the faults cover every error code a program can raise."""
    a, b = regress.make_case(TINY, 17), regress.make_case(TINY, 17)
    assert a.programs == b.programs and a.what == b.what and regress.case_commands(TINY, a) == \
        regress.case_commands(TINY, b)
    cases = [regress.make_case(TINY, s) for s in range(CI_START, CI_START + CI_SEEDS)]
    kinds = {k: sum(c.kind == k for c in cases) for k in regress.KINDS}
    assert min(kinds.values()) >= 20, kinds
    codes = {c.expected_error["code"] for c in cases if c.kind == "fault"}
    assert codes >= {"ILLEGAL_OPCODE", "BAD_FIELD", "BAD_BANK", "BAD_ADDRESS", "BAD_STREAM", "UNIT_BUSY",
                     "QUEUE_OVERRUN"}, codes
    names = {c.what.split()[0] for c in cases if c.kind == "kernel"}
    assert names >= {"gemm", "gemm+bias+requant+relu", "mlp", "lut", "argmax"}, names
    decoded = [regress.isa.decode(w) for c in cases for words in c.programs for w in words]
    assert {i.vop for i in decoded if getattr(i, "op", None) == "VOP"} == set(TINY.vxu_ops)
    # every opcode a slice of tiny can run (tiny has no link slice: SEND and RECV are golden.system's)
    runnable = {o.name for o in regress.isa.OPCODES.values() if o.kinds is None or set(o.kinds) & set(TINY.slices)}
    assert {i.op for i in decoded if i.legal} >= runnable
    assert any(c.junk for c in cases)


@pytest.mark.parametrize("seed", range(0, 40))
def test_golden_keeps_the_generators_promises(seed):
    """On golden alone: legal programs do not fault and take the predicted cycles, kernels give numpy's
    result, fault cases stop with exactly the planned (code, slice, pc)."""
    case = regress.make_case(TINY, seed)
    host = HostModel(TINY)
    cmds, labels = regress.case_commands(TINY, case)
    assert len(host.apply(cmds)) == len(labels)
    assert regress._golden_checks(TINY, case, host) is None


def test_backpressure_is_a_function_of_the_batch():
    assert regress.backpressure(TINY, 3) == regress.backpressure(TINY, 3)
    settings = {regress.backpressure(TINY, k)[1:] for k in range(20)}
    assert len(settings) >= 4 and any(v < 100 or r < 100 for v, r in settings)
    assert regress.batch_size(TINY) == regress.DEFAULT_BATCH


@pytest.mark.slow
def test_ci_slice_200_seeds_rtl_matches_golden():
    """The CI slice: seeds 0 … 199 on tiny, every response of every seed equal to golden's."""
    out = io.StringIO()
    rep = regress.run_regression("tiny", CI_START, CI_SEEDS, jobs=1, out=out)
    print(rep.summary())
    assert len(rep.results) == CI_SEEDS
    assert rep.ok, rep.summary() + "\n" + out.getvalue()


@pytest.mark.slow
def test_a_corrupted_golden_result_is_reported_with_the_repro_line():
    """Seed 24's golden read-back is corrupted on purpose: the run fails on seed 24 (only), names the word,
    and prints the command that reproduces it; running that command's seed alone replays batch 2's seeds
    20 … 23 first, so the harness stream is the one seed 24 had."""
    out = io.StringIO()
    rep = regress.run_regression("tiny", 24, 1, corrupt=(24,), out=out)
    assert [r.seed for r in rep.results] == [20, 21, 22, 23, 24]
    assert [r.seed for r in rep.failures] == [24]
    text = rep.summary()
    print(text)
    assert "FAIL seed 24" in text and "golden" in text and "bank 0 word 0" in text
    assert "make regress SEEDS=1 START=24 REGRESS_CONFIG=tiny" in text
    assert "python -m verify.regress --config tiny --start 24 --seeds 1" in text
    assert "seed     24" in out.getvalue()
    # the CLI exits 1 and prints the same line
    assert regress.main(["--start", "24", "--seeds", "1", "--corrupt-golden", "24"]) == 1
