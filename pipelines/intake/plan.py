"""The plan of a new file: which jobs it gets and its initial component statuses, from its media type's plan. The
API asks for it when it records an upload; it assembles nothing itself."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.document.plan import PLAN as DOCUMENT
from pipelines.engine.plan import MediaPlan
from pipelines.image.plan import PLAN as IMAGE
from pipelines.image.plan import VARIANTS
from pipelines.video.plan import PLAN as VIDEO
from pipelines.video.plan import VIDEO_ANALYSIS
from store.status import COMPONENTS

# Links are stored and wait for their own package's steps.
PLANS: dict[str, MediaPlan] = {plan.media_type: plan for plan in (IMAGE, DOCUMENT, VIDEO, MediaPlan("link"))}

# What the upload answer reports as started: steps that make thumbnails, and a video's analysis.
THUMBNAIL_STEPS = (VARIANTS.name, VIDEO_ANALYSIS)
ANALYSIS_STEPS = (VIDEO_ANALYSIS,)

DESCRIPTION_UNAVAILABLE = (
    "AI descriptions are unavailable: no describe model is configured. Set SCOPIX_MODELS__DESCRIBE__MODEL to a local "
    "directory holding a vision-language model (its config, processor and weights: BLIP, LLaVA, SmolVLM, Qwen-VL) "
    "or to a hub id already in the local Hugging Face cache, and restart"
)
DESCRIPTION_IMAGES_ONLY = "AI descriptions are made for images and videos only so far"


@dataclass(frozen=True)
class NewFilePlan:
    steps: tuple[str, ...]  # the jobs queued with the file row
    statuses: dict[str, str | None]  # its component statuses and description_error


def plan_new_file(media_type: str, auto_describe: bool, describes: bool) -> NewFilePlan:
    """Components with a queued step start `queued`, the others `pending`. The description is `pending` when the
    media type is describable, the upload wants one and a describe model is configured (`describes`); else it is
    `skipped` (with the reason when one was wanted)."""
    plan = PLANS[media_type]
    queued = plan.queued_components
    statuses: dict[str, str | None] = {
        name: "queued" if name in queued else "pending" for name in COMPONENTS[media_type]
    }
    statuses["description_error"] = None
    if not (auto_describe and describes and plan.describable):
        statuses["description_status"] = "skipped"
        if auto_describe:
            statuses["description_error"] = DESCRIPTION_IMAGES_ONLY if describes else DESCRIPTION_UNAVAILABLE
    return NewFilePlan(plan.step_names, statuses)
