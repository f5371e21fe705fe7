"""Root-cause analysis without a model: log templates, co-firing incidents, known patterns."""

from integrations.heuristic.engine import HeuristicRcaEngine

__all__ = ["HeuristicRcaEngine"]
