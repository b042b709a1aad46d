"""Input validation, the internal panel form and dataset loaders (numpy and pandas only)."""

from tsforecast.data.frequency import future_index, infer_frequency
from tsforecast.data.panel import (
    MISSING_POLICIES,
    Columns,
    Layout,
    Panel,
    check_min_length,
    from_panel,
    time_axis_kind,
    to_long,
    to_panel,
)

__all__ = [
    "MISSING_POLICIES",
    "Columns",
    "Layout",
    "Panel",
    "check_min_length",
    "from_panel",
    "future_index",
    "infer_frequency",
    "time_axis_kind",
    "to_long",
    "to_panel",
]
