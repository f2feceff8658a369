"""What `diff` shows of a task-definition change: each path with both values, secrets hidden."""

from __future__ import annotations

from typing import Any

import pytest

from controller.model.taskdef_diff import (
    HIDDEN_VALUE,
    ChangeKind,
    FieldChange,
    changed_paths,
    field_changes,
    show_value,
)


def td(*containers: dict[str, Any], **task: Any) -> dict[str, Any]:
    """A task definition of family "f" with these containers and task fields."""
    return {"family": "f", "containerDefinitions": list(containers), **task}


def app(**fields: Any) -> dict[str, Any]:
    """A container named app running busybox:1.36, plus the given fields."""
    return {"name": "app", "image": "busybox:1.36", **fields}


def env(**values: str) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def test_a_changed_image_carries_both_values() -> None:
    changes = field_changes(td(app()), td(app(image="busybox:1.37")))
    assert changes == (
        FieldChange(
            "containerDefinitions[app].image", ChangeKind.CHANGED, "busybox:1.36", "busybox:1.37"
        ),
    )
    assert changes[0].line() == "containerDefinitions[app].image: busybox:1.36 -> busybox:1.37"
    assert changes[0].as_json() == {
        "path": "containerDefinitions[app].image",
        "change": "changed",
        "old": "busybox:1.36",
        "new": "busybox:1.37",
    }


def test_values_are_compared_in_canonical_form() -> None:
    # cpu 256 and "0.25 vCPU" are one value; essential: true is ECS's default.
    assert field_changes(td(app(), cpu=256), td(app(essential=True), cpu="0.25 vCPU")) == ()
    (cpu,) = field_changes(td(app(), cpu=256), td(app(), cpu="1 vCPU"))
    assert (cpu.path, cpu.old, cpu.new) == ("cpu", "256", "1024")


def test_added_and_removed_paths_have_one_side() -> None:
    old = td(app(environment=env(A="1", GONE="x")))
    new = td(app(environment=env(A="1", LOG_LEVEL="debug")), {"name": "side", "image": "envoy"})
    lines = [c.line() for c in field_changes(old, new)]
    assert lines == [
        'containerDefinitions[app].environment[GONE]: {"name": "GONE", "value": "x"} -> (none)',
        "containerDefinitions[app].environment[LOG_LEVEL]: (none) -> "
        '{"name": "LOG_LEVEL", "value": "debug"}',
        'containerDefinitions[side]: (none) -> {"essential": true, "image": "envoy",'
        ' "name": "side"}',
    ]
    kinds = [(c.kind, c.old is None, c.new is None) for c in field_changes(old, new)]
    assert kinds == [
        (ChangeKind.REMOVED, False, True),
        (ChangeKind.ADDED, True, False),
        (ChangeKind.ADDED, True, False),
    ]


@pytest.mark.parametrize(
    "name", ["DB_PASSWORD", "client_secret", "GitHubToken", "API_KEY", "keyring", "password"]
)
def test_environment_values_with_secret_looking_names_are_hidden(name: str) -> None:
    old = td(app(environment=env(**{name: "hunter2"})))
    new = td(app(environment=env(**{name: "correct-horse"})))
    (change,) = field_changes(old, new)
    assert change.hidden
    assert (change.old, change.new) == (None, None)
    assert (
        change.line() == f"containerDefinitions[app].environment[{name}].value: (changed, hidden)"
    )
    assert change.as_json() == {
        "path": f"containerDefinitions[app].environment[{name}].value",
        "change": "changed",
        "hidden": True,
    }


def test_other_environment_values_are_shown() -> None:
    # MONKEY contains KEY: hidden too (better one value too many hidden than one shown).
    old = td(app(environment=env(LOG_LEVEL="info", MONKEY="a")))
    new = td(app(environment=env(LOG_LEVEL="debug", MONKEY="b")))
    assert [c.line() for c in field_changes(old, new)] == [
        "containerDefinitions[app].environment[LOG_LEVEL].value: info -> debug",
        "containerDefinitions[app].environment[MONKEY].value: (changed, hidden)",
    ]


def test_an_added_or_removed_secret_variable_is_hidden_whole() -> None:
    old = td(app(environment=env(OLD_TOKEN="t")))
    new = td(app(environment=env(NEW_SECRET="s")))
    assert [c.line() for c in field_changes(old, new)] == [
        "containerDefinitions[app].environment[NEW_SECRET]: (added, hidden)",
        "containerDefinitions[app].environment[OLD_TOKEN]: (removed, hidden)",
    ]


def test_secrets_and_secret_options_are_always_hidden() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:1:secret:db"
    old = td(
        app(
            secrets=[{"name": "DB", "valueFrom": arn + "-a"}],
            logConfiguration={
                "logDriver": "splunk",
                "secretOptions": [{"name": "splunk-token", "valueFrom": arn}],
            },
        )
    )
    new = td(
        app(
            secrets=[{"name": "DB", "valueFrom": arn + "-b"}],
            logConfiguration={
                "logDriver": "splunk",
                "secretOptions": [{"name": "splunk-token", "valueFrom": arn + "2"}],
            },
        )
    )
    changes = field_changes(old, new)
    assert [c.path for c in changes] == [
        "containerDefinitions[app].logConfiguration.secretOptions[splunk-token].valueFrom",
        "containerDefinitions[app].secrets[DB].valueFrom",
    ]
    assert all(c.hidden for c in changes)


def test_free_map_keys_that_look_secret_are_hidden() -> None:
    old = td(app(dockerLabels={"team": "a", "deploy-token": "x"}))
    new = td(app(dockerLabels={"team": "b", "deploy-token": "y"}))
    assert [c.line() for c in field_changes(old, new)] == [
        "containerDefinitions[app].dockerLabels.deploy-token: (changed, hidden)",
        "containerDefinitions[app].dockerLabels.team: a -> b",
    ]


def test_a_container_named_like_a_secret_is_not_hidden() -> None:
    # Only the names of values count; a container's name is no value.
    old = td(app(), {"name": "token-service", "image": "a"})
    new = td(app(), {"name": "token-service", "image": "b"})
    assert [c.line() for c in field_changes(old, new)] == [
        "containerDefinitions[token-service].image: a -> b"
    ]


def test_a_structure_shown_whole_has_its_secrets_replaced_and_names_kept() -> None:
    side = {
        "name": "side",
        "image": "envoy",
        "environment": env(MODE="proxy", ADMIN_PASSWORD="hunter2"),
        "secrets": [{"name": "DB", "valueFrom": "arn:db"}],
        "dockerLabels": {"api-key": "k", "team": "t"},
    }
    (added,) = field_changes(td(app()), td(app(), side))
    assert not added.hidden
    assert added.new == {
        "dockerLabels": {"api-key": HIDDEN_VALUE, "team": "t"},
        "environment": [
            {"name": "ADMIN_PASSWORD", "value": HIDDEN_VALUE},
            {"name": "MODE", "value": "proxy"},
        ],
        "essential": True,
        "image": "envoy",
        "name": "side",
        "secrets": [{"name": "DB", "valueFrom": HIDDEN_VALUE}],
    }
    assert "hunter2" not in added.line()
    assert "arn:db" not in str(added.as_json())


def test_a_list_compared_whole_still_hides_its_secrets() -> None:
    # Two entries of one name: no identity, so the list is one path.
    old = td(app(environment=env(A="1") + env(A="2") + env(API_KEY="k1")))
    new = td(app(environment=env(A="1") + env(A="3") + env(API_KEY="k2")))
    (change,) = field_changes(old, new)
    assert change.path == "containerDefinitions[app].environment"
    assert "k1" not in change.line()
    assert "k2" not in change.line()
    assert {"name": "API_KEY", "value": HIDDEN_VALUE} in change.new


def test_order_significant_lists_show_whole_values() -> None:
    (change,) = field_changes(td(app(command=["a", "b"])), td(app(command=["b", "a"])))
    assert change.line() == 'containerDefinitions[app].command: ["a", "b"] -> ["b", "a"]'


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("busybox:1.37", "busybox:1.37"),
        ("256", "256"),
        ("", '""'),
        (" padded", '" padded"'),
        ("a -> b", '"a -> b"'),
        ("two\nlines", '"two\\nlines"'),
        ("(none)", '"(none)"'),
        (None, "(none)"),
        (True, "true"),
        (30, "30"),
        ({"b": 1}, '{"b": 1}'),
    ],
)
def test_values_read_unambiguously(value: Any, shown: str) -> None:
    assert show_value(value) == shown


def test_changed_paths_summarises_the_changes() -> None:
    old = td(app(environment=env(**{f"V{i:02}": "1" for i in range(30)})))
    new = td(app(environment=env(**{f"V{i:02}": "2" for i in range(30)})))
    assert len(field_changes(old, new)) == 30
    paths = changed_paths(old, new)
    assert len(paths) == 10
    assert paths[-1] == "... and 21 more"
