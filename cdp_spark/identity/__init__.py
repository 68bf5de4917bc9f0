"""Identity resolution: the identity graph, clusters and persistent person ids."""
