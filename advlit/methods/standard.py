"""Standard (non-adversarial) training: empirical risk on clean inputs."""
from advlit.methods.base import Method
from advlit.methods.registry import register


@register("standard")
class Standard(Method):
    """Minimise ``E CE(f(x), y)`` on clean inputs; ``eps`` is only used for evaluation."""
