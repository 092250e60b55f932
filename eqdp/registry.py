"""A tiny name -> object registry shared by models and benchmarks (timm-style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from eqdp.errors import unknown_choice

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def alias(self, name: str, target: str) -> None:
        """``name`` is another name of ``target``; ``canonical`` maps it back."""
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._aliases[name] = target

    def canonical(self, name: str) -> str:
        return self._aliases.get(name, name)

    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def get(self, name: str) -> T:
        try:
            return self._entries[self.canonical(name)]
        except KeyError:
            raise unknown_choice(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def names_in_order(self) -> list[str]:
        """Names in the order they were registered."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def decorator(self, name: str, make_entry: Callable[[Callable], T]) -> Callable:
        def register(fn: Callable) -> Callable:
            self.add(name, make_entry(fn))
            return fn

        return register
