"""`python -m vllm_stack_e2e.sim serve …` / `… gateway …` (see `sim.cli`)."""

from .cli import main

raise SystemExit(main())
