"""Comparison helpers shared by the MXU tests: they report the first mismatch usefully."""
import numpy as np


def assert_results_equal(label, got_cycle, got_addr, got_data, want):
    """Compare result vectors (cycle, address, data) with golden ``want`` (an ``MXUResults``)."""
    n = min(len(got_cycle), len(want.cycle))
    for i in range(n):
        if got_cycle[i] != want.cycle[i] or got_addr[i] != want.addr[i] or not np.array_equal(got_data[i],
                                                                                                 want.data[i]):
            diff = np.flatnonzero(np.asarray(got_data[i]) != want.data[i])
            col = int(diff[0]) if len(diff) else None
            raise AssertionError(
                f"{label}: result {i} differs: got cycle {got_cycle[i]} addr {got_addr[i]}, want cycle "
                f"{want.cycle[i]} addr {want.addr[i]}; first differing column {col}: "
                f"got {None if col is None else got_data[i][col]}, want {None if col is None else want.data[i][col]}")
    if len(got_cycle) != len(want.cycle):
        raise AssertionError(f"{label}: got {len(got_cycle)} result vectors, golden has {len(want.cycle)}")


def assert_matrix_equal(label, got, want):
    if got.shape != want.shape:
        raise AssertionError(f"{label}: shape {got.shape}, want {want.shape}")
    bad = np.argwhere(got != want)
    if len(bad):
        i, j = bad[0]
        raise AssertionError(f"{label}: {len(bad)} elements differ; first at [{i}, {j}]: got {got[i, j]}, "
                             f"want {want[i, j]}")
