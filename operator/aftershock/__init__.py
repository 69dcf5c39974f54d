"""aftershock: a Kubernetes operator for continuous chaos engineering."""

__version__ = "0.1.0"

GROUP = "aftershock.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
