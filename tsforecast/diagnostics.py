"""Diagnostics of fitted recurrent forecasters (``from tsforecast.diagnostics import diagnose``).

The public face of :mod:`tsforecast.nn.diagnostics`, where the implementation lives, with the same
names (:func:`diagnose`, :class:`DiagnosticReport`, :func:`compare_gradient_flow`...). Diagnostics
run the network, so importing this module imports torch (``import tsforecast`` alone does not).
"""

from tsforecast.nn.diagnostics import *  # noqa: F403
from tsforecast.nn.diagnostics import __all__  # noqa: F401
