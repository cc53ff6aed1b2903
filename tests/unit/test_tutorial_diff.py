"""The drift check, on pages written here in the shape of the production stack's .rst
(tests/unit/data/tutorial/): each pinned edition reads as no drift against itself, a drifted page
names each change once, and the two editions against each other show what the rewrite changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllm_stack_e2e import editions, tutorial_diff
from vllm_stack_e2e.errors import ConfigError

PAGES = Path(__file__).parent / "data" / "tutorial"


def page(name: str) -> str:
    return (PAGES / name).read_text()


@pytest.mark.parametrize(("name", "edition"), [("first-edition.rst", "observability-script"),
                                               ("current-edition.rst", "integrated-monitoring")])
def test_each_pinned_edition_reads_as_no_drift_and_is_guessed(name: str, edition: str) -> None:
    guessed, why = tutorial_diff.guess(page(name))
    assert guessed.name == edition, why
    assert tutorial_diff.drift(page(name), guessed) == []


def test_a_drifted_page_names_each_change() -> None:
    problems = tutorial_diff.drift(page("drifted-current-edition.rst"), editions.get("integrated-monitoring"))
    assert problems == [
        "step4 values (4. Turn KEDA on for the model): servingEngineSpec.modelSpec[0].keda.triggers[0].metadata"
        ".threshold is '10' on the page, '5' pinned",
        "command under '5. Look at the ScaledObject and the HPA' is new: `kubectl apply -f keda-auth.yaml`",
        "keda-namespace: the page gives `kubectl create namespace keda-system`, pinned `kubectl create namespace keda`",
        "keda-install: the page gives `helm install keda kedacore/keda --namespace keda --version 2.21.0`, "
        "pinned `helm install keda kedacore/keda --namespace keda`",
    ]


def test_the_two_editions_against_each_other_show_the_rewrite() -> None:
    problems = tutorial_diff.drift(page("current-edition.rst"), editions.get("observability-script"))
    text = "\n".join(problems)
    assert "step2 values (2. Install vLLM): the page adds kube-prometheus-stack.enabled = True" in text
    assert ("keda.triggers[0].metadata.serverAddress is 'http://vllm-kube-prometheus-stack-prometheus:9090' on the "
            "page, 'http://prometheus-operated.monitoring.svc:9090' pinned") in text
    assert "observability-install: the page no longer gives `bash install.sh`" in text
    assert "prometheus-port-forward: the page gives `kubectl port-forward svc/vllm-kube-prometheus-stack-prometheus" in text


def test_the_command_line_exits_1_on_drift_0_without_and_2_on_an_unreadable_page(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert tutorial_diff.main([str(PAGES / "first-edition.rst")]) == 0
    assert tutorial_diff.main([str(PAGES / "drifted-current-edition.rst")]) == 1
    out = capsys.readouterr().out
    assert "no drift" in out and "4 difference(s)" in out
    assert tutorial_diff.main([str(PAGES / "missing.rst")]) == 2
    assert "error:" in capsys.readouterr().err
    assert tutorial_diff.main([str(PAGES / "first-edition.rst"), "--edition", "third"]) == 2


def test_blocks_keep_their_heading_and_join_continued_commands() -> None:
    rst = ("Title\n=====\n\nStep one\n~~~~~~~~\n\n.. code-block:: bash\n\n   helm upgrade vllm vllm/vllm-stack \\\n"
           "     -f values.yaml\n\nText after.\n")
    blocks = tutorial_diff.read_blocks(rst)
    assert [(b.language, b.heading) for b in blocks] == [("bash", "Step one")]
    assert tutorial_diff.commands(blocks) == [("Step one", "helm upgrade vllm vllm/vllm-stack -f values.yaml")]


def test_an_edition_is_chosen_from_the_chart_and_says_why() -> None:
    """Chart 0.1.11+ (the lab's stand-in 0.1.12-standin.N included) follows the current edition;
    older charts the first; an edition asked for wins; an unknown one is refused in one line."""
    chosen = editions.choose(None, "0.1.12", stand_in=False)
    assert chosen.name == "integrated-monitoring" and chosen.why.startswith(
        "chart 0.1.12 ≥ 0.1.11: the page users read today; the repository's tutorials/20-keda-autoscaling.md"), chosen.why
    assert "teaches the observability-script edition" in chosen.why, chosen.why
    first = editions.choose(None, "0.1.10", stand_in=False)
    assert first.name == "observability-script" and first.why.startswith(
        "chart 0.1.10 < 0.1.11: the page as first published; the docs site's page"), first.why
    stand_in = editions.choose(None, "0.1.12-standin.1", stand_in=True)
    assert stand_in.name == "integrated-monitoring", stand_in.why
    assert editions.choose("observability-script", "0.1.12", stand_in=False).why == "asked for (EDITION)"
    with pytest.raises(ConfigError, match="EDITION='third' is not a published edition"):
        editions.choose("third", "0.1.12")

def test_the_bundled_prometheus_follows_the_26_character_fullname() -> None:
    current = editions.get("integrated-monitoring")
    assert current.prometheus("vllm", "ns") == ("ns", "vllm-kube-prometheus-stack-prometheus")
    assert current.prometheus("production", "ns") == ("ns", "production-kube-prometheus-prometheus")
    assert editions.get("observability-script").prometheus("vllm", "ns") == ("monitoring", "prometheus-operated")


def test_the_step1_snippet_is_checked_against_the_pinned_step2_values() -> None:
    """The current page's step 1 is a snippet of keys to add; each must be in the pinned step-2
    values with the same value."""
    page_text = page("current-edition.rst").replace(
        "   routerSpec:\n     serviceMonitor:\n       enabled: true\n\n   kube-prometheus-stack:",
        "   routerSpec:\n     serviceMonitor:\n       enabled: false\n\n   kube-prometheus-stack:", 1)
    problems = tutorial_diff.drift(page_text, editions.get("integrated-monitoring"))
    assert problems == ["step1 snippet (1. Turn on the bundled monitoring): routerSpec.serviceMonitor.enabled is "
                        "False on the page, True in the pinned step-2 values"], problems


def _as_markdown(rst: str) -> str:
    """The same page as the repository's tutorials/*.md would write it: ATX headings, fenced blocks."""
    out = []
    for block in tutorial_diff.read_rst_blocks(rst):
        out += [f"## {block.heading}", "", "Some prose.", "", f"```{block.language}", block.text.rstrip("\n"), "```", ""]
    return "\n".join(out)


@pytest.mark.parametrize(("name", "edition"), [("first-edition.rst", "observability-script"),
                                               ("current-edition.rst", "integrated-monitoring")])
def test_a_markdown_page_is_read_like_its_restructuredtext_twin(name: str, edition: str) -> None:
    """Upstream publishes the page twice: the docs site's .rst and the repository's
    tutorials/20-keda-autoscaling.md. Read as Markdown, the same content shows the same blocks
    under the same headings, the same edition, and no drift."""
    markdown = _as_markdown(page(name))
    assert tutorial_diff.is_markdown(markdown) and not tutorial_diff.is_markdown(page(name))
    assert [(b.language, b.heading, b.text) for b in tutorial_diff.read_blocks(markdown)] == \
        [(b.language, b.heading, b.text) for b in tutorial_diff.read_blocks(page(name))]
    guessed, why = tutorial_diff.guess(markdown)
    assert guessed.name == edition, why
    assert tutorial_diff.drift(markdown, guessed) == []


def test_a_quoted_body_over_several_lines_is_one_command() -> None:
    markdown = ("### 7. Scale down to zero\n\n```bash\ncurl -X POST http://localhost:30080/v1/completions \\\n"
                "  -H \"Content-Type: application/json\" \\\n  -d '{\n    \"model\": \"m\",\n    \"max_tokens\": 10\n  }'\n"
                "kubectl get hpa\n```\n")
    found = tutorial_diff.commands(tutorial_diff.read_blocks(markdown))
    assert [c for _h, c in found] == [
        "curl -X POST http://localhost:30080/v1/completions -H \"Content-Type: application/json\" -d '{ \"model\": "
        "\"m\", \"max_tokens\": 10 }'", "kubectl get hpa"], found
    assert {h for h, _c in found} == {"7. Scale down to zero"}


def test_the_first_editions_script_decides_the_guess_not_the_name_kube_prometheus_stack() -> None:
    """observability/install.sh installs kube-prometheus-stack too: a first-edition page that names it
    is still the first edition."""
    text = page("first-edition.rst") + "\nThe script installs kube-prometheus-stack and prometheus-adapter.\n"
    assert tutorial_diff.guess(text)[0].name == "observability-script"


def test_the_existing_stacks_prometheus_follows_the_charts_fullname_rule() -> None:
    """A release whose name contains the chart's is the fullname itself (kube-prometheus-stack's rule,
    and the stand-in's kps.fullname): release kube-prometheus-stack → Service
    kube-prometheus-stack-prometheus, which the lab's stand-in renders."""
    existing = editions.get("existing-prometheus")
    assert existing.prometheus("vllm", "ns") == ("prometheus", "kube-prometheus-stack-prometheus")
    assert editions.kps_fullname("vllm") == "vllm-kube-prometheus-stack"
