import pytest

from spec.mxu import MXUParams


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(rows=0, cols=4), ValueError, "rows must be an integer between 1 and 64, not 0"),
    (dict(rows=4, cols=65), ValueError, "cols must be an integer between 1 and 64, not 65"),
    (dict(rows=4.0, cols=4), TypeError, "rows must be an integer between 1 and 64, not 4.0"),
    (dict(rows=True, cols=4), TypeError, "rows must be an integer between 1 and 64, not True"),
    (dict(rows=4, cols=4, acc_depth=1), ValueError, "acc_depth must be an integer between 2 and 65536, not 1"),
    (dict(rows=4, cols=4, weight_slots=0), ValueError, "weight_slots must be an integer between 1 and 16, not 0"),
    (dict(rows=4, cols=4, weight_slots=17), ValueError, "weight_slots must be an integer between 1 and 16, not 17"),
])
def test_params_rejected(kw, exc, msg):
    with pytest.raises(exc) as info:
        MXUParams(**kw)
    assert str(info.value) == msg


@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 3), (16, 16), (32, 8), (64, 64)])
def test_latency_formula(rows, cols):
    # input register + skews + two multiplier stages + product register + partial-sum add + accumulator
    assert MXUParams(rows, cols).latency == 1 + (rows - 1) + (cols - 1) + 2 + 1 + 1 + 1


@pytest.mark.parametrize("rows", [1, 2, 3, 8, 63, 64])
def test_psum_width_holds_worst_case(rows):
    p = MXUParams(rows, 1)
    worst = rows * (-128) * (-128)          # the largest magnitude sum of products
    assert worst <= (1 << (p.psum_bits - 1)) - 1
    assert rows * (-128) * 127 >= -(1 << (p.psum_bits - 1))


def test_widths():
    p = MXUParams(16, 8, 1024)
    assert (p.row_bits, p.addr_bits) == (4, 10)
    assert MXUParams(1, 1, 2).row_bits == 1 and MXUParams(1, 1, 2).addr_bits == 1


def test_docs_state_the_spec_latency():
    """docs/mxu.md gives the latency formula; it must agree with spec.mxu for every shape."""
    import re
    from pathlib import Path
    doc = (Path(__file__).resolve().parent.parent / "docs" / "mxu.md").read_text()
    found = re.search(r"\*\*latency = (rows \+ cols \+ \d+)\*\*", doc)
    assert found, "docs/mxu.md no longer states the latency as **latency = rows + cols + N**"
    for rows, cols in [(1, 1), (3, 7), (64, 64)]:
        assert eval(found.group(1), {}, {"rows": rows, "cols": cols}) == MXUParams(rows, cols).latency
