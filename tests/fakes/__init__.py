"""Loopback fakes of outside services, and in-process test doubles of the ports."""
