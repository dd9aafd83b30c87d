"""Analysis tools used by the chapters: overfitting detectors, landscapes, gradient maps."""
from advlit.analysis.overfitting import catastrophic_overfitting, oscillation

__all__ = ["catastrophic_overfitting", "oscillation"]
