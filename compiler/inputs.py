"""One rule for a model's inputs, in the forms a PyTorch user writes them.

Everywhere a model takes inputs (``compile``'s ``example_inputs`` and ``calibration``, ``run``'s inputs, a
``MODEL.py``'s ``example_inputs()``, the torch front end), they may be given as

* a **tuple** (or list) of arrays in argument order: ``(x,)``, ``(ids, mask)``;
* a **single array** (numpy array or torch tensor) for a model with one input: ``x``;
* a **dict** by input name: ``{"x": x}``.

``named_inputs(inputs, names, what)`` turns any of them into ``{name: value}`` (values unchanged) and raises
a one-line ``TypeError``/``ValueError`` that says what was expected when none fits. ``as_numpy(value)`` is a
value as a numpy array (torch tensors detached and copied to the CPU). ``exact_names(given, names, must)``
is the one message for a dict whose keys are not exactly the names (also used by ``Graph.check_inputs`` and
the torch front end's example inputs).
"""
import numpy as np

__all__ = ["named_inputs", "as_numpy", "expected_forms", "is_array", "exact_names"]


def is_array(value):
    """Whether ``value`` is one array: a numpy array or a torch tensor (anything with ``detach``/``numpy``)."""
    return isinstance(value, np.ndarray) or (hasattr(value, "detach") and hasattr(value, "numpy"))


def as_numpy(value):
    """``value`` as a numpy array (a torch tensor is detached and copied to the CPU first)."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def expected_forms(names):
    """The sentence naming the forms allowed for inputs ``names`` (for error messages)."""
    order = ", ".join(names)
    single = "a single array or tensor, " if len(names) == 1 else ""
    return (f"{single}a tuple of {len(names)} array{'s' if len(names) != 1 else ''} in argument order ({order}), "
            f"or a dict of input name to array")


def exact_names(given, names, must):
    """Refuse a dict ``given`` whose keys are not exactly ``names``: ``ValueError`` ``{must} (names), not
    (keys given) (missing …) (unknown …)``."""
    missing = [n for n in names if n not in given]
    extra = [str(k) for k in given if k not in names]
    if missing or extra:
        raise ValueError(f"{must} ({', '.join(names)}), not {', '.join(map(str, given)) or 'nothing'}"
                         + (f" (missing {', '.join(missing)})" if missing else "")
                         + (f" (unknown {', '.join(extra)})" if extra else ""))


def named_inputs(inputs, names, what="inputs"):
    """``{name: value}`` for the inputs ``names`` (in argument order) given in any of the module's forms."""
    names = list(names)
    if isinstance(inputs, dict):
        exact_names(inputs, names, f"{what} must hold exactly the model's inputs")
        return {n: inputs[n] for n in names}
    if isinstance(inputs, (tuple, list)):
        if len(inputs) != len(names) or not all(is_array(v) or np.ndim(v) > 0 for v in inputs):
            raise ValueError(f"{what} must be {expected_forms(names)}, not a {type(inputs).__name__} of "
                             f"{len(inputs)} item{'s' if len(inputs) != 1 else ''}")
        return dict(zip(names, inputs))
    if is_array(inputs):
        if len(names) != 1:
            raise ValueError(f"{what} must be {expected_forms(names)}: one array cannot name the "
                             f"{len(names)} inputs")
        return {names[0]: inputs}
    raise TypeError(f"{what} must be {expected_forms(names)}, not {type(inputs).__name__}")
