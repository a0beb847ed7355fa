"""obsprop family: Observable Propagation (Dunefsky & Cohan 2023).

Entry points:

- `token_set`, `logit_diff`, `parse_observable` (`.observables`) - an `Observable`.
- `obsprop`, `path_vector` (`.propagation`) - feature vectors of components for an
  observable; `ObsPropConfig`, `ObsPropResult`, `FeatureVector`, `Component`, `coupling`.
- `norm_angles`, `ablation_ranking`, `coupling_check` (`.checks`) - the paper's checks;
  `NormAngles`, `AblationRanking`, `CouplingCheck`.
- `data_efficiency` (`.efficiency`) - ObsProp vs probes on labelled tasks (`TASKS`);
  `EfficiencyConfig`, `EfficiencyResult`.
- `rank_known_features` (`.known_features`) - stored features aligned with a vector.
- `save_obsprop`, `load_obsprop`, `save_study`, `save_efficiency` (`.store`).
- `decoded_token_rows` (`.tokens`) - a vector's decoded tokens, stored by `save_obsprop`.
- `stored_scorers`, `ObsPropScorer`, `scores` (`.scoring`) - corpus scores ``x . y`` of stored
  vectors, read by the corpus-examples job (`interp.jobs.examples`).
"""

from interp.methods.obsprop.checks import (AblationRanking, CouplingCheck, NormAngles, ablation_ranking, coupling_check,
                                           norm_angles)
from interp.methods.obsprop.efficiency import TASKS, EfficiencyConfig, EfficiencyResult, data_efficiency
from interp.methods.obsprop.known_features import rank_known_features
from interp.methods.obsprop.observables import Observable, logit_diff, parse_observable, token_set
from interp.methods.obsprop.propagation import (Component, FeatureVector, ObsPropConfig, ObsPropResult, coupling, obsprop,
                                                path_vector)
from interp.methods.obsprop.store import load_obsprop, save_efficiency, save_obsprop, save_study

__all__ = [
    "AblationRanking", "Component", "CouplingCheck", "EfficiencyConfig", "EfficiencyResult", "FeatureVector",
    "NormAngles", "ObsPropConfig", "ObsPropResult", "Observable", "TASKS", "ablation_ranking", "coupling",
    "coupling_check", "data_efficiency", "load_obsprop", "logit_diff", "norm_angles", "obsprop", "parse_observable",
    "path_vector", "rank_known_features", "save_efficiency", "save_obsprop", "save_study", "token_set",
]
