"""The simulator's tokenizer-free counting rule and its deterministic output text."""

from vllm_stack_e2e.sim.tokens import (
    CHAT_TOKENS_PER_MESSAGE, CHAT_TOKENS_PER_REPLY, count_chat_tokens, count_prompt_tokens, count_text_tokens,
    output_text, token_text,
)


def test_each_word_costs_a_quarter_of_its_length_rounded_up():
    assert count_text_tokens("Hi") == 1
    assert count_text_tokens("hello") == 2
    assert count_text_tokens("tokenization") == 3
    assert count_text_tokens("  Hi \n\t there  ") == 1 + 2
    assert count_text_tokens("") == 0


def test_the_tutorial_prompt_is_about_prompt_len_tokens():
    assert count_text_tokens("Hi " * 3000) == 3000


def test_token_ids_count_one_each():
    assert count_prompt_tokens([1, 2, 3, 4]) == 4


def test_chat_adds_template_overhead_per_message():
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert count_chat_tokens(messages) == (1 + 2) + 1 + 2 * CHAT_TOKENS_PER_MESSAGE + CHAT_TOKENS_PER_REPLY


def test_output_is_deterministic_one_word_per_token():
    assert output_text(3) == token_text(0) + token_text(1) + token_text(2)
    assert output_text(40) == output_text(40)
    assert all(token_text(i).startswith(" ") and count_text_tokens(token_text(i)) >= 1 for i in range(40))
