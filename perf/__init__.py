"""The performance model (issue 12): how fast a model runs on the chip, from the spec, without a program.

There so far:

* ``perf.cost``: closed-form cycle counts of the compiler's kernels (``gemm_cycles``, ``dense_cycles`` for
  ``gemm_bias_requant_relu``, ``mlp_cycles``, ``lut_cycles``, ``argmax_cycles``), read from ``spec/``
  constants and the compiler's placement rules; each equals ``compiler.kernels.<kernel>(...).program
  .predicted_cycles`` with 0 cycles of difference (``tests/test_perf_cost.py``), within the scope its
  docstring states;
* ``perf.models``: ``ModelShape``, a decoder-only transformer by its published shape, and ``MODELS`` (GPT-2
  small, Llama-2-7B/13B/70B, Llama-3-8B/70B, the two reference LMs of issue 10) with ``params()`` and
  ``weight_bytes()``.

Still to come (issue 12, items 3-7): mapping a model onto many model-only chips (``tsp``, ``rtl=False``:
weights in SRAM, pipeline and tensor splits, links, the KV cache), energy and cost per token, the GPU
roofline beside it, design-space sweeps on Dask, and the API and CLI (``perf.estimate``, ``conveyor perf``).
The cost model reads only ``spec`` (``tests/test_house.py``); it never imports the compiler. See
``docs/perf.md``.
"""
