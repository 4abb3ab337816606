"""spec/config.py: validation messages, presets, derived values, dict round trip."""
import dataclasses
import json

import pytest

from spec import isa
from spec.config import PRESETS, SLICE_KINDS, ChipConfig, ModelMXUParams
from spec.mxu import MXUParams

TINY = PRESETS["tiny"]


@pytest.mark.parametrize("changes, exc, msg", [
    (dict(name=""), ValueError, "name must be a non-empty string of letters, digits, '_', '-' or '.', not ''"),
    (dict(name=3), TypeError, "name must be a non-empty string of letters, digits, '_', '-' or '.', not 3"),
    (dict(lanes=0), ValueError, "lanes must be an integer between 1 and 320, not 0"),
    (dict(lanes=321), ValueError, "lanes must be an integer between 1 and 320, not 321"),
    (dict(lanes=4.0), TypeError, "lanes must be an integer between 1 and 320, not 4.0"),
    (dict(streams=33), ValueError, "streams must be an integer between 1 and 32, not 33"),
    (dict(streams=True), TypeError, "streams must be an integer between 1 and 32, not True"),
    (dict(slices=("mem", "mem", "gpu")), ValueError,
     "slices[2] must be one of 'mem', 'mxu', 'vxu', 'link', not 'gpu'"),
    (dict(slices=("mem", 7)), TypeError, "slices[1] must be one of 'mem', 'mxu', 'vxu', 'link', not 7"),
    (dict(slices="mem"), TypeError,
     "slices must be a tuple of slice kinds ('mem', 'mxu', 'vxu', 'link'), not 'mem'"),
    (dict(slices=()), ValueError, "slices must hold between 1 and 256 slices, not 0"),
    (dict(slices=("mem",) * 257), ValueError, "slices must hold between 1 and 256 slices, not 257"),
    (dict(slices=("mxu", "vxu")), ValueError,
     "slices must include at least one 'mem' slice, not ('mxu', 'vxu')"),
    (dict(mem_banks=17), ValueError, "mem_banks must be an integer between 1 and 16, not 17"),
    (dict(mem_depth=1), ValueError, "mem_depth must be an integer between 2 and 65536, not 1"),
    (dict(mem_depth=65537), ValueError, "mem_depth must be an integer between 2 and 65536, not 65537"),
    (dict(mxu_rows=0), ValueError, "mxu_rows must be an integer between 1 and 64, not 0"),
    (dict(mxu_cols=5), ValueError, "mxu_cols must be at most lanes = 4, not 5"),
    (dict(lanes=128, mxu_rows=65), ValueError, "mxu_rows must be an integer between 1 and 64, not 65"),
    (dict(mxu_acc_depth=1), ValueError, "mxu_acc_depth must be an integer between 2 and 65536, not 1"),
    (dict(vxu_ops=("add", "gelu")), ValueError,
     "vxu_ops[1] must be one of 'add', 'mul', 'max', 'relu', 'requant', 'lut', 'argmax', 'requantv', 'lsum', "
     "'lmax', 'recip', 'rsqrt', 'spread', not 'gelu'"),
    (dict(vxu_ops=("add", "relu", "add")), ValueError, "vxu_ops[2] must not repeat an operation, not 'add' again"),
    (dict(vxu_ops="add"), TypeError,
     "vxu_ops must be a tuple of VXU operations ('add', 'mul', 'max', 'relu', 'requant', 'lut', 'argmax', "
     "'requantv', 'lsum', 'lmax', 'recip', 'rsqrt', 'spread'), "
     "not 'add'"),
    (dict(queue_depth=0), ValueError, "queue_depth must be an integer between 1 and 65536, not 0"),
    (dict(chips=65), ValueError, "chips must be an integer between 1 and 64, not 65"),
    (dict(clock_mhz=0), ValueError, "clock_mhz must be a positive number of MHz, not 0"),
    (dict(clock_mhz=float("nan")), ValueError, "clock_mhz must be a positive number of MHz, not nan"),
    (dict(clock_mhz="100"), TypeError, "clock_mhz must be a positive number of MHz, not '100'"),
    (dict(rtl=1), TypeError, "rtl must be True or False, not 1"),
    (dict(mxu_weight_slots=0), ValueError, "mxu_weight_slots must be an integer between 1 and 16, not 0"),
    (dict(mxu_weight_slots=2.0), TypeError, "mxu_weight_slots must be an integer between 1 and 16, not 2.0"),
])
def test_fields_rejected(changes, exc, msg):
    with pytest.raises(exc) as info:
        TINY.replace(**changes)
    assert str(info.value) == msg


def test_replace_rejects_unknown_field():
    with pytest.raises(ValueError, match=r"unknown ChipConfig field 'lane' \(fields: name, lanes,"):
        TINY.replace(lane=8)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_valid_and_round_trip(name):
    c = ChipConfig.preset(name)
    assert c.name == name
    d = c.to_dict()
    assert ChipConfig.from_dict(json.loads(json.dumps(d))) == c
    assert ChipConfig.from_dict(d).replace() == c
    assert c.mxu.latency == c.mxu_rows + c.mxu_cols + 4
    assert len(c.slice_names) == len(c.slices) == len(set(c.slice_names))


def test_preset_figures():
    tiny, small, tsp = (PRESETS[n] for n in ("tiny", "small", "tsp"))
    assert (tiny.lanes, tiny.streams, tiny.mxu_rows, tiny.mem_banks, tiny.mem_depth, tiny.queue_depth) == \
        (4, 4, 4, 2, 64, 256)
    assert (small.lanes, small.streams, small.mxu_rows, small.mxu_cols, small.queue_depth, small.clock_mhz) == \
        (16, 8, 16, 16, 4096, 100.0)
    assert len(small.positions("mem")) == 4 and small.mem_depth == 1024 and small.positions("vxu")
    assert tsp.lanes == 320 and tsp.streams == 32 and tsp.clock_mhz == 900.0
    assert len(tsp.positions("mem")) == 88 and len(tsp.positions("mxu")) == 4
    assert tsp.mem_bytes_per_slice == 5 * 2 ** 20 // 2        # 2.5 MiB per MEM slice
    assert tiny.rtl and small.rtl and not tsp.rtl


def test_unknown_preset():
    with pytest.raises(ValueError) as info:
        ChipConfig.preset("huge")
    assert str(info.value) == "preset must be one of 'tiny', 'small', 'tsp', not 'huge'"


def test_model_only_relaxes_mxu_limit_and_refuses_rtl():
    tsp = PRESETS["tsp"]
    assert isinstance(tsp.mxu, ModelMXUParams) and tsp.mxu.latency == 320 + 320 + 4
    assert type(PRESETS["small"].mxu) is MXUParams
    assert PRESETS["small"].check_rtl() is PRESETS["small"]
    with pytest.raises(ValueError, match=r"config 'tsp' is model-only \(rtl=False\).*cannot be generated as RTL"):
        tsp.check_rtl()
    with pytest.raises(ValueError, match="mxu_rows must be an integer between 1 and 64, not 320"):
        tsp.replace(rtl=True)
    with pytest.raises(ValueError, match="mxu_rows must be at most lanes = 256, not 320"):
        tsp.replace(lanes=256)


def test_weight_slots_are_saved_only_when_more_than_one():
    deep = PRESETS["small"].replace(mxu_weight_slots=4)
    assert deep.mxu.weight_slots == 4 and PRESETS["small"].mxu.weight_slots == 1 and deep.check_rtl() is deep
    assert "mxu_weight_slots" not in PRESETS["small"].to_dict()
    assert deep.to_dict()["mxu_weight_slots"] == 4 and ChipConfig.from_dict(deep.to_dict()) == deep


def test_from_dict_errors():
    d = TINY.to_dict()
    with pytest.raises(ValueError, match=r"unknown ChipConfig fields 'colour', 'size'"):
        ChipConfig.from_dict({**d, "colour": 1, "size": 2})
    del d["lanes"], d["slices"]
    with pytest.raises(ValueError) as info:
        ChipConfig.from_dict(d)
    assert str(info.value) == "ChipConfig.from_dict is missing 'lanes', 'slices'"
    with pytest.raises(TypeError):
        ChipConfig.from_dict([("name", "x")])
    # optional fields take their defaults
    d = TINY.to_dict()
    del d["chips"], d["clock_mhz"], d["rtl"]
    assert ChipConfig.from_dict(d) == TINY


def test_lists_become_tuples_and_config_is_hashable():
    c = TINY.replace(slices=["mem", "vxu"], vxu_ops=["relu"], clock_mhz=50)
    assert c.slices == ("mem", "vxu") and c.vxu_ops == ("relu",) and c.clock_mhz == 50.0
    assert hash(c) == hash(TINY.replace(slices=("mem", "vxu"), vxu_ops=("relu",), clock_mhz=50.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lanes = 8


def test_positions_and_names():
    assert TINY.positions("mem") == (0, 1, 4) and TINY.positions("mxu") == (2,)
    assert TINY.slice_names == ("mem0", "mem1", "mxu0", "vxu0", "mem2")
    assert [TINY.slice_index(r) for r in ("mem2", "mxu", "mxu0", "vxu", 3)] == [4, 2, 2, 3, 3]
    with pytest.raises(ValueError) as info:
        TINY.slice_index("mem")           # ambiguous: three MEM slices
    assert str(info.value) == "slice 'mem' is not in config tiny (slices: mem0, mem1, mxu0, vxu0, mem2)"
    with pytest.raises(ValueError, match="slice index must be between 0 and 4 for config tiny, not 5"):
        TINY.slice_index(5)
    with pytest.raises(ValueError, match="kind must be one of 'mem', 'mxu', 'vxu', 'link', not 'gpu'"):
        TINY.positions("gpu")


def test_slice_kinds_match_isa_units():
    """Every opcode's unit belongs to each slice kind that may run it; every unit has an opcode."""
    for op in isa.OPCODES.values():
        for kind in op.kinds or ():
            assert op.unit in SLICE_KINDS[kind].units, (op.name, kind)
    for kind in SLICE_KINDS.values():
        assert kind.name and kind.description
        for unit in kind.units:
            assert any(o.unit == unit and o.kinds and kind.name in o.kinds for o in isa.OPCODES.values())
