"""A local AWS for the demo and the end-to-end tests (DESIGN.md §11).

moto's server plus small, documented patches that make its ECS and Auto
Scaling behave like the real services where our tests depend on it, and a
simulated ECS agent driven by an injected clock. Only this package may use
moto's internals; the product never imports it.
"""

from controller.sandbox.server import Sandbox

__all__ = ["Sandbox"]
