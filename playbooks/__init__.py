"""Remediation playbooks: spec, registry, the gate, the engine and the shipped library."""
