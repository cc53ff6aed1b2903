"""Beyond the page — two stacks on one cluster: a second team (or staging beside production)
follows the same page in another namespace. Two claims a user of one cluster relies on:

- the page's own install command gives the second stack (`helm install vllm …` in its namespace);
- the run's trigger query reads only its own stack while the other one queues — so neither stack's
  load scales the other.

What the page deploys (docs/upstream-defects.md, defects 8 and 9): the current edition's subchart
names cluster-scoped objects after the release, so the second `helm install vllm` is refused; and
the page's queries select no namespace, while both editions' Prometheus sees every namespace's
engines. The harness's fix of defect 9 (the run's namespace selected in the query) is asserted too:
it is what the scenarios beyond the page and `make test`'s concurrent runs rely on."""

from __future__ import annotations

import pytest

from vllm_stack_e2e.context import Stack
from vllm_stack_e2e.observed import assert_reached, requires
from vllm_stack_e2e.steps import beyond

pytestmark = [pytest.mark.e2e, pytest.mark.beyond]


@pytest.fixture(scope="module")
def stacks(keda_enabled: Stack) -> beyond.TwoStacks:
    return beyond.two_stacks(keda_enabled)


@pytest.mark.upstream_defect(8)
def test_a_second_stack_of_the_page_installs_beside_the_first(stacks: beyond.TwoStacks) -> None:
    assert not stacks.same_name, f"`helm install` of the page's release in {stacks.namespace}: {stacks.same_name}"


def test_the_second_stack_queues(stacks: beyond.TwoStacks) -> None:
    """The premise of the claims below: the other stack's queue is above the threshold."""
    assert_reached(stacks.not_run or stacks.queued, "the second stack's queue")


@pytest.mark.upstream_defect(9)
def test_the_pages_query_reads_only_its_own_stack(stacks: beyond.TwoStacks, keda_enabled: Stack) -> None:
    requires(stacks.not_run or stacks.queued)
    foreign = stacks.foreign(stacks.read, keda_enabled.namespace)
    assert not foreign and all(v == 0 for _, v in stacks.read), \
        (f"with the run idle and the stack in {stacks.namespace} queueing, the run's trigger query "
         f"{stacks.page_query!r} returned {stacks.read}")


def test_with_its_namespace_selected_the_query_reads_only_its_own_stack(stacks: beyond.TwoStacks,
                                                                       keda_enabled: Stack) -> None:
    requires(stacks.not_run or stacks.queued)
    assert not stacks.foreign(stacks.scoped_read, keda_enabled.namespace) and \
        all(v == 0 for _, v in stacks.scoped_read), \
        f"{stacks.scoped_query!r} returned {stacks.scoped_read} with the run idle"
