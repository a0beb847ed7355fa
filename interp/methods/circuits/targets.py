"""Circuit targets from their text form (CLI, notebooks, app).

A target is what a circuit explains (`interp.methods.circuits.attribution`):

1. ``latent:DICT:IDX[@POS]`` - the pre-activation of latent IDX of the transcoder at the
   layer of dictionary DICT (a name from the loaded ``{name: layer}`` map, or ``L<layer>``).
2. ``logit:"TOKEN"[@POS]`` - one token's logit; ``logitdiff:"A","B"[@POS]`` - the logit
   difference A - B. Tokens are quoted text (each must be one token of the model) or ``#ID``.
3. ``@POS`` picks the position (default -1, the last); a ``@`` inside quotes is text.
"""

from __future__ import annotations

import re
from typing import Mapping

from interp.methods.circuits.attribution import LatentTarget, LogitTarget, Target

TARGET_FORMS = ('latent:DICT:IDX[@POS]  (DICT a dictionary name or L<layer>)', 'logit:" Paris"[@POS]',
                'logitdiff:" she"," he"[@POS]  (tokens quoted, or #ID for a token id)')
_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|#(\d+)|([^,@"\']+))\s*')


def _split_position(body: str) -> tuple[str, int]:
    m = re.search(r"@(-?\d+)\s*$", body)
    if m and body[:m.start()].count('"') % 2 == 0 and body[:m.start()].count("'") % 2 == 0:
        return body[:m.start()], int(m.group(1))
    return body, -1


def _tokens(adapter, body: str) -> list[int]:
    ids, pos = [], 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot read tokens from {body!r}; write them quoted, e.g. \" she\",\" he\", or #ID")
        text = m.group(1) if m.group(1) is not None else m.group(2)
        if m.group(3) is not None:
            ids.append(int(m.group(3)))
        else:
            ids.append(adapter.token_id(text if text is not None else m.group(4)))
        pos = m.end()
        if pos < len(body):
            if body[pos] != ",":
                raise ValueError(f"expected ',' between tokens in {body!r} at {body[pos:]!r}")
            pos += 1
    return ids


def parse_target(adapter, spec: str, dictionaries: Mapping[str, int] | None = None) -> Target:
    """A `Target` from its text form (see `TARGET_FORMS`); `dictionaries` maps names to layers."""
    kind, _, body = spec.partition(":")
    body, position = _split_position(body)
    if kind == "latent":
        where, _, index = body.rpartition(":")
        layer = (dictionaries or {}).get(where)
        if layer is None and re.fullmatch(r"[Ll]\d+", where):
            layer = int(where[1:])
        if layer is None or not index.strip().isdigit():
            known = ", ".join(dictionaries or {}) or "none loaded"
            raise ValueError(f"latent target {spec!r} needs latent:DICT:IDX with DICT a dictionary ({known}) or L<layer>")
        return LatentTarget(adapter.check_layer(layer), int(index), position)
    if kind in ("logit", "logitdiff"):
        ids = _tokens(adapter, body)
        if len(ids) != (1 if kind == "logit" else 2):
            raise ValueError(f"{kind} target {spec!r} needs {'one token' if kind == 'logit' else 'two tokens'}")
        return LogitTarget(ids[0], ids[1] if kind == "logitdiff" else None, position)
    raise ValueError(f"unknown target {spec!r}; valid forms: {'; '.join(TARGET_FORMS)}")
