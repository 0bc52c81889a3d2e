"""Progress sinks for tests that stop a fine-tune on purpose."""

from __future__ import annotations


class InterruptAt:
    """A progress sink that presses Ctrl-C when training reaches ``step``."""

    def __init__(self, step: int) -> None:
        self.at = step

    def event(self, kind, data):
        pass

    def step(self, step, total, loss):
        if step >= self.at:
            raise KeyboardInterrupt
