"""What each job kind does, on the job thread: fine-tune a served model, or SPL-refine the reward.

    work = JobWork(data_dir, registry, corpus="builtin")
    outcome = work(job, hooks, store)            # JobRunner calls it; returns a JobOutcome

Fine-tuning starts from the weights the model serves now (a copy: generation goes on from the
active weights meanwhile), scores with the active reward (shipped, or a refined one that was
activated), and draws its prompts from the artist's stored rankings when there are any (their
taste is what is being learned), else from the corpus' training captions. It runs the library's
resumable loop (`finetune.run.run_finetune`) in `<data dir>/jobs/<job id>/`, so the weights file
is written atomically; only a finished run is registered as a checkpoint (content hash recorded)
and, when asked, activated.
SPL refinement trains the active reward on the corpus with the SPL loss plus the preference pairs
of every stored ranking (`reward.rankings.read_preference_pairs` reads the engine's store as it
is) and registers the result as a `reward` checkpoint; later fine-tunes use it once activated.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from easytune_protocol import ErrorCode, ProtocolError

from ..finetune.lora import has_lora
from ..models.pipeline import MotionGenerator
from ..text.rewrite import PromptRewriter
from .checkpoints import REWARD, Checkpoint, CheckpointBook, file_sha256
from .jobs import Job, JobHooks, JobOutcome
from .models import ModelRegistry
from .store import Store

JOBS_DIR = "jobs"
FINETUNE_BATCH = 8  # prompts per trajectory


class JobWork:
    def __init__(self, data_dir: Path, registry: ModelRegistry, corpus: str = "builtin") -> None:
        self.data_dir = Path(data_dir)
        self.registry = registry
        self.corpus = corpus  # "builtin" or a HumanML3D-format directory
        self._prompt_rewriter: PromptRewriter | None = None

    def __call__(self, job: Job, hooks: JobHooks, store: Store) -> JobOutcome:
        book = CheckpointBook(store, self.data_dir)
        if job.kind == "finetune":
            return self.finetune(job, hooks, store, book)
        return self.spl_refine(job, hooks, store, book)

    def _corpus(self, hooks: JobHooks) -> Path:
        from ..reward.train import resolve_data

        hooks.note(f"corpus: {self.corpus}")
        try:
            return resolve_data(self.corpus)  # "builtin": built on first use (about a minute)
        except ValueError as exc:
            raise ProtocolError(ErrorCode.INVALID_FIELD, f"the engine's corpus: {exc}") from None

    def _out(self, job: Job) -> Path:
        out = self.data_dir / JOBS_DIR / job.job_id
        out.mkdir(parents=True, exist_ok=True)
        return out

    def _active_reward(self, book: CheckpointBook):
        from ..reward.model import load_reward_model

        name = book.active(REWARD)
        return load_reward_model(None if name is None else book.path(book.require(name)))

    # -- fine-tuning ---------------------------------------------------------------------------

    def finetune(self, job: Job, hooks: JobHooks, store: Store, book: CheckpointBook) -> JobOutcome:
        from ..finetune.methods import MethodConfig
        from ..finetune.run import run_finetune
        from ..finetune.trainer import FinetuneConfig, Finetuner, PromptPool, default_lr

        p = job.params
        served = self.registry.get(p.backbone)
        parent, gen = served.checkpoint, trainable_copy(served.generator)
        pairs = store.ranking_prompts()
        if pairs:  # as the model read them when it generated the ranked clips
            texts = tuple(self._rewriter().model_text(t) for t, _ in pairs)
            pool = PromptPool(texts, tuple(n for _, n in pairs))
            changed = [(t, r) for (t, _), r in zip(pairs, texts, strict=True) if r != t]
            shown = "".join(f"; {t!r} read as {r!r}" for t, r in changed[:3])
            hooks.note(
                f"prompts: {len(pairs)} from stored rankings, {len(changed)} rewritten{shown}"
            )
        else:
            pool = PromptPool.from_corpus(self._corpus(hooks), "train")
        config = FinetuneConfig(
            method=MethodConfig(name=p.method or "easytune", anchor_weight=p.anchor),
            trajectories=p.budget,
            batch_size=FINETUNE_BATCH,
            lora_rank=p.lora_rank,
            lr=default_lr(p.lora_rank),
            seed=p.seed,
        )
        tuner = Finetuner(gen, self._active_reward(book), config, pool)
        rewards: list[float] = []

        def on_step(entry: dict) -> None:
            rewards.append(float(entry["reward"]))
            hooks.report(
                int(entry["trajectory"]),
                {
                    "reward": float(entry["reward"]),
                    "reward_first": float(np.mean(rewards[:10])),
                    "reward_recent": float(np.mean(rewards[-10:])),
                    "updates": float(entry["updates"]),
                    "seconds_per_update": float(entry["seconds_per_update"]),
                },
            )

        result = run_finetune(
            tuner, self._out(job), on_step=on_step, should_stop=hooks.should_stop, save_every=25
        )
        if result.stopped == "cancelled":
            return JobOutcome("cancelled", f"stopped after {result.trajectories} trajectories")
        if result.stopped != "done":
            return JobOutcome("failed", f"fine-tuning stopped: {result.stopped}")
        metrics = {
            "reward_first": float(np.mean(rewards[:10])) if rewards else 0.0,
            "reward_last": float(np.mean(rewards[-10:])) if rewards else 0.0,
            "trajectories": float(result.trajectories),
            "updates": float(result.updates),
        }
        kind = "adapter" if p.lora_rank > 0 else "full"
        name = self._register(job, book, served.name, kind, parent, result.model_path, metrics)
        return self._finish(job, book, name, metrics)

    # -- SPL refinement --------------------------------------------------------------------------

    def spl_refine(
        self, job: Job, hooks: JobHooks, store: Store, book: CheckpointBook
    ) -> JobOutcome:
        from ..data.humanml3d import load_split
        from ..reward.rankings import read_preference_pairs
        from ..reward.spl import SPL_WEIGHT
        from ..reward.train import TrainConfig, pair_order_counts, train_reward

        p = job.params
        parent = book.active(REWARD)
        model = self._active_reward(book)
        read = self._rewriter().model_text  # the reward reads prompts as the backbones did
        pairs = [replace(x, text=read(x.text)) for x in read_preference_pairs(store.path)]
        train = load_split(self._corpus(hooks), "train")
        config = TrainConfig(
            steps=p.budget,
            batch_size=64,
            lr=5e-5,
            warmup=min(50, p.budget),
            dup_warmup=0,
            spl_weight=SPL_WEIGHT,
            rank_weight=1.0 if pairs else 0.0,
            eval_every=0,
            seed=p.seed,
        )
        before = pair_order_counts(model, pairs) if pairs else None
        hooks.note(f"spl_refine: {len(pairs)} ranking pairs, {p.budget} steps")
        train_reward(
            model,
            train,
            config,
            pairs=pairs or None,
            on_step=lambda step, run: hooks.report(step, {k: float(v) for k, v in run.items()}),
            should_stop=hooks.should_stop,
        )
        if hooks.should_stop():
            return JobOutcome("cancelled", "stopped before the last step; nothing was registered")
        metrics: dict[str, float] = {"ranking_pairs": float(len(pairs))}
        if before is not None:
            after = pair_order_counts(model, pairs)
            metrics |= {"pairs_ordered_before": float(before[0]), "pairs_ordered": float(after[0])}
        path = self._out(job) / "reward.safetensors"
        extra = dict(getattr(model, "checkpoint_extra", {}))
        extra.pop("vocabulary", None)
        extra.pop("metrics", None)
        extra["refine"] = {"job_id": job.job_id, "spl": True, "pairs": len(pairs)}
        model.save(path, extra)
        name = self._register(job, book, REWARD, "full", parent, path, metrics)
        return self._finish(job, book, name, metrics)

    # -- shared ----------------------------------------------------------------------------------

    def _rewriter(self) -> PromptRewriter:
        """The rewriter `generate` uses (same rules, same word model), made on first use."""
        if self._prompt_rewriter is None:
            self._prompt_rewriter = PromptRewriter.load()
        return self._prompt_rewriter

    def _register(
        self,
        job: Job,
        book: CheckpointBook,
        backbone: str,
        kind: str,
        parent: str | None,
        path: Path,
        metrics: dict[str, float],
    ) -> str:
        short = job.job_id.removeprefix("job-")[:8]
        name = job.params.checkpoint_name or f"{backbone}-{job.kind}-{short}"
        ckpt = Checkpoint(
            name=name,
            backbone=backbone,
            kind=kind,
            parent=parent,
            job_id=job.job_id,
            file=str(path.relative_to(self.data_dir)),
            sha256=file_sha256(path),
            created=time.time(),
            metrics=metrics,
        )
        with book.store.transaction():
            book.insert(ckpt)
        self.registry.refresh(book)
        return name

    def _finish(
        self, job: Job, book: CheckpointBook, name: str, metrics: dict[str, float]
    ) -> JobOutcome:
        if not job.params.activate:
            return JobOutcome("finished", None, name, metrics=metrics)
        backbone, previous = self.registry.activate(book, name)
        event = {"backbone": backbone, "active": name}
        if previous is not None:
            event["previous"] = previous
        return JobOutcome("finished", "activated", name, event, metrics)


def trainable_copy(gen: MotionGenerator) -> MotionGenerator:
    """A private copy of the served weights to train (generation keeps the original).

    A LoRA-active model is copied with its adapter merged into the weights, so a fine-tune goes
    on from exactly what the artist saw (its parent is then the adapter checkpoint).
    """
    copied = copy.deepcopy(gen)
    if has_lora(copied.backbone):
        from torch.nn.utils import parametrize

        for module in list(copied.backbone.modules()):
            if parametrize.is_parametrized(module):
                for pname in list(module.parametrizations.keys()):
                    parametrize.remove_parametrizations(module, pname, leave_parametrized=True)
        if hasattr(copied.backbone, "lora_config"):
            del copied.backbone.lora_config
    return copied
