"""Generated MXU Verilog is lint-clean under Verilator -Wall (waivers: rtl/lint_waivers.vlt) and reproducible."""
import pytest
from amaranth.back import verilog

from rtl.mxu import MXU
from sim.toolchain import use_yosys
from verify.lint import lint_verilog


@pytest.mark.parametrize("rows, cols, acc_depth, slots", [(1, 1, 2, 1), (2, 3, 16, 1), (5, 4, 100, 1), (1, 1, 2, 2),
                                                         (3, 2, 16, 3), (4, 4, 8, 8)])
def test_generated_verilog_is_lint_clean(rows, cols, acc_depth, slots, tmp_path):
    use_yosys()
    path = tmp_path / "mxu.v"
    path.write_text(verilog.convert(MXU(rows, cols, acc_depth, slots), name="mxu", emit_src=False))
    ok, messages = lint_verilog(path, top="mxu")
    assert ok, "\n".join(messages[:20])


def test_generation_is_reproducible():
    use_yosys()
    a = verilog.convert(MXU(2, 3, 8), name="mxu", emit_src=False)
    b = verilog.convert(MXU(2, 3, 8), name="mxu", emit_src=False)
    assert a == b
    assert "/work/" not in a and "site-packages" not in a
