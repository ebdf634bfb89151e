"""The `vrnn` command line: parse, call the Python API, print.

Exit codes: 0 success, 2 user error (one line on stderr naming what and where),
1 a bug (with a traceback).
"""

from __future__ import annotations

import functools
import os
import re
import sys
import warnings
from pathlib import Path

import click

from .errors import VRNNError, VRNNWarning


# Library messages name Python arguments in backticks (`layers`, `overwrite=True`, `method=corr`), as
# xarray's do; this table is the one place that turns them into the command line's flags.
FLAGS = {
    "out": "--out", "layers": "--layers", "layer": "--layer", "timesteps": "--timesteps",
    "batch_size": "--batch-size", "device": "--device", "pool": "--pool", "dtype": "--dtype",
    "compression": "--compression", "seed": "--seed", "metadata": "--metadata", "resume": "--resume",
    "overwrite": "--overwrite", "skip_bad": "--skip-bad", "allow_untrained": "--allow-untrained",
    "weights": "--weights", "stimuli": "--stimuli", "model_name": "--model", "limit": "--limit",
    "rdm_method": "--rdm", "method": "--method", "n_bootstrap": "--bootstrap", "mapping": "--mapping",
    "id_map": "--id-map", "encoding": "--encoding", "shared_only": "--shared-only", "data": "--data",
    "epochs": "--epochs", "lr": "--lr", "augment": "--augment", "workers": "--workers",
    "step_weights": "--step-weights", "split_seed": "--split-seed", "num_classes": "--num-classes",
    "max_batches": "--max-batches", "min_reliability": "--min-reliability", "shard": "--shard",
    "delete_shards": "--delete-shards", "baseline": "--baseline",
}
_ARG = re.compile(r"`([a-z_]+)(?:=([^`]*))?`")


def as_flags(message: str) -> str:
    """Translate the Python arguments a library message names into command-line flags.

    >>> as_flags("`layers`: g not in this model; pass `overwrite=True`, `method=corr` or `out=x.nc`")
    '--layers: g not in this model; pass --overwrite, --method corr or --out x.nc'
    """
    def flag(m):
        name, value = m.group(1), m.group(2)
        if name not in FLAGS:
            return m.group(0)
        if value is None or value == "True":
            return FLAGS[name]
        if value == "False":
            return f"--no-{FLAGS[name][2:]}" if name == "augment" else f"without {FLAGS[name]}"
        return f"{FLAGS[name]} {value.strip(chr(34) + chr(39))}"

    return _ARG.sub(flag, message)


_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())   # click >= 8.2


class OneLineErrors(click.Group):
    """A click group whose usage errors are one line, like the tool's own errors."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS_IS_HELP as e:
            click.echo(e.ctx.get_help() if e.ctx else str(e))
            sys.exit(0)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "vrnn"
            click.echo(f"vrnn: error: {e.format_message().rstrip('.')}; see `{where} --help`", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            click.echo(f"vrnn: error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            click.echo("vrnn: interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, VRNNWarning):
        click.echo(f"vrnn: warning: {as_flags(str(message))}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def _end_progress_bars() -> None:
    """Close progress bars an error interrupted, so the error starts a line of its own."""
    tqdm = sys.modules.get("tqdm.std")
    if tqdm is not None:
        for bar in list(getattr(tqdm.tqdm, "_instances", ())):
            bar.close()


def user_errors(fn):
    """Turn a VRNNError into one line on stderr and exit code 2; a VRNNWarning into one line on stderr."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return fn(*args, **kwargs)
        except VRNNError as e:
            _end_progress_bars()
            click.echo(f"vrnn: error: {as_flags(str(e))}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("vrnn: interrupted", err=True)
            sys.exit(130)

    return wrapper


def quiet_option(fn):
    """``--quiet`` on a command: no progress bars or notes on stderr (results, warnings and errors still print)."""
    return click.option("-q", "--quiet", is_flag=True,
                        help="No progress bars or notes on stderr (results, warnings and errors still print).")(fn)


def show_progress(quiet: bool) -> bool:
    """Progress bars only for a person watching: not with --quiet, and only when stderr is a terminal."""
    return not quiet and sys.stderr.isatty()


def folder_text(path) -> str:
    """'report/' for a folder, whether or not the user typed the slash."""
    return str(Path(path)) + "/"


def csv_list(value, option: str = "--layers"):
    """'v1,it' -> ['v1', 'it']; None stays None (the default); a value naming nothing is refused."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise VRNNError(f"{option} {value!r} names nothing; give comma-separated names (e.g. v1,it) "
                        "or leave the option out for the default")
    return items


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vision-rnn")
def main():
    """vision-rnn: recurrent convolutional networks (BLT family) for vision neuroscience.

    \b
    Example:
      vrnn extract --model lateral --stimuli builtin:fashion-mnist
      vrnn info lateral_fashion-mnist.nc
    """


@main.command("models")
@quiet_option
@user_errors
def models_cmd(quiet):
    """List model names, whether pretrained weights ship, and their accuracy.

    \b
    Example:
      vrnn models
    """
    from .models import list_models

    click.echo(f"{'name':<32} {'weights':<11}  {'acc':<5}  description")
    for info in list_models():
        click.echo(str(info))
    click.echo("acc: accuracy at the last step on the 10,000 Fashion-MNIST test images (the model cards in "
               "data_cards/ give every step)")


def default_output(model_name: str, stimuli_name: str) -> Path:
    p = Path(model_name)
    label = (p.stem if p.is_file() else p.resolve().name) if p.exists() else model_name
    file, sep, func = model_name.rpartition(":")
    if sep and file.endswith(".py"):                   # path/to/mynet.py:factory -> mynet-factory
        label = f"{Path(file).stem}-{func}"
    name = f"{label}_{stimuli_name}.nc"
    from .atomic import safe_name

    return Path(safe_name(name))


@main.command("extract")
@click.option("--model", "model_name", required=True,
              help="Model name (see `vrnn models`), run folder, weights file, or FILE.py:FUNCTION (a function "
                   "returning vrnn.record(module, ...) or (module, record_kwargs)).")
@click.option("--stimuli", required=True, help="Folder of images, builtin:fashion-mnist, FILE.h5:SPLIT or kriegeskorte92:PATH.")
@click.option("-o", "--out", type=click.Path(), default=None,
              help="Output netCDF file, or a Zarr v3 store for a name ending in .zarr (default: "
                   "<model>_<stimuli>.nc in the working directory).")
@click.option("--weights", default="pretrained", show_default=True,
              help="pretrained, random or a weights file (for FILE.py:FUNCTION: the module's state dict).")
@click.option("--layers", default=None,
              help="Comma-separated layers (default: the model's; v1,v2,v4,it,gap for BLT, retina on request).")
@click.option("--timesteps", type=click.IntRange(min=1), default=None, help="Steps to unroll (default: the trained number).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when available, else cpu), cpu, cuda, cuda:N or mps.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Processes that decode images ahead of the model (default: cores - 2, at least 1; 0: none).")
@click.option("--shard", default=None,
              help="I/N: extract the I-th of N blocks of the stimuli into OUT.shards/ (e.g. "
                   "$SLURM_ARRAY_TASK_ID/N); under torchrun each rank takes RANK/WORLD_SIZE.")
@click.option("--pool", type=click.Choice(["mean"]), default=None, help="Store the spatial mean per channel.")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True)
@click.option("--compression", type=click.Choice(["zstd", "zlib", "none"]), default="zstd", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of random weights.")
@click.option("--metadata", type=click.Path(), default=None, help="CSV with a 'stimulus' column; other columns become coords.")
@click.option("--resume", is_flag=True, help="Continue an interrupted <out>.partial.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable images (recorded in the file's attrs).")
@click.option("--allow-untrained", is_flag=True,
              help="Accept a training run (or weights file) that has not finished an epoch: its initial weights.")
@quiet_option
@user_errors
def extract_cmd(model_name, stimuli, out, weights, layers, timesteps, batch_size, device, workers, shard, pool,
                dtype, compression, seed, metadata, resume, overwrite, skip_bad, allow_untrained, quiet):
    """Run a model over stimuli; write every layer at every step to netCDF (or Zarr).

    \b
    Example:
      vrnn extract --model lateral --stimuli photos/ -o acts.nc
      vrnn extract --model lateral --stimuli photos/ -o acts.zarr
      vrnn extract --model lateral --weights random --stimuli builtin:fashion-mnist --pool mean
      vrnn extract --model mynet.py:factory --weights trained.safetensors --stimuli photos/
    """
    from .extract import extract, summary_line
    from .models import load_model
    from .stimuli import load_stimuli

    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world > 1 and shard is None:       # torchrun: each rank extracts its shard, on its own GPU
        shard = f"{os.environ.get('RANK', '0')}/{world}"
        if device == "auto":
            import torch

            if torch.cuda.is_available():
                device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    model = load_model(model_name, weights=weights, seed=seed, device=device, allow_untrained=allow_untrained)
    stim = load_stimuli(stimuli, metadata=metadata, layers=model.layer_names)
    out = Path(out) if out else default_output(model_name, stim.name)
    tree = extract(model, stim, layers=csv_list(layers), timesteps=timesteps, batch_size=batch_size,
                   device=device, out=out, pool=pool, dtype=dtype, compression=compression,
                   resume=resume, overwrite=overwrite, skip_bad=skip_bad, workers=workers, shard=shard,
                   progress=show_progress(quiet))
    if shard is not None:
        from ._shards import parse, shard_path

        click.echo(summary_line(tree, shard_path(out, *parse(shard))))
        return
    click.echo(summary_line(tree, out))


@main.command("info")
@click.argument("path", type=click.Path())
@quiet_option
@user_errors
def info_cmd(path, quiet):
    """Describe an activation file: model, stimuli, layers, steps, completeness, size.

    \b
    Example:
      vrnn info acts.nc
    """
    from .store import describe

    click.echo(describe(path))


@main.command("merge")
@click.argument("out", type=click.Path())
@click.option("--delete-shards", is_flag=True, help="Delete OUT.shards/ once OUT is written.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT.")
@quiet_option
@user_errors
def merge_cmd(out, delete_shards, overwrite, quiet):
    """Write the shards of OUT (OUT.shards/, from extract --shard I/N) as the single file OUT.

    \b
    Example:
      vrnn merge acts.nc
      vrnn merge acts.nc --delete-shards
    """
    from .store import merge

    click.echo(merge(out, delete_shards=delete_shards, overwrite=overwrite))


# -- training ------------------------------------------------------------------------------
# (the `vrnn train` command is defined below this line)


def float_list(value):
    if value is None:
        return None
    try:
        return [float(v) for v in csv_list(value, "--step-weights")]
    except ValueError:
        raise VRNNError(f"--step-weights {value!r}: not a comma-separated list of numbers, e.g. 0,0,1,1") from None


@main.command("train")
@click.option("--model", "model_name", default=None,
              help="Registry name to train, e.g. lateral or ccn23-64/topdown-mult (see `vrnn models`).")
@click.option("--data", default=None,
              help="MiniEcoset-layout HDF5 file, image folder (train/ + val/, or one folder per class) "
                   "or fashion-mnist[:DIR].")
@click.option("--out", required=True, type=click.Path(), help="Run folder for checkpoints, config.json and log.jsonl.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Total number of epochs [default: 10].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Images per batch and process [default: 64].")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Adam learning rate [default: 0.001].")
@click.option("--seed", type=int, default=None, help="Seed of the initialisation, data order and augmentation [default: 0].")
@click.option("--timesteps", type=click.IntRange(min=1), default=None, help="Steps to unroll [default: the preset's].")
@click.option("--augment/--no-augment", default=None, help="TrivialAugmentWide on the training images [default: off].")
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when available, else cpu), cpu, cuda, cuda:N or mps.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last epoch (same options).")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Threads preparing batches ahead of the model.")
@click.option("--step-weights", default=None, help="Comma-separated loss weight per step [default: all 1].")
@click.option("--split-seed", type=int, default=None,
              help="Seed of the validation hold-out (folders without val/, Fashion-MNIST) [default: 0].")
@click.option("--num-classes", type=click.IntRange(min=1), default=None,
              help="Class count the model must have; refused if the data has another.")
@click.option("--max-batches", type=click.IntRange(min=1), default=None,
              help="Stop each epoch after this many batches: a first model in a minute (e.g. 100).")
@quiet_option
@user_errors
def train_cmd(model_name, data, out, epochs, batch_size, lr, seed, timesteps, augment, device, resume, workers,
              step_weights, split_seed, num_classes, max_batches, quiet):
    """Train a BLT network with a loss at every step; write checkpoints to --out.

    The loss is the sum over steps of the cross-entropy at each step (Adam,
    bfloat16 autocast on CUDA). Every epoch writes model.safetensors,
    epoch_NNN.safetensors, optimizer.pt, config.json and a line of log.jsonl
    (train loss, validation accuracy at every step); the folder loads with
    vision_rnn.load_model(OUT). The tiny preset takes its class count from the
    data; the ccn23 presets need 100 classes unless --num-classes says otherwise.
    With --resume the run continues exactly where it stopped.

    \b
    Example:
      vrnn train --model lateral --data fashion-mnist --out runs/lateral --epochs 1 --max-batches 100
      vrnn train --model lateral --data fashion-mnist --out runs/full --epochs 3
      vrnn train --out runs/full --resume --epochs 5
      vrnn train --model ccn23-64/lateral --data miniecoset_64px.h5 --out runs/bl64 --augment

    \b
    Several processes (data parallel; --batch-size is per process):
      torchrun --nproc_per_node 4 -m vision_rnn train --model lateral --data fashion-mnist --out runs/ddp
    """
    import os

    from .train import train

    summary = train(model_name, data, out, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                    timesteps=timesteps, augment=augment, device=device, resume=resume, workers=workers,
                    step_weights=float_list(step_weights), progress=show_progress(quiet), max_batches=max_batches,
                    split_seed=split_seed, num_classes=num_classes)
    if int(os.environ.get("RANK", "0")) == 0:
        acc = summary["val_accuracy"]
        acc_text = f"val accuracy {acc[-1]:.4f} at the last step" if acc else "no epoch trained"
        click.echo(f"{summary['model']}: {summary['epochs']} epoch(s) on {summary['data']['source']}, "
                   f"{acc_text}; run folder {summary['out']}")


# -- analyses ------------------------------------------------------------------------------------
@main.command("analyze")
@click.argument("acts", type=click.Path())
@click.option("-o", "--out", type=click.Path(), default=None,
              help="Report folder (default: <ACTS stem>_report beside the file).")
@click.option("--layer", default=None,
              help="Layer to analyse (default: the readout layer, gap); other layers get a fitted readout.")
@click.option("--baseline", type=click.Path(), default=None,
              help="Activation file of a baseline network over the same stimuli (e.g. the random-weights "
                   "twin): how far its representations move after this network settles, reported beside.")
@click.option("--bootstrap", "n_bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap samples over stimuli for the 95% intervals of the table (0: none).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--overwrite", is_flag=True, help="Replace the report of an earlier run in the folder.")
@quiet_option
@user_errors
def analyze_cmd(acts, out, layer, baseline, n_bootstrap, seed, overwrite, quiet):
    """Run the CCN23 analyses on an activation file: figures, summary.json, summary.md.

    \b
    Example:
      vrnn analyze lateral_fashion-mnist.nc -o report/
      vrnn analyze acts.nc -o report_v4/ --layer v4
      vrnn analyze acts.nc -o report/ --baseline acts_random.nc
    """
    from .report import analyze

    out = Path(out) if out else Path(acts).with_name(Path(acts).stem + "_report")
    from .report import accuracy_line, summary_markdown

    s = analyze(acts, out, layer=layer, baseline=baseline, n_bootstrap=n_bootstrap, seed=seed, overwrite=overwrite,
                progress=show_progress(quiet))
    click.echo(accuracy_line(s))
    click.echo(summary_markdown(s))
    click.echo(f"report on layer {s.attrs['layer']} ({s.attrs['readout']} readout): {folder_text(out)} "
               "(figures *.png, summary.json, summary.md)")


@main.command("demo")
@click.option("--model", "model_name", default="lateral", show_default=True,
              help="A tiny (Fashion-MNIST) model name from `vrnn models`, e.g. cornet-rt.")
@click.option("--weights", type=click.Choice(["pretrained", "random"]), default="pretrained", show_default=True,
              help="Weights of the model.")
@click.option("-o", "--out", type=click.Path(), default="vrnn-demo", show_default=True,
              help="Folder for the activations and the report.")
@click.option("--limit", type=click.IntRange(min=2), default=None,
              help="Use this many evenly spaced images of the 500.")
@click.option("--bootstrap", "n_bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap samples over stimuli for the 95% intervals of the table (0: none).")
@click.option("--overwrite", is_flag=True, help="Replace the activations and report of an earlier demo in the folder.")
@quiet_option
@user_errors
def demo_cmd(model_name, weights, out, limit, n_bootstrap, overwrite, quiet):
    """Extract builtin:fashion-mnist with a shipped model (lateral), analyse it, print the table.

    \b
    Example:
      vrnn demo
      vrnn demo --model cornet-rt -o demo-cornet/
      vrnn demo --weights random -o demo/ --limit 100
      vrnn demo --overwrite                     # run it again in the same folder
    """
    from .report import accuracy_line, demo, summary_markdown

    s = demo(weights=weights, out=out, limit=limit, n_bootstrap=n_bootstrap, overwrite=overwrite,
             progress=show_progress(quiet), model=model_name)
    click.echo(accuracy_line(s))
    click.echo(summary_markdown(s))
    click.echo(f"report: {folder_text(out)} (figures *.png, summary.json, summary.md)")


# -- comparisons with recordings ------------------------------------------------------------------
@main.command("compare")
@click.argument("acts", type=click.Path())
@click.argument("recording")
@click.option("-o", "--out", type=click.Path(), required=True, help="Report folder (its files are written as one set at the end; other files there stay).")
@click.option("--layers", default=None, help="Comma-separated layers (default: every layer of ACTS).")
@click.option("--rdm", "rdm_method", type=click.Choice(["correlation", "euclidean", "cosine"]), default="correlation",
              show_default=True, help="Dissimilarity of the model's (and a recording's) RDMs.")
@click.option("--method", type=click.Choice(["spearman", "corr", "cosine", "tau-a", "rho-a"]), default="spearman",
              show_default=True, help="How RDMs are compared.")
@click.option("--bootstrap", "n_bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap samples of the stimuli for 95% intervals (0: none).")
@click.option("--mapping", default="default", show_default=True,
              help="Model step -> ms for time-resolved recordings: default, fit, or a TimeMapping FILE.json.")
@click.option("--id-map", type=click.Path(), default=None,
              help="CSV with a header and two columns (activation id, recording id) for stimuli named differently.")
@click.option("--encoding", is_flag=True,
              help="Also fit cross-validated ridge encoding models (recordings with neuroids).")
@click.option("--min-reliability", type=float, default=None,
              help="Split-half reliability in (0, 1] below which a neuroid at a bin gets no noise-corrected "
                   "encoding score (with --encoding)  [default: 0.3]")
@click.option("--shared-only", is_flag=True, help="Compare on the shared stimuli when the two sets differ.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap and the encoding folds.")
@click.option("--overwrite", is_flag=True, help="Replace the comparison report of an earlier run in the folder.")
@quiet_option
@user_errors
def compare_cmd(acts, recording, out, layers, rdm_method, method, n_bootstrap, mapping, id_map, encoding,
                min_reliability, shared_only, seed, overwrite, quiet):
    """Compare every layer at every step of ACTS with RECORDING: RDM similarity over time.

    RECORDING is a netCDF recording (vision_rnn.recordings.save_recording), a BrainIO
    assembly, kriegeskorte92:PATH (monkey and human IT RDMs of the 92 images) or
    cichy2014:PATH (MEG RDMs). Writes comparison.csv (one row per layer, step and
    recording bin: value, 95% interval, noise ceiling), comparison.nc, figures
    and summary.json to OUT.

    \b
    Example:
      vrnn extract --model lateral --stimuli kriegeskorte92:data/kriegeskorte2008 --pool mean -o k92.nc
      vrnn compare k92.nc kriegeskorte92:data/kriegeskorte2008 -o k92_report/
      vrnn compare acts.nc assembly.nc -o report/ --mapping fit --encoding
    """
    from .compare import check_out, run_comparison

    if not encoding and min_reliability is not None:
        raise click.UsageError("--min-reliability applies to the encoding scores: add --encoding, or leave it out")
    out_path = check_out(out, overwrite)
    c = run_comparison(acts, recording, layers=csv_list(layers), rdm_method=rdm_method, method=method,
                       n_bootstrap=n_bootstrap, mapping=mapping, id_map=id_map, encoding=encoding,
                       min_reliability=min_reliability, shared_only=shared_only, seed=seed,
                       progress=show_progress(quiet))
    c.write(out_path, overwrite=overwrite)
    click.echo(f"compared {len(c.settings['layers'])} layer(s) with {', '.join(c.results)} on "
               f"{c.settings['stimulus_match']}")
    for line in c.best_lines():
        click.echo(line)
    click.echo(f"report: {folder_text(out_path)} (comparison.csv, figures, summary.json)")
