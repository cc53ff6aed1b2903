"""Tokenizer-free token counting and deterministic output text for the simulator.

The counting rule, used for every prompt the simulator sees:

- A text's token count is the sum, over its whitespace-separated words, of
  ``ceil(len(word) / 4)``; so ``"Hi"`` is 1 token, ``"hello"`` is 2, ``"tokenization"`` is 3.
  Whitespace itself costs nothing, and an empty text is 0 tokens.
- A prompt given as token ids (``[1, 2, 3]``) counts one token per id.
- A chat request counts its messages' text plus ``CHAT_TOKENS_PER_MESSAGE`` per message
  (what a chat template adds around each turn) plus ``CHAT_TOKENS_PER_REPLY`` for the
  assistant header the template appends.

With this rule the tutorial's load generator prompt of N repetitions of ``"Hi "`` is about
N tokens, as it is for Llama's tokenizer. The generated text is a fixed cycle of short
words, one word per output token, so the same request always yields the same text.
"""

from __future__ import annotations

from typing import Any

CHAT_TOKENS_PER_MESSAGE = 4
CHAT_TOKENS_PER_REPLY = 3

# One word per output token; all plain ASCII so they need no JSON escaping.
_WORDS = (
    " the", " model", " says", " hello", " and", " keeps", " talking", " about",
    " queues", " tokens", " replicas", " while", " the", " cluster", " scales", " out",
)


def count_text_tokens(text: str) -> int:
    """Tokens in `text` by the word rule (see the module docstring)."""
    return sum((len(word) + 3) // 4 for word in text.split())


def count_prompt_tokens(prompt: str | list[int]) -> int:
    """Tokens in a completions prompt given as text or as token ids."""
    if isinstance(prompt, str):
        return count_text_tokens(prompt)
    return len(prompt)


def message_text(content: Any) -> str:
    """The text of a chat message's `content`: a string, or a list of parts with `text`."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                raise ValueError("chat message content parts must be objects with a 'text' string")
        return " ".join(texts)
    raise ValueError("chat message content must be a string or a list of text parts")


def count_chat_tokens(messages: list[dict[str, Any]]) -> int:
    """Tokens of a chat conversation by the word rule plus the template overhead."""
    total = CHAT_TOKENS_PER_REPLY
    for message in messages:
        total += CHAT_TOKENS_PER_MESSAGE + count_text_tokens(message_text(message.get("content")))
    return total


def token_text(index: int) -> str:
    """The text of output token number `index` (0-based) of any request."""
    return _WORDS[index % len(_WORDS)]


def output_text(num_tokens: int) -> str:
    """The whole output of a request that generated `num_tokens` tokens."""
    return "".join(token_text(i) for i in range(num_tokens))
