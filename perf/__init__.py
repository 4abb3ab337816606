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

* ``perf.estimate``: ``estimate(model, config="tsp", chips=None, batch=1, prompt=128, tokens=128)``, a
  language model on a pipeline of model-only chips (chips to hold the int8 weights and KV cache in SRAM,
  decode step, time to first token, tokens/s per user and in all, tokens per joule, dollars per million
  tokens, where the time goes) with the H200 and H100 rooflines beside it (``perf.gpu``), from the named
  assumptions of ``perf.assumptions`` (each with its source) and the per-token work of ``perf.work``.

``split="tensor"|"auto"`` spreads every layer over groups of chips, its link exchanges counted; every chip's
SRAM (weights, KV cache, scratch against capacity) and every link's busy fraction in a decode step are in
``sram["per_chip"]`` and ``links["per_link"]``.

* ``perf.gpu_measured``: published measured GPU decode figures (H100, H200) with their sources, shown beside
  the roofline in ``estimate``'s ``gpu`` section (``tools/gpu_decode.py`` measures more on a CUDA GPU).

* ``perf.sweep``: ``sweep(model, grid)``, ``perf.estimate`` over a grid of chip designs (lanes, MXU, SRAM,
  clock, chips, links) as Dask tasks, with CSV/JSON files and plots (``conveyor sweep``).

Still to come (issue 12): compiled transformer kernels (attention and the vector
operators are estimated by formula), and exactness against compiled LM
programs. The cost model reads only ``spec`` (``tests/test_house.py``); it never imports the compiler. See
``docs/perf.md``.
"""
