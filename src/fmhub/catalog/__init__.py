"""The system registry: model cards shipped as data files, model sources and folder import."""
