"""A scheduler plugin for tests: records on which worker every task finished (the scheduler's own record)."""

from distributed.diagnostics.plugin import SchedulerPlugin


class PlacementRecorder(SchedulerPlugin):
    name = "placement-recorder"

    def __init__(self):
        self.records = []

    def transition(self, key, start, finish, *args, **kwargs):
        if finish == "memory" and kwargs.get("worker"):
            self.records.append((str(key), kwargs["worker"]))
