"""Label selectors in their string form, as the router's --k8s-label-selector and `kubectl -l`
take them (Kubernetes' grammar, set-based requirements included)."""

import pytest

from vllm_stack_e2e import labelselector

ENGINE = {"app.kubernetes.io/component": "serving-engine", "environment": "test", "release": "test", "model": "llama3"}


@pytest.mark.parametrize(("selector", "expected"), [
    ("environment=test,release=test", True),
    ("environment==test", True),
    ("environment=test, release=test", True),
    ("environment=test,release=prod", False),
    ("environment!=prod", True),
    ("environment!=test", False),
    ("tier!=gpu", True),  # != also selects objects without the key
    ("environment in (test,canary)", True),
    ("environment in (prod, canary)", False),
    ("environment notin (prod)", True),
    ("tier notin (gpu)", True),
    ("model", True),
    ("!model", False),
    ("!tier", True),
    ("environment in (test),release=test,!tier", True),
    ("model=llama3,app.kubernetes.io/component=serving-engine", True),
    ("", True),  # the empty selector selects everything (the router's default)
])
def test_string_selectors(selector: str, expected: bool) -> None:
    assert labelselector.matches(selector, ENGINE) is expected


def test_a_map_selector_needs_every_pair() -> None:
    assert labelselector.matches({"environment": "test"}, ENGINE)
    assert not labelselector.matches({"environment": "test", "tier": "gpu"}, ENGINE)
    assert labelselector.matches({}, ENGINE)


@pytest.mark.parametrize("bad", ["environment in test", "=test", "a=b=c", "environment in (test"])
def test_a_selector_that_is_not_one_is_refused_with_the_part_named(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot parse"):
        labelselector.parse(bad)
