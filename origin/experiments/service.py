"""The experiment operations the admin API offers, each one atomic transaction.

create (always a draft), update (If-Match version), start / pause / stop, explicit publish,
rollback to an earlier configuration, preview links and preview-token rotation. Every change
is validated against the slot catalog, the stored segments, the template directory and the
other experiments (namespaces, shared variant ids), recorded in the audit log with the changed
fields, and, when the experiment is or was published (not a draft), publishes a new immutable
configuration version in the same transaction, after the bundles it needs were built.

Lifecycle: draft -> running (start) <-> paused (pause / start) -> stopped (stop; final: a
stopped experiment sends everyone to control at once and is never restarted, so its results
stay interpretable; copy it to a new key instead). It never performs HTTP; routes call it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from fragments.experiment_validation import validate
from fragments.experiments import EMPTY_CONFIG, EdgeExperimentConfig, Experiment, ExperimentInvalid
from fragments.preview_tokens import PreviewGrant, sign_preview
from fragments.slots import SlotCatalog
from origin.core.config_store import PublishedVersion
from origin.core.store import Store
from origin.experiments.audit import AuditEntry, diff
from origin.experiments.errors import (
    ConfigVersionNotFound,
    ExperimentExists,
    ExperimentNotFound,
    TransitionNotAllowed,
    VersionMismatch,
)
from origin.experiments.principal import Principal
from origin.experiments.publishing import Publisher, build_config, preview_hash
from origin.experiments.store import Commit, ExperimentStore, Snapshot
from origin.experiments.templates import TemplateCheck

Action = Literal["start", "pause", "stop"]
ACTIONS: tuple[Action, ...] = ("start", "pause", "stop")
TRANSITIONS: Mapping[str, Mapping[str, str]] = {
    "start": {"draft": "running", "paused": "running"},
    "pause": {"running": "paused"},
    "stop": {"running": "stopped", "paused": "stopped"},
}
RESERVED_KEYS = frozenset({"publish"})
"""Keys that would collide with the API's own paths under /v1/experiments/."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A changed experiment and the configuration version published with it (if any)."""

    experiment: Experiment
    config_version: int | None


PREVIEW_TTL_S = 3600
"""How long a preview token forces its variant (the admin may choose less)."""
PREVIEW_CODE_TTL_S = 900
"""How long a one-time preview link can be exchanged for the preview cookie."""


@dataclass(frozen=True, slots=True)
class PreviewLink:
    """Where a QA tester sees a forced variant, and the scoped token that unlocks it."""

    token: str
    """Scoped to one experiment (and variant), expiring (`fragments.preview_tokens`)."""
    exchange_url: str
    """A one-time link: the edge trades its code for the token in an HttpOnly cookie, so the
    token never sits in a URL that gets shared, logged or kept in history."""
    slot_urls: Mapping[str, str]
    """Direct slot URLs carrying the token (for scripts and curl; prefer `exchange_url`)."""
    config_version: int
    """The configuration that carries the secret's hash (edges honour tokens once they have
    it)."""
    expires: int


class ExperimentService:
    """Experiment operations over the experiment store and the catalog store."""

    def __init__(
        self,
        experiments: ExperimentStore,
        catalog: Store,
        slots: SlotCatalog,
        publisher: Publisher,
        templates: TemplateCheck | None = None,
        clock: Callable[[], float] = time.time,
        after_publish: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.experiments = experiments
        self.catalog = catalog
        self.slots = slots
        self.publisher = publisher
        self.templates = templates or TemplateCheck()
        self.clock = clock
        self.after_publish = after_publish
        """Called after every committed publication or rollback (e.g. the Workers KV push)."""

    # --- reads -------------------------------------------------------------------------

    async def list_all(self) -> list[Experiment]:
        return sorted((await self.experiments.all()).values(), key=lambda e: e.key)

    async def get(self, key: str) -> Experiment:
        found = await self.experiments.get(key)
        if found is None:
            raise ExperimentNotFound(key)
        return found

    async def audit(self, key: str, limit: int = 100) -> list[AuditEntry]:
        await self.get(key)
        return await self.experiments.audit(key, limit)

    # --- changes -------------------------------------------------------------------------

    async def create(self, proposed: Experiment, who: Principal) -> Outcome:
        async def plan(snap: Snapshot) -> Commit:
            if proposed.key in snap.experiments:
                raise ExperimentExists(proposed.key)
            if proposed.status != "draft":
                raise ExperimentInvalid(
                    {"status": "create experiments as drafts; then POST .../{key}/start"}
                )
            new = replace(proposed, version=1)
            await self._validate(new, snap)
            entry = self._entry(who, "create", None, new, None)
            return Commit(experiments=(new,), audit=((new.key, entry),))

        commit = await self._transact(plan)
        return Outcome(commit.experiments[0], None)

    async def update(
        self, key: str, expected: int, proposed: Experiment, who: Principal
    ) -> Outcome:
        def change(current: Experiment) -> Experiment:
            problems = {}
            if proposed.key != key:
                problems["key"] = f"the body's key must be {key!r} (keys cannot be renamed)"
            if proposed.status != current.status:
                problems["status"] = (
                    f"status is {current.status!r}; change it with POST /v1/experiments/{key}/"
                    "start, /pause or /stop"
                )
            if problems:
                raise ExperimentInvalid(problems)
            return proposed

        return await self._change(key, expected, who, "update", change)

    async def transition(self, key: str, expected: int, action: Action, who: Principal) -> Outcome:
        def change(current: Experiment) -> Experiment:
            target = TRANSITIONS[action].get(current.status)
            if target is None:
                raise TransitionNotAllowed(key, current.status, action)
            return replace(current, status=target)  # type: ignore[arg-type]

        return await self._change(key, expected, who, action, change)

    async def publish(self, who: Principal, reason: str = "publish") -> PublishedVersion:
        """Publish the stored experiments as a new configuration version, changed or not."""

        async def plan(snap: Snapshot) -> Commit:
            config, published = await self._publication(snap, snap.experiments, who, reason)
            return Commit(config=config, published=published)

        commit = await self._transact(plan)
        if commit.published is None:
            raise AssertionError("publish committed no version")
        return commit.published

    async def rollback(self, version: int, who: Principal) -> PublishedVersion:
        """Make an earlier configuration current again, as a new version number.

        The experiment definitions are not changed: the next experiment change publishes from
        them again. The current preview token stays valid (a rotated token is not revived).
        """

        async def plan(snap: Snapshot) -> Commit:
            old = await self.experiments.configs.load(version)
            if old is None:
                raise ConfigVersionNotFound(version)
            config = replace(
                old,
                version=snap.next_config_version,
                preview_secret_hash=preview_hash(snap.preview_token),
            )
            await self.publisher.prepare(config, await self._current(snap))
            published = self._published(config, who, f"rollback to {version}")
            return Commit(config=config, published=published)

        commit = await self._transact(plan)
        if commit.published is None:
            raise AssertionError("rollback committed no version")
        return commit.published

    async def preview_link(
        self,
        key: str,
        variant: str | None,
        who: Principal,
        edge_url: str,
        ttl_s: int = PREVIEW_TTL_S,
    ) -> PreviewLink:
        """A token forcing `variant` (None: any variant) of `key` only, for `ttl_s` seconds,
        and a one-time link that hands it to a browser as a cookie.

        The first link creates the preview secret (publishing its hash); later links reuse
        it. Rotating the secret (`rotate_preview`) voids every token issued under it.
        """
        if not 60 <= ttl_s <= 7 * 24 * 3600:
            raise ExperimentInvalid({"ttl": "between 60 seconds and 7 days"})
        experiment = await self.get(key)
        if variant is not None and variant not in experiment.variant_ids():
            raise ExperimentInvalid(
                {"variant": f"unknown variant {variant!r}; choose from "
                 f"{', '.join(experiment.variant_ids())}"}
            )  # fmt: skip
        secret, version = await self._preview_token(who)
        expires = int(time.time()) + ttl_s
        token = sign_preview(preview_hash(secret), PreviewGrant(key, variant, expires))
        code = secrets.token_urlsafe(24)
        await self.experiments.put_preview_code(code, token, min(ttl_s, PREVIEW_CODE_TTL_S))
        base = edge_url.rstrip("/")
        forced = f"sx_{key}={variant or experiment.variant_ids()[0]}"
        return PreviewLink(
            token=token,
            exchange_url=f"{base}/se/preview?code={code}&{forced}",
            slot_urls={
                slot: f"{base}/se/slot/{slot}?{forced}&sx_token={token}"
                for slot in experiment.slots
            },
            config_version=version,
            expires=expires,
        )

    async def exchange_preview_code(self, code: str) -> str | None:
        """The token behind a one-time preview link, once (None: unknown, used or expired)."""
        return await self.experiments.take_preview_code(code)

    async def rotate_preview(self, who: Principal) -> PublishedVersion:
        """A new preview token: links with the old one stop working once edges refresh."""
        token = secrets.token_urlsafe(32)

        async def plan(snap: Snapshot) -> Commit:
            config, published = await self._publication(
                snap, snap.experiments, who, "rotate preview token", preview_token=token
            )
            return Commit(config=config, published=published, preview_token=token)

        commit = await self._transact(plan)
        if commit.published is None:
            raise AssertionError("rotation committed no version")
        return commit.published

    async def _preview_token(self, who: Principal) -> tuple[str, int]:
        """The current preview token and config version, creating (and publishing) the token
        if there is none yet; concurrent first calls agree on one token."""
        fresh = secrets.token_urlsafe(32)
        outcome: list[tuple[str, int]] = []

        async def plan(snap: Snapshot) -> Commit:
            outcome.clear()
            if snap.preview_token is not None:
                outcome.append((snap.preview_token, snap.config_version))
                return Commit()
            config, published = await self._publication(
                snap, snap.experiments, who, "create preview token", preview_token=fresh
            )
            outcome.append((fresh, config.version))
            return Commit(config=config, published=published, preview_token=fresh)

        await self._transact(plan)
        return outcome[0]

    # --- internals ---------------------------------------------------------------------

    async def _transact(self, plan: Callable[[Snapshot], Awaitable[Commit]]) -> Commit:
        """Commit `plan`; when it published a version, hand it to `after_publish`."""
        commit = await self.experiments.transact(plan)
        if commit.published is not None and self.after_publish is not None:
            await self.after_publish()
        return commit

    async def _change(
        self,
        key: str,
        expected: int,
        who: Principal,
        action: str,
        change: Callable[[Experiment], Experiment],
    ) -> Outcome:
        async def plan(snap: Snapshot) -> Commit:
            current = snap.experiments.get(key)
            if current is None:
                raise ExperimentNotFound(key)
            if current.version != expected:
                raise VersionMismatch(key, expected, current.version)
            new = replace(change(current), version=current.version + 1)
            await self._validate(new, snap)
            config: EdgeExperimentConfig | None = None
            published: PublishedVersion | None = None
            if current.status != "draft" or new.status != "draft":
                everything = {**snap.experiments, key: new}
                config, published = await self._publication(
                    snap, everything, who, f"{action} {key}"
                )
            entry = self._entry(who, action, current, new, config.version if config else None)
            return Commit((new,), ((key, entry),), config, published)

        commit = await self._transact(plan)
        return Outcome(commit.experiments[0], commit.config.version if commit.config else None)

    async def _validate(self, experiment: Experiment, snap: Snapshot) -> None:
        problems: dict[str, str] = {}
        if experiment.key in RESERVED_KEYS:
            problems["key"] = f"{experiment.key!r} is reserved; choose another key"
        segments = [s.id for s in await self.catalog.segments()]
        try:
            validate(
                experiment,
                known_slots=list(self.slots.slots),
                known_segments=segments,
                others=[e for k, e in snap.experiments.items() if k != experiment.key],
                known_templates=self.templates.names,
            )
        except ExperimentInvalid as exc:
            problems.update(exc.problems)
        problems.update(
            {k: v for k, v in self.templates.problems(experiment).items() if k not in problems}
        )
        if problems:
            raise ExperimentInvalid(problems)

    async def _current(self, snap: Snapshot) -> EdgeExperimentConfig:
        if snap.config_version == 0:
            return EMPTY_CONFIG
        return await self.experiments.configs.load(snap.config_version) or EMPTY_CONFIG

    async def _publication(
        self,
        snap: Snapshot,
        experiments: Mapping[str, Experiment],
        who: Principal,
        reason: str,
        preview_token: str | None = None,
    ) -> tuple[EdgeExperimentConfig, PublishedVersion]:
        """The next configuration version, with its variant bundles built."""
        token = preview_token or snap.preview_token
        config = build_config(experiments.values(), snap.next_config_version, token)
        await self.publisher.prepare(config, await self._current(snap))
        return config, self._published(config, who, reason)

    def _published(
        self, config: EdgeExperimentConfig, who: Principal, reason: str
    ) -> PublishedVersion:
        return PublishedVersion(
            config.version, self.clock(), who.name, reason, tuple(e.key for e in config.experiments)
        )

    def _entry(
        self,
        who: Principal,
        action: str,
        before: Experiment | None,
        after: Experiment,
        config_version: int | None,
    ) -> AuditEntry:
        return AuditEntry(
            self.clock(), who.name, who.role, action, after.version, diff(before, after),
            config_version,
        )  # fmt: skip
