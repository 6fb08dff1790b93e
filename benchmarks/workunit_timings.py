"""A Pants backend for layer_benchmark.py: writes every completed workunit of a run to JSON.

layer_benchmark.py copies this file into its throwaway checkout as
`bench-plugins/workunit_timings/register.py` and loads it for every run there (backend
options are read when pantsd starts, so it is on from the first run and pantsd stays warm).
It does nothing unless `--workunit-timings-out=PATH` is given: then, at the end of that run,
PATH receives one record per completed workunit (name, description, start, duration, span
and parent ids), from Pants' streaming workunit handler, the engine's own data.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from pants.engine.internals.scheduler import Workunit
from pants.engine.rules import Rule, collect_rules, rule
from pants.engine.streaming_workunit_handler import (
    StreamingWorkunitContext,
    WorkunitsCallback,
    WorkunitsCallbackFactory,
    WorkunitsCallbackFactoryRequest,
)
from pants.engine.unions import UnionRule
from pants.option.option_types import StrOption
from pants.option.subsystem import Subsystem


class WorkunitTimings(Subsystem):
    options_scope = "workunit-timings"
    help = "Write the run's completed workunits to a JSON file (layer_benchmark.py)."

    out = StrOption(default=None, help="Where to write them; nothing is recorded without it.")


def _record(workunit: Workunit) -> dict[str, Any]:
    parents = workunit.get("parent_ids") or [workunit.get("parent_id")]
    return {
        "name": workunit["name"],
        "description": workunit.get("description") or "",
        "level": str(workunit.get("level", "")),
        "span_id": workunit["span_id"],
        "parent_ids": [p for p in parents if p],
        "start": workunit.get("start_secs", 0) + workunit.get("start_nanos", 0) / 1e9,
        "seconds": workunit.get("duration_secs", 0) + workunit.get("duration_nanos", 0) / 1e9,
    }


class WorkunitTimingsCallback(WorkunitsCallback):
    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out
        self.records: list[dict[str, Any]] = []

    @property
    def can_finish_async(self) -> bool:
        return False  # the file must exist when the client returns

    def __call__(
        self,
        *,
        started_workunits: tuple[Workunit, ...],
        completed_workunits: tuple[Workunit, ...],
        finished: bool,
        context: StreamingWorkunitContext,
    ) -> None:
        self.records.extend(_record(workunit) for workunit in completed_workunits)
        if finished:
            self.out.write_text(json.dumps(self.records))


class WorkunitTimingsFactoryRequest:
    """The union member that makes Pants ask for the callback."""


@rule
def workunit_timings_callback(
    _: WorkunitTimingsFactoryRequest, subsystem: WorkunitTimings
) -> WorkunitsCallbackFactory:
    out = subsystem.out
    return WorkunitsCallbackFactory(lambda: WorkunitTimingsCallback(Path(out)) if out else None)


def rules() -> Iterable[Rule | UnionRule]:
    return [
        *collect_rules(),
        UnionRule(WorkunitsCallbackFactoryRequest, WorkunitTimingsFactoryRequest),
    ]
