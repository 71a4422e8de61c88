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
from types import TracebackType

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


class _Lean(ExtensionContextManagerBase):
    """A stage with no hook, or one synchronous hook, entered without an exit stack (most
    operations: Amend's one extension has one hook per stage, some stages none); more hooks
    go through Strawberry's own stack. Either way each hook is the same context manager,
    entered and left in the same order."""

    _single: contextlib.AbstractContextManager[object] | None = None

    def __init__(self, extensions: list[SchemaExtension]) -> None:
        _collect(self, extensions)

    async def __aenter__(self) -> None:
        hooks = self.hooks
        if not hooks:
            return
        if len(hooks) == 1 and not hooks[0].is_async:
            single: contextlib.AbstractContextManager[object] = hooks[0].hook()  # type: ignore[assignment]
            single.__enter__()
            self._single = single
            return
        await super().__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        hooks = self.hooks
        if not hooks:
            return
        single = self._single
        if single is not None:
            self._single = None
            # As in Strawberry's stack, what the hook returns does not suppress anything.
            single.__exit__(exc_type, exc_val, exc_tb)
            return
        await super().__aexit__(exc_type, exc_val, exc_tb)


class _Operation(_Lean, OperationContextManager):
    pass


class _Validation(_Lean, ValidationContextManager):
    pass


class _Parsing(_Lean, ParsingContextManager):
    pass


class _Executing(_Lean, ExecutingContextManager):
    pass


class ExtensionsRunner(SchemaExtensionsRunner):
    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions)
