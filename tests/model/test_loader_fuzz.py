"""Arbitrary input never makes the loader raise: every problem is a ManifestError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.model.loader import ManifestLoader, parse_file
from controller.model.manifest import API_VERSION
from controller.schemas import validators

YAML_PIECES = st.sampled_from(
    [
        "apiVersion: ecs-job-controller/v1\n",
        "apiVersion: ecs-job-controler/v1\n",
        "kind: [JobRun]\n",
        "kind: JobRun\n",
        "kind: CronJob\n",
        "kind: Nope\n",
        "metadata: {name: x}\n",
        "metadata:\n  name: [1, 2]\n",
        "spec:\n  cluster: c\n",
        "spec: null\n",
        "  taskDefinition: {family: f, containerDefinitions: [{name: a, image: b}]}\n",
        "  schedule: '61 * * * *'\n",
        "  runId: 1\n",
        "---\n",
        "a: &x [1, 2]\nb: *x\n",
        "c: *undefined\n",
        "- item\n",
        "key: 'unterminated\n",
        "\t\tbad indent: :\n",
        "!!python/object:os.system 'ls'\n",
        "? complex\n: key\n",
        "dup: 1\ndup: 2\n",
        "%YAML 1.1\n---\n",
        "\x00\x01binary",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(YAML_PIECES, max_size=12))
def test_yaml_like_input_never_raises(pieces: list[str]) -> None:
    result = parse_file("f.yaml", "".join(pieces).encode(), validators())
    assert all(e.path == "f.yaml" and e.line >= 1 for e in result.errors)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    result = ManifestLoader(validators()).load({"x.yaml": data, "y.yml": API_VERSION.encode()})
    assert all(e.line >= 1 for e in result.errors)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    parse_file("t.yaml", text.encode("utf-8", "surrogatepass"), validators())
