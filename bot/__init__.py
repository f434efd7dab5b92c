"""Essay explainer: verbatim, attributed answers from a library of essays."""

__version__ = "0.3.0"
