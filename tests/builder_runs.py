"""Running a ``ProgramBuilder``'s program on the golden chip, for the scheduler's tests."""
from golden.chip import ChipSim

__all__ = ["run_on_golden"]


def run_on_golden(b, init):
    """Finish ``b``, run it on ``ChipSim`` with MEM ``init`` ({(slice, bank, addr): vector}); ``(sim, program)``
    after checking it ran without a fault in exactly the predicted cycles."""
    prog = b.finish()
    sim = ChipSim(b.config)
    for (p, bank, addr), v in init.items():
        sim.write_mem(p, bank, addr, [v])
    sim.load(prog.words)
    res = sim.run()
    assert res.ok, res.error
    assert res.cycles == prog.predicted_cycles
    return sim, prog
