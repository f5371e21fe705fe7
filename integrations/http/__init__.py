"""The playbook executor for HTTP calls to allowlisted URLs."""

from integrations.http.executor import HttpExecutor

__all__ = ["HttpExecutor"]
