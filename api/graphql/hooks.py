"""Strawberry's extension runner with each extension class's hooks looked up once.

Strawberry's lifecycle context managers inspect every extension for every stage of every
operation (is the hook overridden? a generator? async?) and wrap each hook it finds with
`contextlib.contextmanager`, which copies the function's metadata each time: about a fifth of
a small operation's CPU. Here that inspection is done once per extension class and stage; the
hooks then run exactly as Strawberry runs them (the same context managers, in the same order).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from functools import partial

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner

# How to wrap one extension's hook for one stage, by extension class and stage name.
_Wrap = Callable[[SchemaExtension], WrappedHook | None]
_WRAPPERS: dict[tuple[type[SchemaExtension], str], _Wrap | None] = {}


def _wrapper(stage: ExtensionContextManagerBase, kind: type[SchemaExtension]) -> _Wrap | None:
    hook = getattr(kind, stage.HOOK_NAME)
    if hook is getattr(SchemaExtension, stage.HOOK_NAME):
        return None
    if inspect.isgeneratorfunction(hook):
        sync = contextlib.contextmanager(hook)
        return lambda extension: WrappedHook(extension, partial(sync, extension), False)
    if inspect.isasyncgenfunction(hook):
        asynchronous = contextlib.asynccontextmanager(hook)
        return lambda extension: WrappedHook(extension, partial(asynchronous, extension), True)
    # A plain function (rare): Strawberry wraps it, per operation, as it always does.
    return stage.get_hook


def _collect(stage: ExtensionContextManagerBase, extensions: list[SchemaExtension]) -> None:
    stage.default_hook = getattr(SchemaExtension, stage.HOOK_NAME)
    stage.hooks = []
    for extension in extensions:
        key = (type(extension), stage.HOOK_NAME)
        try:
            wrap = _WRAPPERS[key]
        except KeyError:
            wrap = _WRAPPERS[key] = _wrapper(stage, type(extension))
        if wrap is not None and (hook := wrap(extension)) is not None:
            stage.hooks.append(hook)


class _Operation(OperationContextManager):
    def __init__(self, extensions: list[SchemaExtension]) -> None:
        _collect(self, extensions)


class _Validation(ValidationContextManager):
    def __init__(self, extensions: list[SchemaExtension]) -> None:
        _collect(self, extensions)


class _Parsing(ParsingContextManager):
    def __init__(self, extensions: list[SchemaExtension]) -> None:
        _collect(self, extensions)


class _Executing(ExecutingContextManager):
    def __init__(self, extensions: list[SchemaExtension]) -> None:
        _collect(self, extensions)


class ExtensionsRunner(SchemaExtensionsRunner):
    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions)
