"""An example task type: ``com.example.text.WordCount`` counts the words of a text or of a file."""
from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Optional

from pydantic import Field

from orchestrator.plugins.sdk import RUNNABLE, Props, RunContext, Task, TaskFailure, Text, platform_of, register


@register
class WordCount(Task):
    """Count the words of ``text`` (or of the file ``from``); the ``top`` most frequent go to a JSON file."""

    type = "com.example.text.WordCount"
    aliases = ("com.example.WordCount",)
    kind = RUNNABLE

    class Props(Props):
        text: Optional[Text] = None
        from_: Optional[Text] = Field(None, alias="from")
        top: int = Field(3, ge=1)

    @classmethod
    def validate_node(cls, node: Any) -> list[tuple[str, str]]:
        if (node.props.get("text") is None) == (node.props.get("from") is None):
            return [("", "Exactly one of 'text' or 'from' must be set")]
        return []

    def run(self, ctx: RunContext) -> dict[str, Any]:
        props = self.task.props
        platform = platform_of(ctx)
        if props.get("from") is not None:
            text = platform.read_text(ctx.render_string(props["from"]).strip())
        else:
            text = ctx.render_string(props["text"])
        top = int(ctx.render(props.get("top", 3)))
        if top < 1:
            raise TaskFailure(f"Invalid value for 'top': {top} must be at least 1")
        words = re.findall(r"\w+", text.lower())
        counts = Counter(words).most_common(top)
        ctx.log("INFO", f"Counted {len(words)} words, {len(set(words))} distinct")
        ctx.metric("counter", "words", len(words))
        uri = platform.put_file(json.dumps(dict(counts)).encode("utf-8"), extension=".json")
        return {"words": len(words), "distinct": len(set(words)), "top": [w for w, _ in counts], "uri": uri}
