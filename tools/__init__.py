"""Tools beside the pipeline's stages: the speed bench, the offline GPU bundle, and the
script that made the embedded fundus sample."""
