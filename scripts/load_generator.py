#!/usr/bin/env python3
"""Load generator for the vLLM router's OpenAI API (flags as the tutorial's, plus more).

    python scripts/load_generator.py --openai_api_base http://localhost:30080/v1 \
        --num-requests 100 --prompt-len 3000

See `vllm_stack_e2e.load` for every flag and the adaptive mode the tests use."""

from vllm_stack_e2e.load import main

if __name__ == "__main__":
    raise SystemExit(main())
