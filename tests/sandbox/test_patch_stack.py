"""PatchStack: every patch is undone, in reverse order, leaving moto as it was."""

from __future__ import annotations

from controller.sandbox.patches import PatchStack


class Base:
    def greet(self) -> str:
        return "base"


class Child(Base):
    def wave(self) -> str:
        return "child"


def test_class_attributes_are_restored_and_inherited_ones_unshadowed() -> None:
    stack = PatchStack()
    original_wave = Child.wave
    stack.replace(Child, "wave", lambda self: "patched")
    stack.replace(Child, "greet", lambda self: "patched")  # inherited from Base
    assert (Child().wave(), Child().greet()) == ("patched", "patched")
    stack.uninstall_all()
    assert Child.wave is original_wave
    assert "greet" not in vars(Child)
    assert Child().greet() == "base"
    assert len(stack) == 0


def test_wrappers_stack_and_unwind_newest_first() -> None:
    target = Child()
    stack = PatchStack()
    stack.wrap(target, "wave", lambda inner: lambda: f"outer({inner()})")
    stack.wrap(target, "wave", lambda inner: lambda: f"outermost({inner()})")
    assert target.wave() == "outermost(outer(child))"
    stack.uninstall_all()
    assert "wave" not in vars(target)
    assert target.wave() == "child"


def test_an_instance_wiped_meanwhile_is_no_error() -> None:
    target = Child()
    stack = PatchStack()
    stack.replace(target, "wave", lambda: "patched")
    vars(target).clear()  # what a moto backend reset does to its instance
    stack.uninstall_all()
    assert target.wave() == "child"
