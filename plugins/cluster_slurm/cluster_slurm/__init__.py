"""The slurm backend of cluster-core."""
