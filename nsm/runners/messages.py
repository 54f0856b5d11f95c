"""What a local worker process tells its parent: one JSON object per line on its stdout.

    {"log": "epoch 3/10 | train loss ...", "level": 20}    a log record (``level`` as in ``logging``)
    {"progress": {"event": "step", ...}}                   a training progress event (nsm.training.progress)

Any other line (a traceback, a message of a C library) is plain text.
"""

from __future__ import annotations

import json
import logging
from typing import Any


def log_line(text: str, level: int) -> str:
    return json.dumps({"log": text, "level": level})


def progress_line(event: dict[str, Any]) -> str:
    return json.dumps({"progress": event})


def parse_line(line: str) -> tuple[str, Any]:
    """``("progress", event)``, or ``("log", (level, text))``; plain text is a warning-level log line."""
    text = line.rstrip("\n")
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    if isinstance(message, dict) and isinstance(message.get("progress"), dict):
        return "progress", message["progress"]
    if isinstance(message, dict) and isinstance(message.get("log"), str):
        return "log", (int(message.get("level", logging.INFO)), message["log"])
    return "log", (logging.WARNING, text)
