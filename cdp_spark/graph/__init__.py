"""Connected components with interchangeable engines (GraphFrames, DataFrame, local)."""
