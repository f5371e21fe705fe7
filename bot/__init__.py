"""Incident ChatOps bot: detections to incidents to conversations people can act on."""
