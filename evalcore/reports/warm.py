"""Import the report stack (pandas, openpyxl, matplotlib) while units still compute, so
that scoring and publishing, which come after the last answer, do not begin with ~1 s
of imports on the critical path.

The flow calls it from its main thread, which only waits for the units meanwhile and
then scores and publishes in that same thread: the reports never import these modules
while another thread is half-way through importing them (concurrent imports of a
package with internal cycles, openpyxl's, can hand a thread a half-initialised module).
A cached run never calls it: it imports none of these.
"""

from __future__ import annotations

import importlib

REPORT_MODULES = ("pandas", "openpyxl", "matplotlib.figure", "matplotlib.backends.backend_agg")


def import_report_modules() -> None:
    for name in REPORT_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional part missing: its report says so when it runs
            pass
