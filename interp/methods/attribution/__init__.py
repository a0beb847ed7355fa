"""attribution family: which input tokens a prediction depends on (ReAGent and baselines).

Entry points:

- `attribute`, `attribute_continuation`, `METHODS`, `method_fn` (`.registry`) - every method
  by name; `ContinuationAttribution`.
- `reagent` (`.reagent`) - ReAGent (Zhao & Shan 2024); `ReagentConfig`.
- the baselines of `.baselines` (`BASELINES`; `BaselineConfig`).
- `faithfulness` (`.faithfulness`) - Soft-NS / Soft-NC and hard metrics; `FaithfulnessConfig`,
  `FaithfulnessResult`.
- `AttributionResult`, `TokenTarget`, `ContrastTarget`, `SiteTarget`, `resolve_target` (`.targets`).
- `store_attribution`, `stored_records`, `stored_summary` (`.store`).
"""

from interp.methods.attribution.baselines import BASELINES, BaselineConfig
from interp.methods.attribution.faithfulness import FaithfulnessConfig, FaithfulnessResult, faithfulness
from interp.methods.attribution.reagent import ReagentConfig, reagent
from interp.methods.attribution.registry import METHODS, ContinuationAttribution, attribute, attribute_continuation, method_fn
from interp.methods.attribution.store import store_attribution, stored_records, stored_summary
from interp.methods.attribution.targets import AttributionResult, ContrastTarget, SiteTarget, TokenTarget, resolve_target

__all__ = [
    "AttributionResult", "BASELINES", "BaselineConfig", "ContinuationAttribution", "ContrastTarget",
    "FaithfulnessConfig", "FaithfulnessResult", "METHODS", "ReagentConfig", "SiteTarget", "TokenTarget", "attribute",
    "attribute_continuation", "faithfulness", "method_fn", "reagent", "resolve_target", "store_attribution",
    "stored_records", "stored_summary",
]
