"""What the notebooks call: a :class:`Session` runs the paper's experiments and names and
writes their tables and figures.

The notebooks in ``notebooks/`` hold no logic of their own: they open a session with
:func:`setup` (corpora, protocol, profile, where results go), run the experiments of
:mod:`amsnet_lib.studies` through it, and display what :mod:`amsnet_lib.report.tables` builds.
Every experiment also updates ``results/tables/summary.csv``
(:func:`amsnet_lib.report.summary.update_summary`), from which :func:`amsnet_lib.report.report.build_report`
writes ``results/REPORT.md``.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd

from .. import studies
from ..config import ExperimentConfig, PROTOCOLS as _CONFIG_PROTOCOLS

from ..paths import REPO_ROOT, resolve_results_dir, resolve_run_dir
from .report import MIXED_DEVICES_NOTE, NOT_RUN_ROWS_NOTE, _has_unrun_rows, _holds_paper_values, _mixes_devices, build_report, suite_cost
from .tables import _STUDY_TABLE_PREFIX, CORPORA, CORPUS_LABELS, NOT_AVAILABLE, NOT_RUN, PROTOCOL_SHORT, protocol_notes, parameter_count, protocol_tag, write_table
from .timings import environment_info, read_timings


def resolve_corpora(corpus: str | Sequence[str]) -> list[str]:
    """``"emodb"``, ``"iemocap"``, ``"ravdess"``, ``"both"`` (EmoDB and IEMOCAP, the paper's) or a list of
    those -> list of corpus names."""
    names = [corpus] if isinstance(corpus, str) else list(corpus)
    out: list[str] = []
    for name in names:
        name = name.lower()
        expanded = ["emodb", "iemocap"] if name == "both" else [name]
        for n in expanded:
            if n not in CORPUS_LABELS:
                raise ValueError(f"corpus must be 'emodb', 'iemocap', 'ravdess' or 'both', got {name!r}")
            if n not in out:
                out.append(n)
    return out


def _corpus_status(name: str, data_dir) -> tuple[pd.DataFrame | None, str | None]:
    """Load a named corpus; IEMOCAP that is nowhere to be found is "not available", not an error.

    EmoDB is always loaded (and downloaded when absent and online): a missing EmoDB raises the
    library's :class:`~amsnet_lib.errors.CorpusError`, which says how to fix it. IEMOCAP is
    licensed per user: when ``iemocap_dir`` is not given and neither ``$AMSNET_IEMOCAP_DIR`` nor
    ``<repo>/data/iemocap`` exists, its results are reported as "not run: corpus not available".
    """
    from ..data.corpora import load_corpus, resolve_data_dir

    if name in ("iemocap", "ravdess") and not resolve_data_dir(name, data_dir).exists():
        where, label = resolve_data_dir(name, data_dir), CORPUS_LABELS[name]
        return None, (f"{NOT_AVAILABLE} (no {label} at {where}; pass {name}_dir or set "
                      f"AMSNET_{name.upper()}_DIR)")
    return load_corpus(name, data_dir=data_dir), None




class Session:
    """A notebook's context: corpora, protocol, profile, seeds, device and where results go.

    Create it with :func:`setup` from the notebook's parameters. It loads each corpus once,
    extracts (or reads from the cache) its features once, runs experiments through the run
    store (finished folds are never retrained), records each in ``summary.csv``, and names and
    writes tables and figures.
    """

    def __init__(self, corpus="emodb", *, emodb_dir=None, iemocap_dir=None, ravdess_dir=None, protocol="paper", profile="full",
                 seeds=(0,), device=None, results_dir=None, run_dir=None, cache_dir=None, progress=False, train=True):
        from ..train.runstore import RunStore

        if profile not in studies.PROFILES:
            raise ValueError(f"profile must be one of {studies.PROFILES}, got {profile!r}")
        if protocol not in _CONFIG_PROTOCOLS or protocol == "split_file":
            raise ValueError(f"protocol must be 'paper', 'loso', 'loso_session' or 'emobox', got {protocol!r}")
        self.corpora = resolve_corpora(corpus)
        self.protocol = protocol
        self.profile = profile
        self.seeds = tuple(int(s) for s in (seeds if isinstance(seeds, (list, tuple)) else [seeds]))
        self.device = device
        self.progress = bool(progress)
        self.train = bool(train)
        self.cache_dir = cache_dir
        self.results_dir = resolve_results_dir(results_dir, profile)
        self.tables_dir = self.results_dir / "tables"
        self.figures_dir = self.results_dir / "figures"
        self.store = RunStore(resolve_run_dir(run_dir, profile))
        self.data_dirs = {"emodb": emodb_dir, "iemocap": iemocap_dir, "ravdess": ravdess_dir}
        self.tables: dict[str, pd.DataFrame] = {}
        self.unavailable: dict[str, str] = {}
        for c in self.corpora:
            table, reason = _corpus_status(c, self.data_dirs[c])
            if table is None:
                self.unavailable[c] = reason
            else:
                self.tables[c] = table
        self._features: dict = {}

    # ---- what and where
    @property
    def available(self) -> list[str]:
        """Requested corpora that were found."""
        return [c for c in self.corpora if c in self.tables]

    @property
    def availability(self) -> dict[str, str | None]:
        """Corpus -> None (available) or the reason it is not, for every corpus of the paper."""
        out = {c: None for c in self.tables}
        for c in CORPORA:
            if c not in self.tables:
                out[c] = self.unavailable.get(c) or _corpus_status_quiet(c, self.data_dirs.get(c))
        return out

    @property
    def summary_path(self) -> Path:
        return self.tables_dir / "summary.csv"

    def describe(self) -> pd.DataFrame:
        """The session's settings, for display."""
        rows = [("corpora", ", ".join(self.corpora)), ("protocol", f"{self.protocol}: {PROTOCOL_SHORT[self.protocol]}"),
                ("profile", self.profile + (" (smoke test: accuracies mean nothing)" if self.profile == "quick" else "")),
                ("seeds", ", ".join(map(str, self.seeds))), ("device", str(self.device or _default_device_name())),
                ("training", "yes: unfinished folds are trained" if self.train else
                 "no: only folds the run store already holds are reported; the rest say 'not run'"),
                ("results", _short(self.results_dir)), ("run store", _short(self.store.root))]
        for c in self.corpora:
            rows.append((f"corpus {c}", f"{len(self.tables[c])} utterances" if c in self.tables else self.unavailable[c]))
        return pd.DataFrame(rows, columns=["setting", "value"])

    def _protocol(self, protocol: bool | str) -> str | None:
        if isinstance(protocol, str):
            return protocol
        return self.protocol if protocol else None

    def name(self, base: str, corpus: str | None = None, protocol: bool | str = True) -> str:
        """File stem ``<base>[_<corpus>][_<protocol>]`` (``protocol``: True = the session's, or a name)."""
        p = self._protocol(protocol)
        return "_".join([base] + ([corpus] if corpus else []) + ([p] if p else []))

    def title(self, text: str, corpus: str | None = None, protocol: bool | str = True) -> str:
        """Figure title naming the corpus, the protocol and (when quick) the profile."""
        bits = [CORPUS_LABELS.get(corpus, corpus)] if corpus else []
        p = self._protocol(protocol)
        if p:
            bits.append(PROTOCOL_SHORT[p])
        if self.profile != "full":
            bits.append(f"profile {self.profile}")
        return f"{text}\n({'; '.join(bits)})" if bits else text

    # ---- data
    def table(self, corpus: str) -> pd.DataFrame:
        return self.tables[corpus]

    def features(self, corpus: str, config=None, augment: str = "none"):
        """Both feature streams of ``corpus`` (profile's feature configuration), cached; with ``augment``
        (an experiment's :attr:`~amsnet_lib.config.ExperimentConfig.audio_augment`) its augmented copies
        too (:func:`amsnet_lib.data.channels.augmented_features`, their audio in ``augmented/`` beside the
        feature cache)."""
        from ..data.channels import augmented_features
        from ..data.features import extract_features

        config = config or self.experiment(corpus).features
        key = (corpus, config, augment)
        if key not in self._features:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto in Jupyter without ipywidgets
                if augment == "none":
                    self._features[key] = extract_features(self.tables[corpus], config, cache_dir=self.cache_dir,
                                                           progress=self.progress)
                else:
                    self._features[key] = augmented_features(self.features(corpus, config), augment,
                                                             feature_cache=self.cache_dir, progress=self.progress)
        return self._features[key]

    def _features_of(self, cfg: ExperimentConfig):
        """The features ``cfg`` trains on: with the augmented copies it asks for when the session trains
        (read back, a run needs none: its keys count the originals, and scoring uses no copy), or
        whatever it does when an experiment-wide augmentation counts them."""
        augment = cfg.audio_augment if self.train or cfg.augment != "none" else "none"
        return self.features(cfg.corpus, cfg.features, augment)

    # ---- experiments
    def experiment(self, corpus: str, model: str = "amsnet", protocol: str | None = None, **overrides) -> ExperimentConfig:
        """:func:`amsnet_lib.studies.experiment` under the session's protocol (or ``protocol``), profile and seeds."""
        return studies.experiment(corpus, model, protocol or self.protocol, self.profile, **{"seeds": self.seeds, **overrides})

    def configs(self, study: str, corpus: str, all_variants: bool = False) -> list[ExperimentConfig]:
        """The configurations of a study of :data:`amsnet_lib.studies.STUDIES` with the session's seeds.

        In the quick profile only the study's ``quick_variants`` and ``quick_models`` (unless ``all_variants``).
        """
        st = studies.STUDIES[study]
        out = [c if st.own_seeds else dataclasses.replace(c, seeds=self.seeds)
               for c in st.configurations(corpus, self.protocol, self.profile)]
        if self.profile == "quick" and not all_variants:
            out = [c for c in out if (st.quick_variants is None or c.variant in st.quick_variants)
                   and (st.quick_models is None or c.model in st.quick_models)]
        return out

    def run(self, configs: Iterable[ExperimentConfig]) -> list:
        """Run (or read back from the run store) each experiment; record it in ``summary.csv``.

        With ``train=False`` nothing is trained: an experiment whose folds are not all in the
        run store is left out of the returned list, with a line saying so, and its row of
        ``summary.csv``, if any, is removed: it was measured for another configuration (the run
        keys hash everything that decides the numbers), so no table quotes it any longer.
        """
        import re

        from ..errors import AmsnetError
        from ..train.training import run_experiment, summary_variant
        from .summary import SUITE, drop_summary_rows, update_summary

        def unmeasured(cfg, why: str) -> None:
            print(f"{cfg.corpus} {label} {protocol_tag(cfg.protocol)}: {NOT_RUN} ({why})")
            drop_summary_rows(self.summary_path, corpus=cfg.corpus, protocol=cfg.protocol, model=cfg.model,
                              recipe=cfg.recipe, variant=f"^{re.escape(summary_variant(cfg))}$")

        out = []
        for cfg in configs:
            t0 = time.perf_counter()
            label = (f"{cfg.model}" + (f" {cfg.variant}" if cfg.variant else "")
                     + ("" if cfg.recipe == "paper" else f", {cfg.recipe} recipe"))
            with warnings.catch_warnings():
                # tqdm.auto warns inside Jupyter without ipywidgets even when its bars are disabled
                warnings.filterwarnings("ignore", message="IProgress not found")
                features = self._features_of(cfg)  # its errors are never "not run"
                try:
                    res = run_experiment(cfg, features, store=self.store, device=self.device, progress=self.progress,
                                         finished_only=not self.train)
                except AmsnetError:  # finished_only and the run store holds no fold of it
                    if self.train:
                        raise
                    unmeasured(cfg, "no finished fold in the run store")
                    continue
            if res.missing:
                unmeasured(cfg, f"incomplete: {len(res.missing)} of {len(res.missing) + len(res.folds)} fold runs not finished")
                continue
            update_summary(res, self.summary_path, written_by=SUITE)
            s = res.summary()
            print(f"{cfg.corpus} {label} {protocol_tag(cfg.protocol)}: WA {s['wa']:.2f} UA {s['ua']:.2f} "
                  f"({s['n_folds']} folds x {s['n_seeds']} seed(s), {time.perf_counter() - t0:.1f} s)", flush=True)
            out.append(res)
        return out

    def run_models(self, models: Sequence[str], recipe: str = "paper") -> dict[str, dict]:
        """Each model on each available corpus, trained with ``recipe``: ``{corpus: {model: ExperimentResult}}``.

        Corpora on which not every model could be run (``train=False``) are left out.
        """
        out = {}
        for c in self.available:
            done = {r.config.model: r for r in self.run(self.experiment(c, m, recipe=recipe) for m in models)}
            if set(done) == set(models):
                out[c] = done
        return out

    def run_study(self, study: str, selected: Iterable[str] | None = None) -> dict[str, list]:
        """A study of :data:`amsnet_lib.studies.STUDIES` on each available corpus: ``{corpus: [ExperimentResult]}``.

        With ``selected`` (the notebook's ``studies`` parameter) a study not listed there is not
        run: it says so and returns ``{}``; ``selected=None`` runs the registry's default studies.
        """
        if study not in studies.STUDIES:
            raise ValueError(f"unknown study {study!r}; choose from {list(studies.STUDIES)}")
        st = studies.STUDIES[study]
        if not _selected(study, selected):
            print(f"{study}: {NOT_RUN} (not in the notebook's `studies` parameter)")
            return {}
        kept = (*(st.quick_variants or ()), *(st.quick_models or ()))
        if self.profile == "quick" and kept:
            k, n = (len(self.configs(study, "emodb", all_variants=a)) for a in (False, True))
            print(f"profile quick: {k} of {n} experiments ({', '.join(kept)}); the full profile runs all {n}")
        out = {c: self.run(self.configs(study, c)) for c in self.available}
        return {c: res for c, res in out.items() if res}  # train=False: only what finished

    def run_ensembles(self, selected: Iterable[str] | None = None) -> dict[str, dict]:
        """Beyond the paper: the tuned recipe's seed ensembles (:mod:`amsnet_lib.train.ensemble`) on each
        available corpus, their size chosen on validation.

        Runs the study ``seed_ensemble`` (the members; ``selected`` as for :meth:`run_study`), scores
        the ensembles of 1 ... :func:`~amsnet_lib.studies.ensemble_members` members of each model on
        the validation splits, keeps the size with the best validation UA and reads the test folds
        for that size only (a row ``ensemble of <k> seeds`` in ``summary.csv``; k = 1 is the tuned
        row itself).

        Returns:
            ``{corpus: {"validation": DataFrame, "chosen": {model: k}, "results": {model: ExperimentResult}}}``;
            a model whose members are not all finished (``train=False``) is left out, with a line.

        ``summary.csv`` keeps one ensemble row per model, that of the chosen size: rows of other sizes,
        and every ensemble row of a model whose members (of the configuration in force) are not all
        finished, are removed, so no table quotes an ensemble of another configuration.
        """
        from ..train import ensemble
        from .summary import SUITE, drop_summary_rows, update_summary

        self.run_study("seed_ensemble", selected)  # the members (read back with train=False)
        if not _selected("seed_ensemble", selected):
            return {}
        out = {}
        for c in self.available:
            validation, chosen, results = [], {}, {}
            for model in dict.fromkeys(cfg.model for cfg in self.configs("seed_ensemble", c)):
                base = self.experiment(c, model, recipe="tuned")
                features = self._features_of(base)
                scores = ensemble.validation_scores(base, features, studies.ensemble_members(self.profile), store=self.store,
                                                    device=self.device, train=self.train)
                keep = None
                if scores.attrs["missing"]:
                    print(f"{c} {model} seed ensemble: {NOT_RUN} (members not all finished)")
                else:
                    chosen[model] = ensemble.choose_size(scores)
                    validation.append(scores.assign(model=model))
                if chosen.get(model, 1) > 1:
                    res = ensemble.run_ensemble(base, features, chosen[model], store=self.store, device=self.device,
                                                train=self.train)
                    update_summary(res, self.summary_path, written_by=SUITE)
                    results[model], keep = res, ensemble.ensemble_label(chosen[model])
                drop_summary_rows(self.summary_path, corpus=c, protocol=base.protocol, model=model, recipe="tuned",
                                  variant=ensemble.ENSEMBLE_VARIANT, keep=keep)
            if chosen:
                out[c] = {"validation": pd.concat(validation, ignore_index=True), "chosen": chosen, "results": results}
        return out

    def validation_ua(self, results: Iterable) -> dict[str, float]:
        """Mean validation UA (%) over the folds and seeds of each result's kept model, by model: each
        fold's model scored on its validation split (:func:`amsnet_lib.train.ensemble.validation_scores`,
        one member; kept in the run store, so a checkout without weights reads it back). No test
        fold is read; a result whose folds cannot be scored is left out."""
        from ..train import ensemble

        out = {}
        for r in results:
            scores = ensemble.validation_scores(r.config, self._features_of(r.config), 1,
                                                store=self.store, device=self.device, train=False)
            if not scores.attrs["missing"] and len(scores):
                out[r.config.model] = float(scores["val_ua"].mean())
        return out

    def run_recipe_ablation(self, selected: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
        """Beyond the paper: what carries the tuned recipe's gain, on each available corpus
        (:mod:`amsnet_lib.report.recipe_ablation`; ``[paper]`` only, another protocol gives ``{}``).

        The study ``recipe_ablation`` is trained only when ``selected`` names it (it is not a
        default study: about 9 CPU-hours) and the session trains. Otherwise the run store's
        finished folds are reported all the same: each row over the seeds whose every fold is
        finished, a row without one ``not run``.

        Returns:
            ``{corpus: ablation_table}``.
        """
        from . import recipe_ablation

        train = self.train and "recipe_ablation" in (studies.default_studies() if selected is None else list(selected))
        out = {}
        for c in self.available:
            configs = studies.STUDIES["recipe_ablation"].configurations(c, self.protocol, self.profile)
            if configs:
                results = recipe_ablation.ablation_results(configs, self._features_of,
                                                           self.store, train=train, device=self.device, progress=self.progress)
                out[c] = recipe_ablation.ablation_table(results)
        return out

    def report_unavailable(self) -> None:
        """Say which requested corpora are not run, and why."""
        for c, reason in self.unavailable.items():
            print(f"{c}: {reason}")
        if not self.unavailable:
            print("all requested corpora available: " + ", ".join(self.corpora))

    def read_summary(self) -> pd.DataFrame | None:
        """``summary.csv`` (every experiment recorded so far under these results), or None."""
        if not self.summary_path.is_file():
            return None
        summary = pd.read_csv(self.summary_path, keep_default_na=False)
        for col in ("wa", "ua", "wa_std", "ua_std", "train_seconds"):
            if col in summary:
                summary[col] = pd.to_numeric(summary[col], errors="coerce")
        return summary

    def parameter_counts(self, models: Sequence[str] | None = None, study: str | None = None) -> pd.DataFrame:
        """Parameter counts of models (or of a study's variants) under the session's profile."""
        rows = []
        for c in self.corpora:
            cfgs = self.configs(study, c, all_variants=True) if study else [self.experiment(c, m) for m in (models or [])]
            for cfg in cfgs:
                rows.append({"corpus": c, "model": cfg.model, "recipe": cfg.recipe, "variant": cfg.variant,
                             "params": parameter_count(cfg)})
        return pd.DataFrame(rows)

    # ---- output
    def save_table(self, df: pd.DataFrame, base: str, corpus: str | None = None, caption: str | None = None,
                   protocol: bool | str = True, notes: Iterable[str] = (), reported: bool | None = None) -> pd.DataFrame:
        """Write ``tables/<name>.csv`` and ``.md`` (caption and protocol legend); returns ``df``.

        ``reported``: whether the table holds values of the paper, so that its legend defines
        'reported' and Δ; ``None`` (default) decides from the columns (one named "... reported ...").
        """
        name = self.name(base, corpus, protocol)
        p = self._protocol(protocol)
        if reported is None:
            reported = _holds_paper_values(df)
        legend = protocol_notes([p], self.profile, reported) if p else []
        if _mixes_devices(df):
            legend.append(MIXED_DEVICES_NOTE)
        if _has_unrun_rows(df):
            legend.append(NOT_RUN_ROWS_NOTE)
        write_table(df, self.tables_dir / name, caption or name, list(notes) + legend)
        return df

    def save_figure(self, fig, base: str, corpus: str | None = None, protocol: bool | str = True):
        """Write ``figures/<name>.png`` atomically and return it for display (an IPython Image)."""
        from . import plotting

        path = plotting.save_figure(fig, self.figures_dir / f"{self.name(base, corpus, protocol)}.png")
        try:
            from IPython.display import Image
        except ImportError:  # outside IPython: the path is what there is to show
            return path
        return Image(filename=str(path))

    def _timed_run(self, name: str | None) -> str | None:
        """The text of a timed CPU run's output file in the results folder (full profile), when present."""
        return _read_if_exists(self.results_dir / name) if self.profile == "full" and name else None

    def write_report(self, protocols: Sequence[str] | None = None, *, diagnostics: Sequence[str] = (),
                     measurements: Sequence[str] = (), cpu_run: str | None = None,
                     cpu_table5: str | None = None, unheard: Sequence[str] = ()) -> Path:
        """Build ``REPORT.md`` from ``summary.csv``, the study tables, figures and ``timings.csv``.

        Args:
            protocols: the protocols shown side by side (the session's first).
            diagnostics: names of ``tables/<name>.md`` written by diagnostic scripts, linked under
                "Diagnostics beyond the paper" when present.
            measurements: names of ``tables/<name>.md`` of measurement sessions (GPU runs), shown in
                the hardware section when present (full profile).
            cpu_run: a file of the results folder holding a timed CPU run (full profile), when present.
            cpu_table5: likewise, the timed tuned Table 5 (``benchmarks/cpu_table5_run.sh``).
            unheard: names of ``tables/<name>.md`` beyond the paper on corpora the model never heard
            (cross-corpus), shown whole in their own section when present (full profile).
        """
        from ..atomic import atomic_write_text

        protocols = list(dict.fromkeys(protocols or [self.protocol]))
        summary = self.read_summary()
        study_tables = {}
        for p in protocols:
            for prefix in _STUDY_TABLE_PREFIX.values():
                for f in sorted(self.tables_dir.glob(f"{prefix}*_{p}.csv")):
                    study_tables[f.stem] = pd.read_csv(f)
        for prefix in _STUDY_TABLE_PREFIX.values():  # beyond the paper: the second corpus on EmoBox's folds
            for f in sorted(self.tables_dir.glob(f"{prefix}*ravdess_emobox.csv")):
                study_tables[f.stem] = pd.read_csv(f)
        figures = sorted(f.name for f in self.figures_dir.glob("*.png")) if self.figures_dir.is_dir() else []
        text = build_report(summary, profile=self.profile, protocols=protocols, availability=self.availability,
                            study_tables=study_tables, figures=figures, timings=read_timings(self.results_dir / "timings.csv"),
                            searches=sorted(f.stem for f in self.tables_dir.glob("recipe_search_*.md")),
                            environment=environment_info(), tables_out=self.tables_dir,
                            diagnostics={f.stem: f.read_text() for f in (self.tables_dir / f"{n}.md" for n in diagnostics)
                                         if f.is_file()},
                            suite=self._suite_cost(summary),
                            gpu=[t for t in (_read_if_exists(self.tables_dir / f"{n}.md") for n in measurements)
                                 if t] if self.profile == "full" else None,
                            cpu_run=self._timed_run(cpu_run), cpu_table5=self._timed_run(cpu_table5),
                            unheard={n: t for n in unheard if (t := _read_if_exists(self.tables_dir / f"{n}.md"))}
                            if self.profile == "full" else None)
        path = self.results_dir / "REPORT.md"
        atomic_write_text(path, text)
        print(f"written: {_short(path)}")
        return path

    def _suite_cost(self, summary: pd.DataFrame | None) -> pd.DataFrame | None:
        """:func:`suite_cost` of the first available corpus (full profile only: quick runs' times say nothing)."""
        if not self.available or self.profile != "full":
            return None
        corpus = self.available[0]
        return suite_cost(summary, self.tables[corpus], corpus=corpus, store=self.store)


def _selected(study: str, selected: Iterable[str] | None) -> bool:
    """Whether a notebook's ``studies`` parameter (None: the registry's default studies) names ``study``."""
    return study in (studies.default_studies() + ["ablations"] if selected is None else list(selected))


def _corpus_status_quiet(corpus: str, data_dir) -> str | None:
    """Availability of a corpus the session did not load, without loading it (None = present)."""
    from ..data.corpora import resolve_data_dir

    d = resolve_data_dir(corpus, data_dir)
    marker = d / "wav" if corpus == "emodb" else d
    return None if marker.exists() else f"{NOT_AVAILABLE} (not found at {d})"


def _default_device_name() -> str:
    try:
        from ..train.devices import default_device

        return str(default_device())
    except Exception:
        return "cpu"


def _read_if_exists(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def _short(path: Path) -> str:
    try:
        return str(Path(path).relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def setup(corpus="emodb", emodb_dir=None, iemocap_dir=None, protocol="paper", profile="full", seeds=(0,), device=None,
          results_dir=None, run_dir=None, cache_dir=None, progress=False, train=True, ravdess_dir=None) -> Session:
    """A :class:`Session` from a notebook's parameters (see the notebooks' ``parameters`` cell).

    ``train=False`` trains nothing and reports what the run store holds (``run_all.sh --no-train``).
    """
    return Session(corpus, emodb_dir=emodb_dir, iemocap_dir=iemocap_dir, ravdess_dir=ravdess_dir, protocol=protocol,
                   profile=profile, seeds=seeds, device=device, results_dir=results_dir, run_dir=run_dir,
                   cache_dir=cache_dir, progress=progress, train=train)


def print_facts(facts: Mapping, indent: str = "") -> None:
    """Print a nested dict as ``key: value`` lines (for the notebooks' checked cells)."""
    for k, v in facts.items():
        if isinstance(v, Mapping):
            print(f"{indent}{k}:")
            print_facts(v, indent + "  ")
        else:
            print(f"{indent}{k}: {v}")

