"""Checking a compiled language model's generation on golden, for the LM tests."""
import numpy as np

from sim.lm_run import _golden

__all__ = ["assert_golden_equals_the_reference"]


def assert_golden_equals_the_reference(lm, prompt, steps=3):
    """Generate ``steps`` tokens after ``prompt`` on golden (greedy): every step's token is fed where it was
    picked, its logits equal the int8 reference's and it takes exactly the predicted step cycles."""
    tokens, cycles, logits, feeds = _golden(lm, prompt, steps, 0.0, 0)
    seq = list(prompt) + tokens
    for (tok, pos), got in zip(feeds, logits):
        assert tok == seq[pos]
        np.testing.assert_array_equal(got, lm.reference_logits(seq[:pos + 1]), err_msg=f"position {pos}")
    assert cycles == [lm.step_cycles] * len(feeds)
