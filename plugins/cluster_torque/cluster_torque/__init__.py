"""The torque backend of cluster-core."""
