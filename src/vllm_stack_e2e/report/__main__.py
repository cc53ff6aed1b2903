"""`python -m vllm_stack_e2e.report reports/<run-id>` or `--latest`."""

import sys

from . import main

sys.exit(main())
