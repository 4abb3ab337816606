"""Formal proofs (SymbiYosys, k-induction + cover) of Conveyor's RTL; run them with ``python -m formal.run``.

Each proof module defines ``PROOF``, a :class:`formal.common.Proof`: a wrapper ``Elaboratable`` around an
unchanged RTL component holding the properties (Amaranth ``Assert``/``Assume``/``Cover``), the k-induction
depth, the cover depth and the planted bugs that must make the proof fail. docs/formal.md describes them.
"""
