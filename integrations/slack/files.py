"""A picture in a card's thread: slack-sdk's ``files_upload_v2``.

Three steps, all within the surface's deadline: ``files.getUploadURLExternal`` (answers an
upload URL and a file id), a POST of the bytes to that URL, then
``files.completeUploadExternal`` with ``channel_id`` and ``thread_ts``, which shares the file in
the thread. The app needs the ``files:write`` scope (without it Slack answers
``missing_scope``: a ``PermanentError`` naming the scope). A failed upload step is transient
when the upload host answered 5xx or 429, permanent otherwise.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

import aiohttp
from slack_sdk.errors import SlackClientError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.charts.delivery import ChartFile
from bot.errors import BotError
from bot.ports import MessageRef
from integrations.slack.errors import SlackRefused, SlackUnavailable, scrub, translate

METHOD = "files.upload"  # how errors name the three steps together
_UPLOAD_STATUS = re.compile(r"status: (\d{3})")


async def upload_chart(
    client: AsyncWebClient,
    ref: MessageRef,
    chart: ChartFile,
    deadline: float,
    secrets: Sequence[str] = (),
) -> None:
    """Share ``chart`` in the thread of the card at ``ref``; raises translated errors."""
    try:
        async with asyncio.timeout(deadline + 1):  # all three steps: the lane waits for it
            await client.files_upload_v2(
                channel=ref.channel,
                thread_ts=ref.message_id,
                file=chart.png,
                filename=chart.filename,
                title=chart.title,
                alt_txt=chart.alt,
                initial_comment=chart.comment,
            )
    except SlackRequestError as exc:  # the bytes' POST to the upload URL failed
        raise _upload_failed(str(exc), secrets) from None
    except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise translate(exc, _method(exc), secrets) from None


def _method(exc: BaseException) -> str:
    """The Web API method that failed (its URL's last part), else the upload as a whole."""
    url = str(getattr(getattr(exc, "response", None), "api_url", "") or "")
    return url.rsplit("/", 1)[-1] or METHOD


def _upload_failed(text: str, secrets: Sequence[str]) -> BotError:
    found = _UPLOAD_STATUS.search(text)
    status = int(found.group(1)) if found else 0
    if status >= 500 or status == 429:
        return SlackUnavailable(f"Slack's upload host answered HTTP {status}")
    said = f"HTTP {status}" if status else scrub(text, secrets)[:200]
    return SlackRefused(f"Slack refused the chart's upload: {said}")
