"""The benches refuse bad arguments before building anything, in one line naming what is allowed."""
import json

import pytest

from bench import chip, lm_chips
from spec.config import PRESETS


@pytest.mark.parametrize("argv, msg", [
    (["--config", "tsp"], "argument --config: config tsp is model-only (rtl=False): it has no Verilog to run"),
    (["--config", "nope"], "argument --config: must be one of tiny, small, tsp or a .json file, not 'nope'"),
])
def test_chip_bench_refuses(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        chip.main(argv)
    assert e.value.code == 2
    assert msg in capsys.readouterr().err


def test_chip_bench_checks_a_json_config(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**PRESETS["small"].to_dict(), "mxu_weight_slots": 17}))
    with pytest.raises(SystemExit):
        chip.main(["--config", str(bad)])
    assert "mxu_weight_slots must be an integer between 1 and 16, not 17" in capsys.readouterr().err


def test_lm_chips_bench_refuses_too_many_slots(capsys):
    with pytest.raises(SystemExit) as e:
        lm_chips.main(["--weight-slots", "17"])
    assert e.value.code == 2
    assert "argument --weight-slots: mxu_weight_slots must be an integer between 1 and 16, not 17" in \
        capsys.readouterr().err
