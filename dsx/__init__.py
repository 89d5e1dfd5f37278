"""The `dsx` command line: a thin edge over planner/, infra/ and operators/."""

import os

# Set before numpy is first imported, which reads it then: numpy's large arrays on ordinary
# pages, not transparent huge pages, unless the environment says otherwise. On a virtual
# machine that hands free memory back to its host (the bench's machine does), a huge page
# faulted in from such memory stalls the process: the decomposition's hand-off at
# (10,3,20,6,50) took 0.32-0.34 s in each of five runs with ordinary pages and 0.33-0.71 s with
# huge pages (bench/README.md, session 18); the solve itself ran alike either way. Worker processes
# started from here inherit it; a remote `dask worker` needs it set (docs/insight.md).
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
