"""What an image must show: a partial, checkable description of a pocket scene.

A user's idea ("two blue squares", "a star at night") pins down only some attributes. A
``Requirement`` states exactly those, and the judge checks exactly those; everything left out is
free. A full ``Scene`` converts to the strictest requirement with ``Requirement.from_scene``.

Example:
    >>> req = Requirement(objects=[ObjectSpec(shape="star")], lighting="night")
    >>> check_requirement(req)  # raises UnknownAttribute on a word the world does not know
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from imagineer.errors import InvalidInput
from imagineer.pocket.world import Scene, World, load_world

RelationKind = Literal["left_of", "right_of", "above", "below"]


class ObjectSpec(BaseModel):
    """One object an image must contain; ``None`` leaves an attribute free.

    Example:
        >>> ObjectSpec(shape="circle", colour="red")
    """

    model_config = ConfigDict(frozen=True)

    shape: str | None = None
    colour: str | None = None
    size: str | None = None
    position: str | None = None

    def stated(self) -> dict[str, str]:
        """The attributes this spec pins down, by name."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Relation(BaseModel):
    """A spatial relation between two required objects, by index into ``Requirement.objects``.

    ``left_of`` means the subject's centre is left of the reference's by a clear margin (the
    judge's ``relation_margin_px``), as in GenEval's position task.
    """

    model_config = ConfigDict(frozen=True)

    subject: int = Field(ge=0)
    relation: RelationKind
    reference: int = Field(ge=0)


class Requirement(BaseModel):
    """Everything an image must show; unstated attributes are free.

    Attributes:
        objects: Objects that must all be present (each matched to a distinct found object).
        count: If set, the exact number of objects in the image.
        relations: Spatial relations between required objects.
        lighting: Required lighting, if any.
        style: Required style, if any.
        defects_present: Defects the image must show.
        defects_absent: Defects the image must not show ("a sharp, clean picture": all of them).

    Example:
        >>> Requirement(
        ...     objects=[ObjectSpec(shape="circle", colour="yellow"),
        ...              ObjectSpec(shape="triangle", colour="purple")],
        ...     relations=[Relation(subject=0, relation="left_of", reference=1)],
        ... )
    """

    model_config = ConfigDict(frozen=True)

    objects: tuple[ObjectSpec, ...] = ()
    count: int | None = Field(default=None, ge=1)
    relations: tuple[Relation, ...] = ()
    lighting: str | None = None
    style: str | None = None
    defects_present: tuple[str, ...] = ()
    defects_absent: tuple[str, ...] = ()

    @classmethod
    def from_scene(cls, scene: Scene, world: World | None = None) -> Requirement:
        """The strictest requirement: every attribute of the scene, nothing more or less.

        Args:
            scene: The scene to require.
            world: The world (for the full list of defects); ``None`` means the bundled one.
        """
        world = world or load_world()
        return cls(
            objects=tuple(ObjectSpec(**obj.model_dump()) for obj in scene.objects),
            count=len(scene.objects),
            lighting=scene.lighting,
            style=scene.style,
            defects_present=tuple(scene.defects),
            defects_absent=tuple(d for d in world.names("defect") if d not in scene.defects),
        )

    def attribute_count(self) -> int:
        """How many separate checks the judge makes for this requirement."""
        per_object = sum(max(1, len(spec.stated())) for spec in self.objects)
        singles = [self.count, self.lighting, self.style]
        return (
            per_object
            + len(self.relations)
            + sum(v is not None for v in singles)
            + len(self.defects_present)
            + len(self.defects_absent)
        )


def check_requirement(requirement: Requirement, world: World | None = None) -> Requirement:
    """Validate a requirement against the world and return it unchanged.

    Raises:
        UnknownAttribute: A value is not in the world's vocabulary.
        InvalidInput: It cannot be satisfied on its face (more objects than the world allows, a
            relation to a missing object, a defect both required and forbidden, a count below
            the number of required objects).
    """
    world = world or load_world()
    for spec in requirement.objects:
        for kind, value in spec.stated().items():
            world.check_value(kind, value)  # type: ignore[arg-type]
    if requirement.lighting is not None:
        world.check_value("lighting", requirement.lighting)
    if requirement.style is not None:
        world.check_value("style", requirement.style)
    for defect in (*requirement.defects_present, *requirement.defects_absent):
        world.check_value("defect", defect)
    _check_consistency(requirement, world)
    return requirement


def _check_consistency(requirement: Requirement, world: World) -> None:
    """Reject requirements no scene could meet, with the reason."""
    n = len(requirement.objects)
    if max(n, requirement.count or 0) > world.max_objects:
        raise InvalidInput(f"the pocket world holds at most {world.max_objects} objects")
    if requirement.count is not None and requirement.count < n:
        raise InvalidInput(f"count {requirement.count} is below the {n} required objects")
    both = set(requirement.defects_present) & set(requirement.defects_absent)
    if both:
        raise InvalidInput(f"defects both required and forbidden: {sorted(both)}")
    for relation in requirement.relations:
        if max(relation.subject, relation.reference) >= n or relation.subject == relation.reference:
            raise InvalidInput(f"relation {relation} must link two distinct required objects")
