"""steering family: add a feature's direction, clamp its activation or cap its projection while
the model generates (`interp.methods.steering.steering`)."""

from interp.methods.steering.steering import (METHODS, GenerateConfig, Steer, SteerResult, compare, generate,
                                              latent_steer, neuron_steer, steered)

__all__ = ["METHODS", "GenerateConfig", "Steer", "SteerResult", "compare", "generate", "latent_steer",
           "neuron_steer", "steered"]
