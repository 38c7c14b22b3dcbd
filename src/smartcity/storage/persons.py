"""Registered vulnerable persons (children, people with dementia) and their wearables, in SQL.

Personal data, kept to what an SOS needs: a display alias (e.g. 김○○), the kind of person, an
optional birth year and description (clothing, height) for the police, the wearable's entity id
and one guardian's name and phone number. The operations service decides who may read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from smartcity.core.errors import AlreadyExists
from smartcity.storage.sqlbase import SqlEntityStore

DDL: Final = """
CREATE TABLE IF NOT EXISTS vulnerable_persons (
    tenant {text} NOT NULL,
    id {text} NOT NULL,
    kind TEXT NOT NULL,
    alias TEXT NOT NULL,
    birth_year INTEGER,
    description TEXT NOT NULL,
    wearable {text} NOT NULL,
    guardian_name TEXT NOT NULL,
    guardian_phone TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS vulnerable_persons_wearable
    ON vulnerable_persons (tenant, wearable)
"""
_LOCK: Final = 0x736D6F7073  # the incident tables' lock ("smops")
COLUMNS: Final = (
    "tenant, id, kind, alias, birth_year, description, wearable, guardian_name, "
    "guardian_phone, registered_by, registered_at"
)


@dataclass(frozen=True, slots=True)
class VulnerablePerson:
    """One registered person and the wearable that calls for them."""

    tenant: str
    id: str
    kind: str
    """child or dementia."""
    alias: str
    birth_year: int | None
    description: str
    wearable: str
    """The entity id of the wearable (its location history is the trail)."""
    guardian_name: str
    guardian_phone: str
    registered_by: str
    registered_at: str


def _person(row: Sequence[Any]) -> VulnerablePerson:
    values = list(row)
    values[4] = None if values[4] is None else int(values[4])
    return VulnerablePerson(*values)


class SqlPersonStore:
    """Vulnerable persons on the platform's SQL database."""

    def __init__(self, store: SqlEntityStore) -> None:
        self._store = store
        self._p = store.dialect.placeholder
        postgres = store.dialect.name == "postgresql"
        text = 'TEXT COLLATE "C"' if postgres else "TEXT"
        with store.writing() as cursor:
            if postgres:  # several processes starting at once create the table once
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
            for statement in DDL.format(text=text).split(";"):
                cursor.execute(statement)

    def add(self, person: VulnerablePerson) -> None:
        """Register a person; AlreadyExists if the wearable is another's."""
        if self.by_wearable(person.tenant, person.wearable) is not None:
            raise AlreadyExists(f"wearable {person.wearable} is registered to someone already")
        marks = ", ".join([self._p] * 11)
        with self._store.writing() as cursor:
            cursor.execute(
                f"INSERT INTO vulnerable_persons ({COLUMNS}) VALUES ({marks})",
                [
                    person.tenant,
                    person.id,
                    person.kind,
                    person.alias,
                    person.birth_year,
                    person.description,
                    person.wearable,
                    person.guardian_name,
                    person.guardian_phone,
                    person.registered_by,
                    person.registered_at,
                ],
            )

    def _select(self, condition: str, params: list[Any]) -> list[VulnerablePerson]:
        with self._store.reading() as cursor:
            cursor.execute(
                f"SELECT {COLUMNS} FROM vulnerable_persons WHERE {condition} ORDER BY id", params
            )
            return [_person(row) for row in cursor.fetchall()]

    def get(self, tenant: str, person_id: str) -> VulnerablePerson | None:
        """Return one person of a tenant."""
        p = self._p
        found = self._select(f"tenant = {p} AND id = {p}", [tenant, person_id])
        return found[0] if found else None

    def by_wearable(self, tenant: str, wearable: str) -> VulnerablePerson | None:
        """Return the person a wearable belongs to."""
        p = self._p
        found = self._select(f"tenant = {p} AND wearable = {p}", [tenant, wearable])
        return found[0] if found else None

    def all(self, tenant: str) -> list[VulnerablePerson]:
        """Return a tenant's persons, by id."""
        return self._select(f"tenant = {self._p}", [tenant])

    def delete(self, tenant: str, person_id: str) -> bool:
        """Remove a person (and so their data); tell whether there was one."""
        p = self._p
        with self._store.writing() as cursor:
            cursor.execute(
                f"DELETE FROM vulnerable_persons WHERE tenant = {p} AND id = {p}",
                [tenant, person_id],
            )
            return bool(cursor.rowcount)
