"""The one identity type for a feature, used by the store, the methods, the app and notebooks.

A feature is a scalar function of the model's input at one site: an MLP neuron, an SAE or
transcoder latent, an ObsProp vector, a probe direction. It is named by four things:

- ``model``: the model alias or hub id it belongs to (``"smollm2-135m"``);
- ``site``:  the TransformerLens-style hook name it lives at (``"blocks.3.mlp.hook_post"``);
- ``kind``:  what produced it (see `FeatureKind`);
- ``index``: its position within the site's basis (a neuron number, a latent number), and
- ``source``: for dictionary latents and learned vectors, the dictionary / run name that
  owns the basis (``""`` for neurons, whose basis is the model's own).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

from interp.sites import HOOK_NAME_RE


class FeatureKind(str, Enum):
    """What produced a feature. The string value is what the store records."""

    NEURON = "neuron"
    SAE = "sae"
    TRANSCODER = "transcoder"
    OBSPROP = "obsprop"
    PROBE = "probe"
    DIRECTION = "direction"

    @classmethod
    def parse(cls, value: "str | FeatureKind") -> "FeatureKind":
        """Accept a kind or its string; raise a clear error otherwise."""
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value))
        except ValueError:
            valid = ", ".join(k.value for k in cls)
            raise ValueError(f"unknown feature kind {value!r}; valid kinds: {valid}") from None


@dataclass(frozen=True, order=True)
class FeatureId:
    """The identity of one feature (see the module docstring)."""

    model: str
    site: str
    kind: FeatureKind
    index: int
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FeatureKind.parse(self.kind))
        if not self.model:
            raise ValueError("FeatureId.model must be a non-empty model name")
        if not HOOK_NAME_RE.match(self.site):
            raise ValueError(f"FeatureId.site {self.site!r} is not a hook name like 'blocks.3.mlp.hook_post'")
        if int(self.index) < 0:
            raise ValueError(f"FeatureId.index must be >= 0, got {self.index}")
        object.__setattr__(self, "index", int(self.index))

    @property
    def key(self) -> str:
        """A stable string key: ``model/source/site/kind/index``."""
        return f"{self.model}/{self.source}/{self.site}/{self.kind.value}/{self.index}"

    def to_record(self) -> dict:
        """A flat dict for a table row (kind as its string value)."""
        record = asdict(self)
        record["kind"] = self.kind.value
        return record

    @classmethod
    def from_record(cls, record: dict) -> "FeatureId":
        """Inverse of `to_record`; ignores extra columns."""
        return cls(
            model=record["model"],
            site=record["site"],
            kind=record["kind"],
            index=int(record["index"]),
            source=record.get("source", "") or "",
        )

    def __str__(self) -> str:
        src = f"{self.source}:" if self.source else ""
        return f"{self.model} {src}{self.site}[{self.index}] ({self.kind.value})"
