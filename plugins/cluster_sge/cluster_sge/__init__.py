"""The Grid Engine backend of cluster-core (Son of Grid Engine, Open Grid Scheduler, Univa/Altair GE)."""
