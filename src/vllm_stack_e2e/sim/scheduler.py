"""vLLM V1's scheduler as the simulated engine runs it: who computes how many tokens in a step.

Pure state, no clock and no metrics: `schedule()` decides one step, `update()` applies its
result; the engine (`engine.py`) times the steps and counts. Rules as read in vLLM v0.10.2 to
v0.34.0, `vllm/v1/core/sched/scheduler.py` (`Scheduler.schedule`, `update_from_output`) and
`vllm/v1/core/kv_cache_manager.py` (`allocate_slots`):

- A request has a target, prompt + generated tokens, and a count of tokens computed so far.
  A step gives it tokens to catch up: 1 when decoding, what is left when not (a prefill, or after
  a preemption the prompt and the generated tokens again: recompute).
- A step computes at most `max_num_batched_tokens` tokens (the budget).
- Running requests go first, in admission order, each taking min(what it needs, budget left):
  chunked prefill. Once the budget is spent, later running requests get nothing this step but
  stay running.
- KV lives in blocks of `block_size` tokens, held for the tokens computed so far (this step's
  included); nothing is reserved for output to come. When a running request's tokens need blocks
  and none are free, the most recently admitted running request is preempted (blocks freed,
  progress reset to 0, put at the front of waiting), again until they fit; if the victim is the
  request itself, the running pass stops.
- Only in a step that preempted nothing, waiting requests are admitted from the head (FIFO)
  while budget is left and fewer than `max_num_seqs` run, the head with just the chunk the budget
  left covers. If the head's blocks do not fit, admission stops: head-of-line blocking, and no
  preemption on a waiting request's behalf.
- After the step a request whose tokens are all computed samples one token (so the step that
  completes a prompt yields the first token). It finishes at `max_tokens`, or when it reaches
  `max_model_len` tokens, and frees its blocks.

Not modelled: prefix caching (the production-stack chart passes `--no-enable-prefix-caching`
unless a model enables it), the long-prefill threshold and priority policy (off by default),
speculative decoding, encoder inputs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field


@dataclass(eq=False)
class Sequence:
    """One request inside the engine. Times are the event loop's monotonic clock."""

    request_id: str
    prompt_tokens: int
    max_tokens: int
    arrival: float = 0.0
    state: str = "waiting"  # waiting | running | finished
    generated: int = 0
    computed: int = 0  # vLLM's num_computed_tokens: tokens whose KV exists
    blocks: int = 0  # KV blocks held
    preemptions: int = 0
    decoding: bool = False  # a token came since the last (re-)admission
    finish_reason: str | None = None
    scheduled_at: float | None = None
    first_token_at: float | None = None
    last_token_at: float | None = None
    last_token_due: float | None = None  # when the cost model meant that token to come
    finished_at: float | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def num_tokens(self) -> int:
        """Prompt plus generated tokens: what the scheduler computes towards."""
        return self.prompt_tokens + self.generated

    @property
    def finished(self) -> bool:
        return self.state == "finished"


@dataclass
class StepPlan:
    """One step's decision (vLLM's SchedulerOutput, reduced): tokens per request, in the order
    scheduled, and who was admitted or preempted."""

    tokens: dict[Sequence, int] = field(default_factory=dict)
    decodes: set[Sequence] = field(default_factory=set)  # requests whose 1 token is a decode
    admitted: list[Sequence] = field(default_factory=list)
    preempted: list[Sequence] = field(default_factory=list)

    def add(self, seq: Sequence, n: int) -> None:
        self.tokens[seq] = n
        if seq.decoding:
            self.decodes.add(seq)

    @property
    def prefill_tokens(self) -> int:
        """Tokens of prompts (and recomputes) in this step: what the step's cost grows with."""
        return sum(n for seq, n in self.tokens.items() if seq not in self.decodes)

    def by_id(self) -> dict[str, int]:
        """Tokens per request id, for tests and logs."""
        return {seq.request_id: n for seq, n in self.tokens.items()}


@dataclass
class StepOutput:
    """What a step produced: requests that sampled a token, and those of them that finished."""

    sampled: list[Sequence] = field(default_factory=list)
    finished: list[Sequence] = field(default_factory=list)


def _blocks_for(tokens: int, block_size: int) -> int:
    return -(-tokens // block_size)


class Scheduler:
    """vLLM V1's FCFS scheduler over a KV cache of `num_blocks` blocks of `block_size` tokens."""

    def __init__(self, *, max_num_seqs: int, max_num_batched_tokens: int, num_blocks: int,
                 block_size: int, max_model_len: int) -> None:
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.max_model_len = max_model_len
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []  # admission order
        self.used_blocks = 0

    @property
    def free_blocks(self) -> int:
        return self.num_blocks - self.used_blocks

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def add(self, seq: Sequence) -> None:
        """A new request joins the tail of waiting; the next step sees it."""
        seq.state = "waiting"
        self.waiting.append(seq)

    def remove(self, seq: Sequence) -> None:
        """Abort `seq` (waiting or running): it leaves its queue and frees its blocks."""
        if seq.state == "waiting":
            self.waiting.remove(seq)
        elif seq.state == "running":
            self._free(seq)
            self.running.remove(seq)
        seq.state, seq.finish_reason = "finished", "abort"

    # -- one step ----------------------------------------------------------------------
    def schedule(self) -> StepPlan:
        """Decide the next step: running requests first, then waiting ones if none was preempted."""
        plan = StepPlan()
        budget = self._schedule_running(plan, self.max_num_batched_tokens)
        if not plan.preempted:
            self._schedule_waiting(plan, budget)
        return plan

    def update(self, plan: StepPlan) -> StepOutput:
        """Apply a step: count its tokens computed; a request caught up samples one token."""
        out = StepOutput()
        for seq, n in plan.tokens.items():
            if seq.state != "running":
                continue  # aborted while the step ran
            seq.computed += n
            if seq.computed < seq.num_tokens:
                continue  # a prefill chunk; more of the prompt to come
            seq.generated += 1
            out.sampled.append(seq)
            if seq.generated >= seq.max_tokens or seq.num_tokens >= self.max_model_len:
                self._free(seq)
                seq.state, seq.finish_reason = "finished", "length"
                out.finished.append(seq)
        if out.finished:
            self.running = [seq for seq in self.running if seq.state == "running"]
        for seq in out.sampled:
            seq.decoding = True
        return out

    # -- the two passes ----------------------------------------------------------------
    def _schedule_running(self, plan: StepPlan, budget: int) -> int:
        index = 0
        while index < len(self.running) and budget > 0:
            seq = self.running[index]
            n = min(seq.num_tokens - seq.computed, budget)
            if not self._allocate_or_preempt(seq, n, plan):
                break
            plan.add(seq, n)
            budget -= n
            index += 1
        return budget

    def _allocate_or_preempt(self, seq: Sequence, n: int, plan: StepPlan) -> bool:
        """Take the blocks `seq` needs for `n` more tokens, preempting the newest running request
        until they fit (vLLM's FCFS policy); False once `seq` itself was the one preempted."""
        while self._blocks_needed(seq, n) > self.free_blocks:
            victim = self.running.pop()
            self._preempt(victim)
            plan.preempted.append(victim)
            if victim is seq:
                return False
        self._allocate(seq, n)
        return True

    def _schedule_waiting(self, plan: StepPlan, budget: int) -> None:
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            head = self.waiting[0]
            n = min(head.num_tokens - head.computed, budget)
            if self._blocks_needed(head, n) > self.free_blocks:
                return  # head-of-line blocking
            self.waiting.popleft()
            head.state, head.decoding = "running", False
            self.running.append(head)
            self._allocate(head, n)
            plan.add(head, n)
            plan.admitted.append(head)
            budget -= n

    # -- KV blocks ---------------------------------------------------------------------
    def _blocks_needed(self, seq: Sequence, n: int) -> int:
        return _blocks_for(seq.computed + n, self.block_size) - seq.blocks

    def _allocate(self, seq: Sequence, n: int) -> None:
        more = max(self._blocks_needed(seq, n), 0)
        seq.blocks += more
        self.used_blocks += more

    def _free(self, seq: Sequence) -> None:
        self.used_blocks -= seq.blocks
        seq.blocks = 0

    def _preempt(self, seq: Sequence) -> None:
        """vLLM V1's recompute preemption of a request just taken off running: no swap; it starts
        over from token 0, first in line."""
        self._free(seq)
        seq.state, seq.computed, seq.decoding = "waiting", 0, False
        seq.preemptions += 1
        self.waiting.appendleft(seq)
