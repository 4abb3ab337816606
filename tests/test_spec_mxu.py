import pytest

from spec.mxu import MXUParams


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(rows=0, cols=4), ValueError, "rows must be an integer between 1 and 64, not 0"),
    (dict(rows=4, cols=65), ValueError, "cols must be an integer between 1 and 64, not 65"),
    (dict(rows=4.0, cols=4), TypeError, "rows must be an integer between 1 and 64, not 4.0"),
    (dict(rows=True, cols=4), TypeError, "rows must be an integer between 1 and 64, not True"),
    (dict(rows=4, cols=4, acc_depth=0), ValueError, "acc_depth must be an integer between 1 and 65536, not 0"),
])
def test_params_rejected(kw, exc, msg):
    with pytest.raises(exc) as info:
        MXUParams(**kw)
    assert str(info.value) == msg


@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 3), (16, 16), (32, 8), (64, 64)])
def test_latency_formula(rows, cols):
    # input register + skews + two multiplier stages + partial-sum add + accumulator stage
    assert MXUParams(rows, cols).latency == 1 + (rows - 1) + (cols - 1) + 2 + 1 + 1


@pytest.mark.parametrize("rows", [1, 2, 3, 8, 63, 64])
def test_psum_width_holds_worst_case(rows):
    p = MXUParams(rows, 1)
    worst = rows * (-128) * (-128)          # the largest magnitude sum of products
    assert worst <= (1 << (p.psum_bits - 1)) - 1
    assert rows * (-128) * 127 >= -(1 << (p.psum_bits - 1))


def test_widths():
    p = MXUParams(16, 8, 1024)
    assert (p.row_bits, p.addr_bits) == (4, 10)
    assert MXUParams(1, 1, 1).row_bits == 1 and MXUParams(1, 1, 1).addr_bits == 1
