"""``fsgen serve``: SageMaker's feature-group control plane and the featurestore-runtime API
over HTTP on 127.0.0.1, backed by the local store. See :mod:`fsgen.server.app`."""

from fsgen.server.app import FeatureStoreServer, make_server, serve_in_thread

__all__ = ["FeatureStoreServer", "make_server", "serve_in_thread"]
