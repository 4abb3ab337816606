"""Mutation check: small deliberate bugs applied to copies of the RTL, each of which the tests must catch.

``python -m mutants [NAMES...] [--list] [--jobs N]`` (``make mutants``): the table of bugs is
:mod:`mutants.list`, the runner :mod:`mutants.run`, documentation ``docs/mutants.md``.
"""
