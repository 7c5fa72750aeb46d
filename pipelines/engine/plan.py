"""A media type's plan, as data: the steps a new file of that type gets first (their follow-ups come from the steps
themselves) and whether a description model describes it. Each media package declares its own
(pipelines/<media>/plan.py); the intake turns one into a new file's jobs and initial statuses."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.engine.step import Step


@dataclass(frozen=True)
class MediaPlan:
    media_type: str
    first_steps: tuple[Step, ...] = ()
    describable: bool = False  # the describe model makes its description (when one is configured)

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.first_steps)

    @property
    def queued_components(self) -> tuple[str, ...]:
        """The component statuses that the first steps drive: they start `queued`."""
        return tuple(component for step in self.first_steps for component in step.components)
