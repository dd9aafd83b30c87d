"""Frameworks that wrap any :class:`advlit.methods.Method` (LAST, PIAT, ...)."""
