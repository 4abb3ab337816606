"""compiler.frontend_torch: torch.nn modules traced (torch.fx) into the IR, equal to torch's forward, the
unsupported ops refused naming the node, and a traced model through quantize / run_int8.

torch (the CPU build) is a test dependency: these tests import it directly (no skip)."""
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compiler.frontend_torch import SUPPORTED, UnsupportedOpError, from_torch
from compiler.quantize import quantize

SEED = 20240611
TOL = 1e-5


def raises(exc, text):
    return pytest.raises(exc, match="^" + re.escape(text) + "$")


def torch_out(module, *args):
    with torch.no_grad():
        out = module(*[torch.from_numpy(a) for a in args])
    if isinstance(out, torch.Tensor):
        return {"output": out.numpy()}
    return {f"output_{i}": o.numpy() for i, o in enumerate(out)}


def mlp(rng_seed=SEED):
    torch.manual_seed(rng_seed)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 10)).eval()


class Custom(nn.Module):
    """Embedding → view → Linear → GELU, Linear (no bias) → sigmoid, an add, a head and two argmaxes."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.fc_e = nn.Linear(4 * 6, 16)
        self.act = nn.GELU()
        self.fc_x = nn.Linear(8, 16, bias=False)
        self.head = nn.Linear(16, 5)

    def forward(self, ids, x):
        e = self.act(self.fc_e(self.emb(ids).view(ids.size(0), -1)))
        s = torch.sigmoid(self.fc_x(x))
        logits = self.head(e + s)
        return logits, torch.argmax(logits, dim=-1), s.argmax(-1)


def custom_inputs(rng, batch):
    return {"ids": rng.integers(0, 20, size=(batch, 4)).astype(np.int64),
            "x": rng.normal(size=(batch, 8)).astype(np.float32)}


def assert_matches(got, want):
    assert set(got) == set(want)
    for k, w in want.items():
        g = got[k]
        assert g.shape == w.shape, k
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=0, atol=TOL, err_msg=k)
        else:
            np.testing.assert_array_equal(g, w, err_msg=k)


# ---- models that map --------------------------------------------------------------------------------------

def test_sequential_mlp_matches_torch():
    model = mlp()
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(6, 16)).astype(np.float32)
    g = from_torch(model, {"input": x})
    assert [t.name for t in g.inputs] == ["input"]
    assert g.inputs[0].shape == (None, 16)
    assert [n.op for n in g.nodes] == ["input", "linear", "relu", "linear", "tanh", "linear"]
    assert [n.name for n in g.nodes][1:] == ["_0", "_1", "_2", "_3", "_4"]
    np.testing.assert_array_equal(g.node("_0").attrs["W"], model[0].weight.detach().numpy().T)
    assert g.node("_0").attrs["W"].dtype == np.float32
    assert_matches(g.run_float({"input": x}), torch_out(model, x))
    x2 = rng.normal(size=(3, 16)).astype(np.float32)        # another batch size: the batch is free
    assert_matches(g.run_float({"input": x2}), torch_out(model, x2))


def test_nested_sequential_without_bias_and_functional_relu():
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Sequential(nn.Linear(8, 12, bias=False), nn.ReLU()),
                          nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(12, 4), nn.Sigmoid()))).eval()
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(5, 8)).astype(np.float32)
    g = from_torch(model, (torch.from_numpy(x),))            # a tuple of torch tensors
    assert [n.name for n in g.nodes][1:] == ["_0_0", "_0_1", "_1_0", "_1_1_0", "_1_1_1"]
    assert "b" not in g.node("_0_0").attrs
    assert_matches(g.run_float({"input": x}), torch_out(model, x))

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 6)

        def forward(self, x):
            h = F.relu(self.fc(x))
            return torch.relu(h).tanh().flatten(1).exp(), x.relu().reshape(x.shape[0], 2, 4).argmax(dim=2)

    m = Functional().eval()
    g = from_torch(m, x)                                       # one array for a one-argument forward
    assert [n.op for n in g.nodes] == ["input", "linear", "relu", "relu", "tanh", "reshape", "exp", "relu",
                                       "reshape", "argmax"]
    assert g.node("reshape").shape == (None, 2, 4) and g.node("flatten").shape == (None, 6)
    assert_matches(g.run_float({"x": x}), torch_out(m, x))


def test_custom_forward_matches_torch():
    torch.manual_seed(SEED)
    model = Custom().eval()
    rng = np.random.default_rng(SEED)
    inputs = custom_inputs(rng, 7)
    g = from_torch(model, inputs)
    assert [(t.name, t.shape, t.dtype) for t in g.inputs] == [("ids", (None, 4), "int64"), ("x", (None, 8), "float32")]
    ops = {n.name: n.op for n in g.nodes}
    assert ops == {"ids": "input", "x": "input", "emb": "embedding", "view": "reshape", "fc_e": "linear",
                   "act": "gelu", "fc_x": "linear", "sigmoid": "sigmoid", "add": "add", "head": "linear",
                   "argmax": "argmax", "argmax_1": "argmax"}
    assert list(g.outputs) == ["output_0", "output_1", "output_2"]
    np.testing.assert_array_equal(g.node("emb").attrs["table"], model.emb.weight.detach().numpy())
    assert_matches(g.run_float(inputs), torch_out(model, inputs["ids"], inputs["x"]))
    other = custom_inputs(rng, 2)
    assert_matches(g.run_float(other), torch_out(model, other["ids"], other["x"]))
    # the tuple form, in argument order, gives the same graph
    g2 = from_torch(model, (inputs["ids"], inputs["x"]))
    assert g2.summary() == g.summary()


def test_fixed_shapes_and_dict_outputs():
    class Dict(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 3)

        def forward(self, x):
            y = self.fc(x)
            return {"y": y, "cls": y.argmax(-1)}

    torch.manual_seed(SEED)
    m = Dict().eval()
    x = np.random.default_rng(SEED).normal(size=(4, 6)).astype(np.float32)
    g = from_torch(m, {"x": x}, dynamic_batch=False)
    assert g.inputs[0].shape == (4, 6)
    assert list(g.outputs) == ["y", "cls"]
    got = g.run_float({"x": x})
    with torch.no_grad():
        want = m(torch.from_numpy(x))
    np.testing.assert_allclose(got["y"], want["y"].numpy(), atol=TOL, rtol=0)
    np.testing.assert_array_equal(got["cls"], want["cls"].numpy())


def test_compiler_imports_without_torch():
    code = ("import sys; import compiler, compiler.ir, compiler.quantize, compiler.frontend_torch; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


# ---- refused ----------------------------------------------------------------------------------------------

class Wrap(nn.Module):
    """``fc`` then one layer under a chosen attribute name."""

    def __init__(self, name, layer, width=8):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.layer_name = name
        setattr(self, name, layer)

    def forward(self, x):
        return getattr(self, self.layer_name)(self.fc(x))


def test_unsupported_modules_name_the_node():
    x = np.zeros((2, 8), np.float32)
    with raises(UnsupportedOpError, f"unsupported op torch.nn.BatchNorm1d at node 'norm' (supported: {SUPPORTED})"):
        from_torch(Wrap("norm", nn.BatchNorm1d(8).eval()), x)
    with raises(UnsupportedOpError, "unsupported op torch.nn.GELU(approximate='tanh') at node 'act' "
                                    "(only the exact GELU, approximate='none', is supported)"):
        from_torch(Wrap("act", nn.GELU(approximate="tanh")), x)

    class Conv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 2, 3)

        def forward(self, x):
            return self.conv(x)

    with raises(UnsupportedOpError, f"unsupported op torch.nn.Conv1d at node 'conv' (supported: {SUPPORTED})"):
        from_torch(Conv(), np.zeros((2, 1, 8), np.float32))
    assert issubclass(UnsupportedOpError, ValueError)


def test_unsupported_functions_name_the_node():
    class Squared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            return self.fc(x) ** 2

    x = np.zeros((2, 8), np.float32)
    with raises(ValueError, f"unsupported op operator.pow at node 'pow_1' (supported: {SUPPORTED})"):
        from_torch(Squared(), x)

    class TanhGelu(nn.Module):
        def forward(self, x):
            return F.gelu(x, approximate="tanh")

    with raises(UnsupportedOpError, "unsupported op torch.nn.functional.gelu(approximate='tanh') at node 'gelu' "
                                    "(only the exact GELU, approximate='none', is supported)"):
        from_torch(TanhGelu(), x)

    class LogSoftmax(nn.Module):
        def forward(self, x):
            return torch.log_softmax(x, dim=-1).argmax(-1, keepdim=True)

    with raises(UnsupportedOpError, f"unsupported op torch.log_softmax at node 'log_softmax' "
                                    f"(supported: {SUPPORTED})"):
        from_torch(LogSoftmax(), x)

    class Keepdim(nn.Module):
        def forward(self, x):
            return x.argmax(-1, keepdim=True)

    with raises(UnsupportedOpError, "unsupported op Tensor.argmax(keepdim=True) at node 'argmax' "
                                    "(only keepdim=False is supported)"):
        from_torch(Keepdim(), x)


def test_bad_inputs_and_batch_mixing_reshape():
    model = mlp()
    x = np.zeros((3, 16), np.float32)
    with raises(ValueError, "example_inputs must hold exactly the model's inputs (input), not x (missing "
                            "input) (unknown x)"):
        from_torch(model, {"x": x})
    with raises(ValueError, "example_inputs must be a single array or tensor, a tuple of 1 array in argument order "
                            "(input), or a dict of input name to array, not a tuple of 2 items"):
        from_torch(model, (x, x))

    class Mix(nn.Module):
        def forward(self, x):
            return x.view(-1)

    with raises(ValueError, "Tensor.view at node 'view': with dynamic_batch the reshape must keep the leading "
                            "(batch) dimension, not (3, 16) -> (48,) (pass dynamic_batch=False for fixed shapes)"):
        from_torch(Mix(), x)
    g = from_torch(Mix(), x, dynamic_batch=False)
    assert g.outputs["output"].shape == (48,)


# ---- through the quantizer --------------------------------------------------------------------------------

def test_traced_models_quantize_and_run_int8():
    rng = np.random.default_rng(SEED)
    model = mlp()
    calib = [{"input": rng.normal(size=(32, 16)).astype(np.float32)} for _ in range(2)]
    g = from_torch(model, calib[0])
    qg = quantize(g, calib)
    x = {"input": rng.normal(size=(8, 16)).astype(np.float32)}
    q = qg.run_int8(x)
    assert q["output"].shape == (8, 10) and q["output"].dtype == np.int8
    deq = qg.run_dequantized(x)["output"]
    ref = torch_out(model, x["input"])["output"]
    assert np.max(np.abs(deq - ref)) < 0.05 * np.ptp(ref)

    torch.manual_seed(SEED)
    custom = Custom().eval()
    calib = [custom_inputs(rng, 16) for _ in range(2)]
    g = from_torch(custom, calib[0])
    qg = quantize(g, calib)
    inputs = custom_inputs(rng, 5)
    out = qg.run_int8(inputs)
    assert out["output_0"].shape == (5, 5) and out["output_0"].dtype == np.int8
    assert out["output_1"].shape == (5,) and out["output_1"].dtype == np.int32
    assert out["output_2"].shape == (5,) and out["output_2"].dtype == np.int32


def test_functional_linear_add_matmul_dropout():
    class Extra(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(6, 12))
            self.b = nn.Parameter(torch.randn(6))
            self.c = nn.Parameter(torch.randn(6))
            self.drop = nn.Dropout(0.3)

        def forward(self, x, y):
            h = x.view(x.shape[0], x.shape[1] * x.shape[2])
            h = self.drop(F.linear(h, self.w, self.b)) + self.c + 1.5
            return torch.matmul(h, y), torch.add(h, h).contiguous()

    torch.manual_seed(SEED)
    m = Extra().eval()
    rng = np.random.default_rng(SEED)
    inputs = {"x": rng.normal(size=(4, 3, 4)).astype(np.float32), "y": rng.normal(size=(6, 5)).astype(np.float32)}
    g = from_torch(m, inputs, dynamic_batch=False)     # matmul's right operand needs its rows known
    assert [n.op for n in g.nodes] == ["input", "input", "reshape", "linear", "add", "add", "matmul", "add"]
    assert_matches(g.run_float(inputs), torch_out(m, inputs["x"], inputs["y"]))
    m.train()
    with raises(UnsupportedOpError, "unsupported op torch.nn.Dropout at node 'drop' "
                                    "(dropout in training mode: call module.eval() first)"):
        from_torch(m, inputs, dynamic_batch=False)
