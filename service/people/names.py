"""How people are named in emails and pages: one place, so nobody is greeted by an address.

A provider may send no name, an empty one, or the address itself as the name (Graph does
for people outside the tenant). None of those is a name: such a person is greeted with a
neutral "Hello," and referred to by their address, never by a word made from it.
"""

from __future__ import annotations

from typing import Protocol

MAX_NAME = 200  # Person.display_name's column size


class Named(Protocol):
    """Anything with a stored display name (a `Person`)."""

    display_name: str | None


def clean_name(raw: str | None) -> str | None:
    """A usable name from what a provider sent: trimmed, one space between words, or None
    when it is empty or an email address."""
    if not raw:
        return None
    name = " ".join(raw.split())
    if not name or "@" in name:
        return None
    return name[:MAX_NAME]


def better_name(current: str | None, candidate: str | None) -> str | None:
    """The name to keep: a stored real name stays, a real candidate fills a missing one.

    A stored name is never replaced by an empty one or an address, and never flips between
    two spellings that two calendars send for the same person.
    """
    return clean_name(current) or clean_name(candidate)


def display_name(person: Named | None) -> str | None:
    """The person's full name ("Maya Chen"), or None when no real name is known."""
    return clean_name(person.display_name) if person is not None else None


def first_name(name: str | None) -> str | None:
    """The word to greet with: "Maya" of "Maya Chen" (and of "Chen, Maya"), or None."""
    name = clean_name(name)
    if name is None:
        return None
    last, comma, given = name.partition(",")
    words = (given if comma and given.strip() else last).split()
    return words[0] if words else None


def greeting(name: str | None) -> str:
    """"Hello Maya," for a known full name, else the neutral "Hello,"."""
    first = first_name(name)
    return f"Hello {first}," if first else "Hello,"


def name_or_address(person: Named | None, address: str) -> str:
    """How to mention someone in a sentence: their name, else their address as it is."""
    return display_name(person) or address
