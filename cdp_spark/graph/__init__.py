"""Connected components with interchangeable engines (GraphFrames, DataFrame, local).

Example:
    >>> from cdp_spark.graph import connected_components
    >>> connected_components(edges, engine="auto")   # doctest: +SKIP
"""

from cdp_spark.graph.components import (
    COMPONENTS_SCHEMA,
    DEFAULT_LOCAL_MAX_EDGES,
    ComponentsEngine,
    GraphFramesEngine,
    LocalEngine,
    connected_components,
    make_engine,
)
from cdp_spark.graph.largestar import DataFrameEngine

__all__ = [
    "COMPONENTS_SCHEMA",
    "DEFAULT_LOCAL_MAX_EDGES",
    "ComponentsEngine",
    "DataFrameEngine",
    "GraphFramesEngine",
    "LocalEngine",
    "connected_components",
    "make_engine",
]
