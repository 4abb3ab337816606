"""The check every lowering test makes: no fault, cycles equal the prediction, outputs equal the int8 reference."""
import numpy as np

__all__ = ["check_lowered"]


def check_lowered(model, qgraph, inputs):
    """Run ``model`` (a ``CompiledModel``) on ``golden.chip`` from ``inputs`` (float arrays by name), both
    through ``simulate`` and ``run_golden``: no fault, ``predicted_cycles`` exact, every output equal to
    ``qgraph.run_int8`` (dtype and values). Returns the outputs and the input codes loaded."""
    codes = model.quantize_inputs(inputs)
    res = model.simulate(codes)
    assert res.error is None, res.error
    assert res.cycles == model.program.predicted_cycles
    got = model.unpack_outputs(res)
    want = qgraph.run_int8(inputs)
    assert set(got) == set(want)
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    outs, cycles = model.run_golden(inputs)
    assert cycles == model.program.predicted_cycles
    for name in want:
        np.testing.assert_array_equal(outs[name], want[name], err_msg=name)
    return got, codes
