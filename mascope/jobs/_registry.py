"""Work registered by name, rebuilt in any process from the job's stored configuration.

A job stores its kind (`judge`, `attribute`, `run-task`) and a JSON
configuration; a worker anywhere looks the kind up here and builds the work
from the configuration, so no closure is ever shipped between processes.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mascope.errors import ConfigError

from ._executor import Prefetch, Work

if TYPE_CHECKING:
    from mascope.traces import TraceStore


async def _nothing() -> None:
    return None


@dataclass
class BuiltWork:
    """A job's work as one process runs it, and what to close when done."""

    work: Work
    aclose: Callable[[], Awaitable[None]] = _nothing
    prefetch: Prefetch | None = None
    """Called with each batch of claimed items before their work starts, in a
    worker thread: read what they need in one query instead of one per item."""


WorkFactory = Callable[..., BuiltWork]
"""`factory(store, config, **local)`: the work built from its stored configuration;
`local` holds in-process extras (a model object, progress callbacks) that never
leave this process."""


_REGISTRY: dict[str, WorkFactory] = {}

_BUILT_IN = {
    "judge": "mascope.diagnosis._batch",
    "attribute": "mascope.diagnosis._batch",
    "run-task": "mascope.evals._tasks",
}
"""Where mascope's own kinds register themselves (imported on first use)."""


def register_work(name: str) -> Callable[[WorkFactory], WorkFactory]:
    """Register a work factory under `name` (a decorator). Name your own work
    `package.module:name` after the module that registers it: a worker in another
    process then imports that module to find it."""

    def add(factory: WorkFactory) -> WorkFactory:
        _REGISTRY[name] = factory
        return factory

    return add


def work_factory(name: str) -> WorkFactory:
    """The factory registered under `name`."""
    if name not in _REGISTRY and name in _BUILT_IN:
        importlib.import_module(_BUILT_IN[name])
    elif name not in _REGISTRY and ":" in name:
        # `package.module:name`: work of the user's own, registered when its module is imported.
        try:
            importlib.import_module(name.split(":", 1)[0])
        except ImportError as exc:
            raise ConfigError(f"cannot import the module of work {name!r}: {exc}") from None
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted({*_REGISTRY, *_BUILT_IN}))
        raise ConfigError(
            f"no work registered as {name!r} (known: {known}); register it with "
            "mascope.jobs.register_work in a module the worker imports"
        ) from None


def build_work(name: str, store: TraceStore, config: dict[str, Any], **local: Any) -> BuiltWork:
    """The work of kind `name` built from `config`."""
    return work_factory(name)(store, config, **local)
