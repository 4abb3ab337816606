"""The one specification of Conveyor: widths, limits and latencies.

Both the RTL (``rtl/``) and the golden models (``golden/``) read these modules; neither imports the other.
"""
