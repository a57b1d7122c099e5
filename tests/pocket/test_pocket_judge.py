"""The judge: exact on ground-truth renders, and it notices what is wrong."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from imagineer.errors import InvalidInput, UnknownAttribute
from imagineer.pocket.analysis import analyze
from imagineer.pocket.judge import finding_from_scene, judge, judge_finding, sample_scene_for
from imagineer.pocket.render import render_scene
from imagineer.pocket.requirement import ObjectSpec, Relation, Requirement
from imagineer.pocket.world import Scene, SceneObject, load_world, sample_scene

N_SCENES = 200  # a few seconds; a 1000-scene run is the slow test below
ATTRIBUTES = ("count", "lighting", "style", "shape", "colour", "size", "position")


def _accuracy(n_scenes: int, seed: int) -> dict[str, float]:
    """Per-attribute accuracy of ``analyze`` on seeded random ground-truth renders."""
    world = load_world()
    rng = np.random.default_rng(seed)
    hits, totals = Counter[str](), Counter[str]()
    for i in range(n_scenes):
        scene = sample_scene(rng, world)
        finding = analyze(render_scene(scene, world, seed=i), world)
        verdict = judge_finding(finding, scene, world)
        for check in verdict.checks:
            name = (
                check.attribute.split(".")[-1]
                if check.attribute.startswith("object")
                else (check.attribute)
            )
            hits[name] += check.correct
            totals[name] += 1
    return {name: hits[name] / totals[name] for name in totals}


def _assert_accurate(accuracy: dict[str, float]) -> None:
    for name in (*ATTRIBUTES, "defect.blur", "defect.grain", "defect.low_contrast"):
        assert accuracy[name] >= 0.98, (name, accuracy)


def test_judge_is_at_least_98_percent_right_per_attribute_on_ground_truth() -> None:
    _assert_accurate(_accuracy(N_SCENES, seed=2024))


@pytest.mark.slow
def test_judge_accuracy_on_a_thousand_scenes() -> None:
    _assert_accurate(_accuracy(1000, seed=77))


def _scene() -> Scene:
    return Scene(
        objects=(
            SceneObject(shape="star", colour="red", size="small", position="left"),
            SceneObject(shape="heart", colour="blue", size="small", position="right"),
        ),
        lighting="night",
        style="flat",
    )


def test_a_true_requirement_passes_and_each_wrong_attribute_fails() -> None:
    image = render_scene(_scene())
    assert judge(image, _scene()).all_correct
    wrong = {
        "object0.colour": SceneObject(shape="star", colour="green", size="small", position="left"),
        "object0.shape": SceneObject(shape="cross", colour="red", size="small", position="left"),
        "object0.position": SceneObject(shape="star", colour="red", size="small", position="top"),
        "object0.size": SceneObject(shape="star", colour="red", size="large", position="left"),
    }
    for attribute, obj in wrong.items():
        requirement = Requirement.from_scene(_scene()).model_copy(
            update={"objects": (ObjectSpec(**obj.model_dump()), ObjectSpec(shape="heart"))}
        )
        verdict = judge(image, requirement)
        assert not verdict.all_correct
        assert [c.attribute for c in verdict.failed()] == [attribute]
        assert verdict.score == pytest.approx(1 - 1 / len(verdict.checks))


def test_partial_requirements_check_only_what_they_state() -> None:
    image = render_scene(_scene())
    assert judge(image, Requirement(objects=(ObjectSpec(colour="blue"),))).all_correct
    assert judge(image, Requirement(lighting="night", defects_absent=("blur",))).all_correct
    assert not judge(image, Requirement(count=3)).all_correct
    assert not judge(image, Requirement(style="pixel")).all_correct
    assert not judge(image, Requirement(defects_present=("grain",))).all_correct
    three = Requirement(objects=(ObjectSpec(shape="star"),) * 3)
    assert [c.attribute for c in judge(image, three).failed()] != []


def test_relations_compare_centres_and_order_does_not_matter() -> None:
    image = render_scene(_scene())
    star, heart = ObjectSpec(shape="star"), ObjectSpec(shape="heart")
    left_of = Relation(subject=0, relation="left_of", reference=1)
    assert judge(image, Requirement(objects=(star, heart), relations=(left_of,))).all_correct
    assert not judge(image, Requirement(objects=(heart, star), relations=(left_of,))).all_correct
    above = Relation(subject=0, relation="above", reference=1)
    assert not judge(image, Requirement(objects=(star, heart), relations=(above,))).all_correct


def test_analyze_takes_arrays_and_other_sizes() -> None:
    image = render_scene(_scene())
    expected = analyze(image)
    as_uint8 = analyze(np.asarray(image))
    as_float = analyze(np.asarray(image) / 255.0)
    bigger = analyze(image.resize((128, 128)))
    for finding in (as_uint8, as_float, bigger):
        assert finding.count == expected.count == 2
        assert [o.colour for o in finding.objects] == [o.colour for o in expected.objects]
    with pytest.raises(InvalidInput):
        analyze(np.zeros((8, 8, 4)))


def test_requirements_are_validated() -> None:
    with pytest.raises(UnknownAttribute, match="'octagon'"):
        judge_finding(
            finding_from_scene(_scene()), Requirement(objects=(ObjectSpec(shape="octagon"),))
        )
    with pytest.raises(InvalidInput):
        judge_finding(finding_from_scene(_scene()), Requirement(objects=(ObjectSpec(),), count=5))
    with pytest.raises(InvalidInput, match="both required and forbidden"):
        judge_finding(
            finding_from_scene(_scene()),
            Requirement(defects_present=("blur",), defects_absent=("blur",)),
        )


def test_sampled_scenes_satisfy_their_requirement() -> None:
    rng = np.random.default_rng(5)
    requirement = Requirement(
        objects=(ObjectSpec(shape="circle", colour="yellow"), ObjectSpec(shape="triangle")),
        relations=(Relation(subject=0, relation="left_of", reference=1),),
        style="pixel",
        defects_absent=("blur", "grain", "low_contrast"),
    )
    for _ in range(5):
        scene = sample_scene_for(requirement, rng)
        assert judge(render_scene(scene), requirement).all_correct
