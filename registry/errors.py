"""Errors a user can act on. The CLI prints them as one line; pages show them as messages."""

from __future__ import annotations


class RegistryError(Exception):
    """Input or state the registry refuses, with a message written for the person who sent it."""


class NotFoundError(RegistryError):
    """Something named does not exist."""


class PermissionDenied(RegistryError):
    """The signed-in user's role does not allow this action."""


class ConflictError(RegistryError):
    """The data changed since it was read, or a unique name is already taken."""
