"""Dry-run validation of a form: every problem the service would raise, without saving anything.

The live validation of the edit page and the re-rendered page after a refused save both use
it: the form is read (`origin.web.admin.form`), decoded with the API's codec, then checked against
the slot catalog, the stored segments, the template directory and the other experiments, as
`ExperimentService` checks a change. The service validates again inside its transaction when
the form is saved, so this check is advice for the marketer, never the gate. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass

from fragments.experiment_codec import experiment_from_dict
from fragments.experiment_validation import validate
from fragments.experiments import Experiment, ExperimentInvalid
from origin.experiments.service import RESERVED_KEYS, ExperimentService
from origin.web.admin.form import ExperimentFields, to_document


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of a dry run: the experiment (when it could be decoded) and the problems."""

    experiment: Experiment | None
    problems: dict[str, str]

    @property
    def ok(self) -> bool:
        return self.experiment is not None and not self.problems


def decode(fields: ExperimentFields) -> Checked:
    """The experiment the form describes (unreadable fields at their defaults; None when it
    cannot be built at all) and the problems of reading it."""
    doc, problems = to_document(fields)
    try:
        experiment = experiment_from_dict(doc)
    except ExperimentInvalid as exc:
        return Checked(None, {**exc.problems, **problems})
    return Checked(experiment, problems)


async def check(service: ExperimentService, fields: ExperimentFields, *, creating: bool) -> Checked:
    """Decode, then validate as the service would (`creating`: the key must be free)."""
    decoded = decode(fields)
    if decoded.experiment is None:
        return decoded
    experiment = decoded.experiment
    problems: dict[str, str] = {}
    stored = {e.key: e for e in await service.list_all()}
    if experiment.key in RESERVED_KEYS:
        problems["key"] = f"{experiment.key!r} is reserved; choose another key"
    if creating and experiment.key in stored:
        problems["key"] = f"experiment {experiment.key!r} exists already; choose another key"
    segments = [s.id for s in await service.catalog.segments()]
    try:
        validate(
            experiment,
            known_slots=list(service.slots.slots),
            known_segments=segments,
            others=[e for key, e in stored.items() if key != experiment.key],
            known_templates=service.templates.names,
        )
    except ExperimentInvalid as exc:
        problems = {**exc.problems, **problems}
    for name, reason in service.templates.problems(experiment).items():
        problems.setdefault(name, reason)
    # What the form could not read comes first: the rest may follow from its default.
    return Checked(experiment, {**problems, **decoded.problems})
