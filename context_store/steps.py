"""An operation as named steps run in order, so that a test can stop one
after any step and see what a crash there leaves behind."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Step = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Steps:
    """The steps of one operation (a merge, an erase), in order."""

    steps: list[tuple[str, Step]] = field(default_factory=list)

    def add(self, name: str, step: Step) -> None:
        self.steps.append((name, step))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.steps]

    async def run(self, upto: str | None = None) -> None:
        """Every step, or those up to and including `upto`."""
        for name, step in self.steps:
            await step()
            if name == upto:
                return
