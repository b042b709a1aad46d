"""Public dataset loaders: ``from tsforecast.datasets import load_m4``.

The loaders live in :mod:`tsforecast.data` with the rest of the data layer; this module is the short
import path users reach for. See ``data/README.md`` for the datasets, their sources and caching.
"""

from tsforecast.data.m4 import M4_FREQUENCIES, M4Data, default_data_dir, load_m4, load_m4_published

__all__ = ["M4_FREQUENCIES", "M4Data", "default_data_dir", "load_m4", "load_m4_published"]
