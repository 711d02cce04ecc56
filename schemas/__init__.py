"""JSON Schemas shipped with arbframe (installed as the `arbframe.schemas` package)."""
