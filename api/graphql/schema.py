"""The schema and its protections."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import strawberry
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from api.graphql.errors import should_mask
from api.graphql.resolvers import Mutation, Query
from api.graphql.scalars import SCALAR_MAP

# Bounded caches: unique query texts cannot grow memory without limit.
CACHE_SIZE = 256


def build_schema(
    *,
    introspection: bool = True,
    field_suggestions: bool = True,
    max_depth: int = 10,
    max_aliases: int = 15,
    max_tokens: int = 2000,
) -> strawberry.Schema:
    # Factories: Strawberry builds fresh extension instances per request; the parser and
    # validation caches live at module level and are shared across requests.
    extensions: list[Callable[[], SchemaExtension]] = [
        partial(MaxTokensLimiter, max_token_count=max_tokens),
        partial(QueryDepthLimiter, max_depth=max_depth),
        partial(MaxAliasesLimiter, max_alias_count=max_aliases),
        partial(ParserCache, maxsize=CACHE_SIZE),
        partial(ValidationCache, maxsize=CACHE_SIZE),
        partial(MaskErrors, should_mask_error=should_mask),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(
            disable_field_suggestions=not field_suggestions, scalar_map=SCALAR_MAP
        ),
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
