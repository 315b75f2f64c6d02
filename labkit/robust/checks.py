"""A robustness suite as a test: its settings in a YAML config and pass/fail thresholds.

:class:`SuiteConfig` holds what ``labkit robust suite --config`` reads (``configs/robust_suite.yaml``):
which split, kinds, severities, image subset and seed, and the thresholds that turn the
measurements into a verdict (:func:`assess`):

- ``min_clean``: the clean metric must reach this;
- ``max_drop``: per kind (or ``default`` for every kind not named), the largest allowed drop of
  the primary metric from its clean value at any severity run, ``clean - value <= max_drop``.

An undefined metric (e.g. AP without any detection) fails a threshold it is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from labkit.configfile import YamlConfig
from labkit.errors import DataError
from labkit.robust.corruptions import KINDS, SEVERITY_LEVELS, check_kind, check_severity
from labkit.robust.suite import AUTO


@dataclass(frozen=True)
class SuiteConfig(YamlConfig):
    """Settings and thresholds of one robustness suite (see the module docstring)."""

    KIND: ClassVar[str] = "robustness-suite"

    split: str = "val"
    kinds: tuple[str, ...] = KINDS
    severities: tuple[int, ...] = SEVERITY_LEVELS
    seed: int = 0
    #: images scored: a positive number, null (every image) or "auto" (the model's default subset)
    max_images: int | str | None = AUTO
    slices: bool = True
    min_clean: float | None = None
    max_drop: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", tuple(check_kind(k) for k in self.kinds))
        object.__setattr__(self, "severities", tuple(check_severity(s) for s in self.severities))
        if self.max_images not in (None, AUTO) and (isinstance(self.max_images, bool) or
                                                     not isinstance(self.max_images, int) or self.max_images < 1):
            raise DataError(f"max_images must be a positive integer, null or 'auto', got {self.max_images!r}")
        if not isinstance(self.max_drop, Mapping):
            raise DataError(f"max_drop must map kinds (or 'default') to numbers, got {self.max_drop!r}")
        for kind, value in self.max_drop.items():
            if kind != "default":
                check_kind(kind)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise DataError(f"max_drop[{kind!r}] must be a number in [0, 1], got {value!r}")
        if self.min_clean is not None and not 0 <= self.min_clean <= 1:
            raise DataError(f"min_clean must be in [0, 1], got {self.min_clean!r}")

    @property
    def has_thresholds(self) -> bool:
        return self.min_clean is not None or bool(self.max_drop)


def assess(result: Mapping[str, Any], config: SuiteConfig) -> dict[str, Any]:
    """Check a :func:`labkit.robust.suite.run_suite` result against the config's thresholds.

    Returns ``{"passed": bool, "checked": n, "failures": [...]}``; each failure names the
    condition, the value, the clean value and the allowed bound."""
    metric = result["primary"]
    clean = next(r[metric] for r in result["rows"] if r["kind"] == "clean")
    failures, checked = [], 0
    if config.min_clean is not None:
        checked += 1
        if clean is None or clean < config.min_clean:
            failures.append({"kind": "clean", "severity": 0, metric: clean, "rule": f"clean >= {config.min_clean}"})
    for row in result["rows"]:
        allowed = config.max_drop.get(row["kind"], config.max_drop.get("default"))
        if row["kind"] == "clean" or allowed is None:
            continue
        checked += 1
        value = row[metric]
        drop = None if value is None or clean is None else clean - value
        if drop is None or drop > allowed + 1e-12:
            failures.append({"kind": row["kind"], "severity": row["severity"], metric: value, "clean": clean,
                             "drop": drop, "rule": f"drop <= {allowed}"})
    return {"passed": not failures, "checked": checked, "failures": failures}
