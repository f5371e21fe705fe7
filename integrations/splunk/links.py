"""What is sent to Splunk for a query: the search text, its time range, and a link to it.

Splunk's REST API runs a query only when it starts with ``search`` or a pipe; the SPL in a
rule usually starts with search terms (``index=web status>=500``), so ``search `` goes in
front. A query that starts with another generating command (``tstats …``) gets ``| `` instead.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlencode

from bot.domain.hits import SearchQuery

GENERATING_COMMANDS = frozenset(
    {
        "datamodel",
        "dbinspect",
        "eventcount",
        "from",
        "inputcsv",
        "inputlookup",
        "loadjob",
        "makeresults",
        "mcatalog",
        "metadata",
        "metasearch",
        "mpreview",
        "mstats",
        "multisearch",
        "pivot",
        "rest",
        "savedsearch",
        "searchtxn",
        "set",
        "tstats",
    }
)


def search_text(text: str) -> str:
    """The query as Splunk's REST API wants it: starting with ``search`` or ``|``."""
    query = text.strip()
    if query.startswith("|"):
        return query
    first = query.split(None, 1)[0].lower() if query else ""
    if first == "search":
        return query
    if first in GENERATING_COMMANDS:
        return f"| {query}"
    return f"search {query}"


def epoch(moment: datetime) -> str:
    """Epoch seconds as Splunk's ``earliest_time``/``latest_time`` take them (``1714564800``,
    or with up to six decimals)."""
    value = moment.timestamp()
    if value == int(value):
        return str(int(value))
    return f"{value:.6f}".rstrip("0")


def time_range(query: SearchQuery) -> dict[str, str]:
    """The REST parameters of the query's window ``[earliest, latest)``, and of its index-time
    bounds when it has them (the search job parameters ``index_earliest`` / ``index_latest``)."""
    params = {"earliest_time": epoch(query.earliest), "latest_time": epoch(query.latest)}
    if query.index_earliest is not None:
        params["index_earliest"] = epoch(query.index_earliest)
    if query.index_latest is not None:
        params["index_latest"] = epoch(query.index_latest)
    if query.all_fields:  # every search-time field, whatever the search names
        params["adhoc_search_level"] = "verbose"
    return params


def search_link(web_url: str, app: str, query: SearchQuery) -> str:
    """Splunk Web's address of the query over its window, for an incident's evidence."""
    params = urlencode(
        {
            "q": search_text(query.text),
            "earliest": epoch(query.earliest),
            "latest": epoch(query.latest),
        },
        quote_via=quote,
    )
    return f"{web_url.rstrip('/')}/en-US/app/{quote(app, safe='')}/search?{params}"
