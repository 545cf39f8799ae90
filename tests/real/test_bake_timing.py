"""The time breakdown of a bake on a real builder: AWS's steps and the recipe's own pulls.

The package's bake (conftest.py: three images on a Debian base without Docker) reports it under
`timing` in `ensure --json`; its parts must each appear and fit inside the execution's span.
"""

from __future__ import annotations

from typing import Any

SLACK = 0.05  # seconds of rounding in the reported figures


def test_every_phase_of_the_bake_is_timed_in_order(baked: dict[str, Any]) -> None:
    timing = baked["result"]["timing"]
    assert [phase["name"] for phase in timing["phases"]] == [
        "launch", "online", "recipe", "stop", "image",
    ]  # fmt: skip
    assert all(step["status"] == "Success" for step in timing["steps"])
    assert all(phase["seconds"] > 0 for phase in timing["phases"])


def test_the_steps_run_one_after_another_inside_the_execution(baked: dict[str, Any]) -> None:
    timing = baked["result"]["timing"]
    span = timing["seconds"]
    previous_end = 0.0
    for step in timing["steps"]:
        assert step["offset"] >= previous_end - SLACK, step
        previous_end = step["offset"] + step["seconds"]
        assert previous_end <= span + SLACK, step
    assert sum(step["seconds"] for step in timing["steps"]) <= span + SLACK


def test_each_image_pull_is_timed_inside_the_recipe(baked: dict[str, Any]) -> None:
    timing = baked["result"]["timing"]
    recipe = next(p["seconds"] for p in timing["phases"] if p["name"] == "recipe")
    pulls = {pull["image"]: pull["seconds"] for pull in timing["pulls"]}
    assert sorted(pulls) == baked["result"]["images"]
    # The pulls run side by side, after Docker's install, all within the recipe's step.
    (install,) = timing["installs"]
    assert install["name"] == "docker"
    assert max(pulls.values()) <= timing["pulls_seconds"] + SLACK
    assert 0 < install["seconds"] + timing["pulls_seconds"] <= recipe + SLACK
