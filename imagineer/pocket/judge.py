"""The pocket judge: does an image show what was required?

``analyze`` (from ``analysis.py``) reads an image into a ``Finding``; ``judge`` compares a finding
with a ``Requirement`` (or a full ``Scene``) attribute by attribute, and ``Verdict`` reports every
check with what was expected and what was found, the way GenEval reports per-task correctness.
Required objects are matched to found objects so as to satisfy as many checks as possible, so a
verdict never fails an image for listing its objects in another order.

Example:
    >>> verdict = judge(image, Requirement(objects=(ObjectSpec(shape="star"),), lighting="night"))
    >>> verdict.all_correct, [c.attribute for c in verdict.checks if not c.correct]
"""

from __future__ import annotations

import itertools

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from imagineer.errors import InvalidInput
from imagineer.pocket.analysis import Finding, FoundObject, JudgeConfig, analyze
from imagineer.pocket.requirement import ObjectSpec, Relation, Requirement, check_requirement
from imagineer.pocket.world import (
    Scene,
    SceneObject,
    World,
    check_scene,
    load_world,
    placements_compatible,
)

__all__ = ["Check", "Verdict", "analyze", "finding_from_scene", "judge", "judge_finding"]

MAX_MATCHED = 6  # found objects considered when matching (largest first)


class Check(BaseModel):
    """One required attribute: what was expected, what the judge found, and whether they agree.

    ``attribute`` names it: ``count``, ``lighting``, ``style``, ``defect.<name>``,
    ``object<i>.<shape|colour|size|position|present>`` or ``relation<j>``.
    """

    attribute: str
    expected: str | int | bool
    found: str | int | bool | None
    correct: bool


class Verdict(BaseModel):
    """The judge's answer for one image and one requirement.

    Example:
        >>> verdict.all_correct, verdict.score
        (False, 0.75)
    """

    checks: list[Check]
    all_correct: bool
    score: float = Field(ge=0, le=1, description="Fraction of checks passed (1.0 if none).")
    finding: Finding

    def failed(self) -> list[Check]:
        """The checks that did not pass."""
        return [check for check in self.checks if not check.correct]


def judge(
    image: Image.Image | np.ndarray,
    requirement: Requirement | Scene,
    world: World | None = None,
    config: JudgeConfig | None = None,
) -> Verdict:
    """Analyse an image and check it against a requirement.

    Args:
        image: A PIL image or an (H, W, 3) array.
        requirement: What the image must show; a ``Scene`` means all of its attributes.
        world: The world; ``None`` means the bundled one.
        config: Analysis thresholds; ``None`` means the defaults.

    Returns:
        The verdict, with one ``Check`` per required attribute.

    Raises:
        UnknownAttribute: The requirement uses a value outside the world's vocabulary.
        InvalidInput: The requirement is inconsistent, or the image is not an RGB image.
    """
    world = world or load_world()
    finding = analyze(image, world, config)
    return judge_finding(finding, requirement, world, config)


def judge_finding(
    finding: Finding,
    requirement: Requirement | Scene,
    world: World | None = None,
    config: JudgeConfig | None = None,
) -> Verdict:
    """Check an existing finding against a requirement (no image analysis).

    Useful to judge one finding against several requirements, and to check scenes logically
    (with ``finding_from_scene``).
    """
    world = world or load_world()
    config = config or JudgeConfig()
    if isinstance(requirement, Scene):
        requirement = Requirement.from_scene(check_scene(requirement, world), world)
    check_requirement(requirement, world)
    checks = _global_checks(finding, requirement)
    checks += _object_checks(finding, requirement, config)
    passed = sum(check.correct for check in checks)
    return Verdict(
        checks=checks,
        all_correct=passed == len(checks),
        score=passed / len(checks) if checks else 1.0,
        finding=finding,
    )


def _global_checks(finding: Finding, requirement: Requirement) -> list[Check]:
    """Checks that do not depend on which object is which: count, lighting, style, defects."""
    checks = []
    if requirement.count is not None:
        checks.append(_check("count", requirement.count, finding.count))
    if requirement.lighting is not None:
        checks.append(_check("lighting", requirement.lighting, finding.lighting))
    if requirement.style is not None:
        checks.append(_check("style", requirement.style, finding.style))
    for defect in requirement.defects_present:
        checks.append(_check(f"defect.{defect}", True, defect in finding.defects))
    for defect in requirement.defects_absent:
        checks.append(_check(f"defect.{defect}", False, defect in finding.defects))
    return checks


def _object_checks(finding: Finding, requirement: Requirement, config: JudgeConfig) -> list[Check]:
    """Per-object and relation checks under the assignment of found objects that passes most.

    Every assignment of distinct found objects (or "missing") to the required objects is tried;
    with at most a handful of objects on a 64 px canvas that is a few hundred cheap tuples.
    """
    if not requirement.objects:
        return []
    found = sorted(finding.objects, key=lambda o: -o.area_px)[:MAX_MATCHED]
    slots: list[FoundObject | None] = [*found, *([None] * len(requirement.objects))]
    best: list[tuple[str, str | int | bool, str | bool | None, bool]] = []
    best_passed = -1
    for chosen in itertools.permutations(range(len(slots)), len(requirement.objects)):
        results = _assignment_results(requirement, [slots[i] for i in chosen], config)
        passed = sum(result[3] for result in results)
        if passed > best_passed:
            best, best_passed = results, passed
    return [
        Check(attribute=name, expected=expected, found=got, correct=ok)
        for name, expected, got, ok in best
    ]


def _assignment_results(
    requirement: Requirement, assigned: list[FoundObject | None], config: JudgeConfig
) -> list[tuple[str, str | int | bool, str | bool | None, bool]]:
    """(attribute, expected, found, correct) for one assignment of found objects (None:
    missing) to the required objects."""
    results: list[tuple[str, str | int | bool, str | bool | None, bool]] = []
    for i, (spec, obj) in enumerate(zip(requirement.objects, assigned, strict=True)):
        stated = spec.stated()
        if not stated:
            results.append((f"object{i}.present", True, obj is not None, obj is not None))
        for name, expected in stated.items():
            got = getattr(obj, name) if obj is not None else None
            results.append((f"object{i}.{name}", expected, got, got == expected))
    for j, relation in enumerate(requirement.relations):
        subject, reference = assigned[relation.subject], assigned[relation.reference]
        holds = _relation_holds(relation, subject, reference, config)
        text = f"object{relation.subject} {relation.relation} object{relation.reference}"
        results.append((f"relation{j}", text, holds, holds))
    return results


def _relation_holds(
    relation: Relation,
    subject: FoundObject | None,
    reference: FoundObject | None,
    config: JudgeConfig,
) -> bool:
    """Whether the subject's centre is on the required side of the reference's, by a margin."""
    if subject is None or reference is None:
        return False
    (sx, sy), (rx, ry) = subject.centre_px, reference.centre_px
    margin = config.relation_margin_px
    return {
        "left_of": sx < rx - margin,
        "right_of": sx > rx + margin,
        "above": sy < ry - margin,
        "below": sy > ry + margin,
    }[relation.relation]


def _check(attribute: str, expected: str | int | bool, found: str | int | bool) -> Check:
    return Check(attribute=attribute, expected=expected, found=found, correct=found == expected)


def finding_from_scene(scene: Scene, world: World | None = None) -> Finding:
    """The finding a perfect judge would report for a scene: for logical checks of scenes."""
    world = world or load_world()
    check_scene(scene, world)
    objects = [
        FoundObject(
            shape=obj.shape,
            colour=obj.colour,
            size=obj.size,
            position=obj.position,
            centre_px=world.centre(obj.position),
            extent_px=2 * world.radius(obj.size) * world.shape(obj.shape).extent,
            area_px=0,
            shape_score=1.0,
            rgb=tuple(float(v) for v in world.colour_rgb(obj.colour)),
        )
        for obj in scene.objects
    ]
    return Finding(
        objects=objects,
        count=len(objects),
        lighting=scene.lighting,
        style=scene.style,
        defects=[d for d in world.names("defect") if d in scene.defects],
    )


def sample_scene_for(
    requirement: Requirement,
    rng: np.random.Generator,
    world: World | None = None,
    max_tries: int = 2000,
) -> Scene:
    """A random scene that satisfies a requirement: stated attributes kept, the rest drawn.

    Used to show a requirement is satisfiable, to build reference images for an idea, and to
    test the judge on ideas.

    Raises:
        InvalidInput: No scene satisfying the requirement was found in ``max_tries`` draws.
    """
    world = world or load_world()
    check_requirement(requirement, world)
    for _ in range(max_tries):
        scene = _draw_for(requirement, rng, world)
        if (
            scene is not None
            and judge_finding(finding_from_scene(scene, world), requirement, world).all_correct
        ):
            return scene
    raise InvalidInput(f"no pocket scene satisfies {requirement!r} (tried {max_tries} scenes)")


def _draw_for(requirement: Requirement, rng: np.random.Generator, world: World) -> Scene | None:
    """One random draw honouring the stated attributes, or None if its layout does not fit."""
    specs = list(requirement.objects)
    total = requirement.count or max(len(specs), 1)
    specs += [ObjectSpec()] * (total - len(specs))
    objects = [_draw_object(spec, rng, world) for spec in specs]
    if len({o.position for o in objects}) < len(objects) or any(
        not placements_compatible((a.size, a.position), (b.size, b.position), world)
        for i, a in enumerate(objects)
        for b in objects[i + 1 :]
    ):
        return None
    defects = set(requirement.defects_present)
    for defect in world.names("defect"):
        if defect not in requirement.defects_absent and rng.random() < world.sampling.p_defect:
            defects.add(defect)
    return Scene(
        objects=tuple(objects),
        lighting=requirement.lighting or str(rng.choice(world.names("lighting"))),
        style=requirement.style or str(rng.choice(world.names("style"))),
        defects=tuple(d for d in world.names("defect") if d in defects),
    )


def _draw_object(spec: ObjectSpec, rng: np.random.Generator, world: World) -> SceneObject:
    """A scene object with the spec's attributes, the others drawn uniformly."""
    return SceneObject(
        **{
            kind: getattr(spec, kind) or str(rng.choice(world.names(kind)))  # type: ignore[arg-type]
            for kind in ("shape", "colour", "size", "position")
        }
    )
