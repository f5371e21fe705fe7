"""Tools for rule authors: try rules once, replay them over a time range, import Splunk alerts.

Each tool is a module of pure functions returning printable results; ``run_bot.py`` parses the
arguments and prints what they return.
"""
