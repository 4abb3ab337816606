"""The named assumptions of ``perf.estimate``: every figure with its unit and its published source.

One frozen dataclass per group; every field is a ``Value(value, unit, source)``. A source says where the
figure comes from (paper, datasheet, press report, year); a figure that no source fixes is marked
"estimate" in its source, with the range it was taken from. ``DEFAULT`` is the set ``perf.estimate`` uses;
``DEFAULT.replace(...)``-style changes go through ``dataclasses.replace`` on a group.

The chip's own shape (lanes, MXU planes, SRAM, clock) is read from the ``ChipConfig`` (the ``tsp`` preset);
``TSPCard`` holds the published figures of the card around it (power, price, links) and the published chip
figures the preset must agree with (``tests/test_perf_estimate.py`` checks it does).
"""
from dataclasses import dataclass, fields

__all__ = ["Value", "TSPCard", "OpEnergy", "Economics", "GPU", "Assumptions", "DEFAULT", "H100", "H200"]


@dataclass(frozen=True)
class Value:
    """One named figure: its value, its unit and where it comes from."""
    value: float
    unit: str
    source: str

    def __post_init__(self):
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not self.value > 0:
            raise ValueError(f"value must be a positive number, not {self.value!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError("source must be a non-empty string")

    def to_dict(self):
        return {"value": self.value, "unit": self.unit, "source": self.source}


class _Group:
    def to_dict(self):
        return {f.name: getattr(self, f.name).to_dict() for f in fields(self)}


_ISCA20 = "Abts et al., 'Think Fast: A Tensor Streaming Processor (TSP)', ISCA 2020"
_LINLEY20 = "Gwennap, 'Groq Gets Connected', Linley Newsletter, 10 Nov 2020 (Abts at Linley Fall Processor Conf.)"


@dataclass(frozen=True)
class TSPCard(_Group):
    """The published TSP chip (GlobalFoundries 14 nm) and its PCIe card (GroqCard)."""
    sram_mib: Value = Value(220, "MiB", f"{_ISCA20}: 220 MiB of on-chip SRAM (Groq's product pages: '230 MB')")
    clock_mhz: Value = Value(900, "MHz", f"{_ISCA20}: nominal clock 900 MHz")
    lanes: Value = Value(320, "lanes", f"{_ISCA20}: 320-byte vectors (20 superlanes of 16 lanes)")
    int8_tops: Value = Value(750, "TOPS", "Groq product figures as reported by TechPowerUp, Feb 2024: 750 TOPS "
                                          "int8, 188 TFLOPS fp16 at 900 MHz (the ISCA 2020 paper: ~1 PetaOp/s "
                                          "counting all units)")
    board_w: Value = Value(300, "W", "TechSpot, Jan 2020 ('the TSP demands 300W'); estimate for the card's "
                                     "power under load, the GroqCard datasheet range being about 240-375 W")
    link_gbytes_s: Value = Value(15, "GB/s", f"{_LINLEY20}: 16 C2C links per chip, each 4 lanes of 30 Gb/s "
                                             "(14 GB/s per direction cabled); one link per pipeline hop assumed")
    links_per_chip: Value = Value(16, "links", f"{_LINLEY20}: 16 C2C links per chip (a tensor group's exchanges "
                                               "use up to this many at once)")
    link_latency_us: Value = Value(1.0, "us", "estimate: SerDes, FEC and cable of one C2C hop, taken as 1 us "
                                              "(order 0.5-2 us; no per-hop latency found in the published papers)")
    price_usd: Value = Value(20000, "USD", "press reports 2023-2024 of the GroqCard's distributor list price "
                                           "(about $20k); estimate, uncertain by +-50 % (volume prices unknown)")


_HOROWITZ = "Horowitz, 'Computing's Energy Problem', ISSCC 2014 (45 nm, 0.9 V)"


@dataclass(frozen=True)
class OpEnergy(_Group):
    """Energies per operation at 14 nm: Horowitz's 45 nm figures scaled by ``scale_45_to_14``."""
    scale_45_to_14: Value = Value(0.4, "x", "estimate: energy per operation from 45 nm to 14 nm FinFET "
                                            "(C.V^2 scaling over three nodes, about 0.3-0.5 x)")
    int8_mac_pj: Value = Value(0.12, "pJ", f"{_HOROWITZ}: 8-bit multiply 0.2 pJ + 32-bit add 0.1 pJ, "
                                                 "scaled by scale_45_to_14 (estimate)")
    sram_read_pj_per_byte: Value = Value(0.5, "pJ/B", f"{_HOROWITZ}: 10 pJ per 64-bit read of an 8 KB "
                                                              "SRAM, scaled by scale_45_to_14 (estimate; the "
                                                              "TSP's on-chip wires are not in it)")
    link_pj_per_bit: Value = Value(5.0, "pJ/b", "estimate: 28-30 Gb/s long-reach SerDes in 14/16 nm, about "
                                                "3-10 pJ/bit in published transceivers")


@dataclass(frozen=True)
class Economics(_Group):
    """What a second of a card costs: its price over its life, and its power at the wall."""
    amortisation_years: Value = Value(4, "years", "estimate: accelerator depreciation of 3-6 years (cloud "
                                                  "providers' 10-K filings 2022-2024 use 5-6 for servers)")
    power_usd_per_kwh: Value = Value(0.10, "USD/kWh", "estimate: US industrial electricity, about $0.08/kWh "
                                                      "(EIA Electric Power Monthly, 2023 average), rounded up")
    pue: Value = Value(1.5, "x", "Uptime Institute Global Data Center Survey 2023: average PUE 1.58, rounded")
    utilisation: Value = Value(1.0, "x", "assumption: the system is kept busy all the time (an upper bound on "
                                         "tokens per dollar)")


_H100_DS = "NVIDIA H100 Tensor Core GPU datasheet (2023), SXM"
_H200_DS = "NVIDIA H200 Tensor Core GPU datasheet (2024), SXM"


@dataclass(frozen=True)
class GPU(_Group):
    """A GPU by its datasheet: HBM, dense peaks (the datasheets' sparse figures halved), power, price."""
    hbm_tbytes_s: Value
    hbm_gbytes: Value
    int8_tops: Value
    bf16_tflops: Value
    board_w: Value
    price_usd: Value


def _gpu(sheet, tbytes_s, hbm, gbytes, price, price_source):
    """A GPU of the Hopper datasheets: the same dense peaks and power, its HBM and price."""
    return GPU(hbm_tbytes_s=Value(tbytes_s, "TB/s", f"{sheet}: {hbm} {tbytes_s} TB/s"),
               hbm_gbytes=Value(gbytes, "GB", f"{sheet}: {gbytes} GB"),
               int8_tops=Value(1979, "TOPS", f"{sheet}: int8 and fp8 3,958 with sparsity, 1,979 dense"),
               bf16_tflops=Value(989, "TFLOPS", f"{sheet}: bf16 1,979 with sparsity, 989 dense"),
               board_w=Value(700, "W", f"{sheet}: max TDP up to 700 W"),
               price_usd=Value(price, "USD", price_source))


H100 = _gpu(_H100_DS, 3.35, "HBM3", 80, 25000, "press reports 2023-2024 (e.g. CNBC, Apr 2023): $25k-$40k a card; "
                                               "estimate, low end taken")
H200 = _gpu(_H200_DS, 4.8, "HBM3e", 141, 30000, "press reports 2024: $30k-$40k a card; estimate, low end taken")


@dataclass(frozen=True)
class Assumptions:
    """Every group ``perf.estimate`` reads."""
    tsp: TSPCard = TSPCard()
    energy: OpEnergy = OpEnergy()
    economics: Economics = Economics()
    h100: GPU = H100
    h200: GPU = H200

    def to_dict(self):
        return {f.name: getattr(self, f.name).to_dict() for f in fields(self)}

    def values(self):
        """``[(group.name, Value)]`` of every figure."""
        return [(f"{g}.{k}", Value(**v)) for g, group in self.to_dict().items() for k, v in group.items()]


DEFAULT = Assumptions()
