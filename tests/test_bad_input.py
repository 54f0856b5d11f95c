"""Bad input is refused with exit code 2 and one line on stderr, never a traceback, nothing on stdout.

Each case of ``CASES`` runs ``nsm.cli.main(argv)`` in a directory of its own (also its working
directory). In ``argv``, ``{tmp}`` is that directory and ``{data}`` a data cache all cases share;
``setup(tmp)``, when given, writes the files the case needs. To add a case, add one ``Case`` line.

argparse's usage errors print the command's usage above their one ``nsm CMD: error: ...`` line: the
usage block is checked and left out, so that line is the message, as for every other refusal.

README.md's table of refused inputs is rendered from these cases' actual messages, so it cannot
drift from them: ``test_readme_bad_input_table_is_current`` compares, and ``python
tests/test_bad_input.py`` rewrites the block between the README's bad-input-table markers.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import re
import shlex
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple

import pytest

from nsm.analysis.draw import draw_explanation, image_path
from nsm.assemble import build_model_for
from nsm.cli import main
from nsm.config import MAX_EPOCHS, MAX_SEED, make_run_config
from nsm.errors import NSMError
from nsm.training.checkpoint import save_checkpoint
from test_bad_data import appended_to_train, copy_valid_to_test, edited_kg

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- bad-input-table:start -->", "<!-- bad-input-table:end -->"


class Case(NamedTuple):
    description: str
    argv: list[str]
    message: str  # a fragment of the error line
    setup: Callable[[Path], None] | None = None


def write(name: str, text: str) -> Callable[[Path], None]:
    """A setup: the file ``name`` (in the case's directory) holding ``text``."""
    def setup(tmp: Path) -> None:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text)
    return setup


def planning_run(tmp: Path) -> None:
    """A setup: ``DIR/run``, a checkpoint of an untrained planning model (what eval reads first)."""
    config = make_run_config("planning", "quick", run_dir=str(tmp / "run"))
    (tmp / "run").mkdir()
    save_checkpoint({"model_state_dict": build_model_for(config).state_dict(), "run_config": config, "epoch": 0},
                    tmp / "run" / "best.pt")


def kg(edit: Callable[[Path], None]) -> Callable[[Path], None]:
    """A setup: ``DIR/kg``, a copy of the tiny KG changed by ``edit(directory)``."""
    return lambda tmp: edited_kg(tmp, edit)


TRAIN = ["train", "--domain", "planning", "--profile", "quick"]
SHOW = ["data", "--domain", "causal", "--profile", "quick", "--data-root", "{data}", "--show"]
SWEEP = ["cloud", "sweep", "--domain", "planning", "--profile", "quick"]
# The default profile asks every triple of the tiny KG's files (quick would ask a sample).
KG_STATS = ["data", "--domain", "kg", "--kg-dir", "{tmp}/kg", "--stats", "--data-root", "{tmp}/cache"]
EXPLAIN = ["explain", "--run-dir", ".", "--index", "0"]  # the image is checked before the run is read
SEED_RANGE = f"seed must be an integer from 0 to {MAX_SEED}"
# Your own triple graphs: TRIPLES reads {tmp}/g.jsonl, whose first line is GOOD; jsonl(line) adds a second.
TRIPLES = ["data", "--domain", "triples", "--data", "g.jsonl", "--stats", "--data-root", "{tmp}/cache"]
GOOD = '{"triples": [["a", "r", "b", 1.0, 1]], "label": 0}'


def jsonl(*lines: str) -> Callable[[Path], None]:
    """A setup: ``g.jsonl`` holding GOOD, then ``lines``."""
    return write("g.jsonl", "\n".join([GOOD, *lines]) + "\n")


CASES = [
    Case("negative seed", [*TRAIN, "--seed", "-1"], SEED_RANGE),
    Case("seed beyond numpy's range", [*TRAIN, "--seed", str(MAX_SEED + 1)], SEED_RANGE),
    Case("negative data seed", ["data", "--domain", "planning", "--stats", "--seed", "-1"], SEED_RANGE),
    Case("more epochs than τ can anneal over", [*TRAIN, "--epochs", "100000000000000000000"],
         f"epochs must be an integer from 1 to {MAX_EPOCHS}"),
    Case("a run directory that is a file", [*TRAIN, "--run-dir", "afile"], "cannot create run directory afile",
         write("afile", "")),
    Case("profile typo", ["train", "--domain", "planning", "--profile", "quik"], "invalid choice: 'quik'"),
    Case("a data root that is a file", ["data", "--domain", "planning", "--profile", "quick", "--stats",
                                        "--data-root", "afile"], "cannot write the data cache under afile",
         write("afile", "")),
    Case("a KG embedding without a KG", ["train", "--domain", "kg", "--model", "complex"],
         "--model complex embeds the entities of a KG in the TSV layout: it needs --domain kg --kg-dir DIR"),
    Case("ranking a planning run", ["eval", "--run-dir", "{tmp}/run", "--ranking", "full"],
         "--kg-dir, --ranking and --max-queries need a run trained on a KG", planning_run),
    Case("valid.txt holds only triples of train.txt", KG_STATS, "valid.txt is also in", kg(appended_to_train("valid.txt"))),
    Case("test.txt holds only triples of train.txt", KG_STATS, "test.txt is also in", kg(appended_to_train("test.txt"))),
    Case("test.txt is a copy of valid.txt", KG_STATS, "test.txt gives no test samples", kg(copy_valid_to_test)),
    Case("triples: no --data", ["train", "--domain", "triples", "--profile", "quick"], "give --data PATH"),
    Case("triples: --data of another domain", [*TRAIN, "--data", "g.jsonl"], "--data PATH only applies to --domain triples"),
    Case("triples: --data missing", TRIPLES, "g.jsonl does not exist"),
    Case("triples: malformed JSON", TRIPLES, "g.jsonl line 2: not valid JSON", jsonl('{"triples": [')),
    Case("triples: a triple of 3 fields", TRIPLES, "g.jsonl line 2: triple 1 has 3 fields; expected",
         jsonl('{"triples": [["a", "r", "b"]], "label": 1}')),
    Case("triples: confidence above 1", TRIPLES, "g.jsonl line 2: triple 1 has confidence 1.5",
         jsonl('{"triples": [["a", "r", "b", 1.5, 1]], "label": 1}')),
    Case("triples: level 4", TRIPLES, "g.jsonl line 2: triple 1 has level 4; expected 1, 2 or 3",
         jsonl('{"triples": [["a", "r", "b", 1.0, 4]], "label": 1}')),
    Case("triples: an empty graph", TRIPLES, "g.jsonl line 2: the graph is empty",
         jsonl('{"triples": [], "label": 1}')),
    Case("triples: one class only", TRIPLES, "g.jsonl: every sample has label 0", jsonl(GOOD)),
    Case("triples: a label that is not an integer", TRIPLES, "g.jsonl line 2: label 'yes' is not an integer",
         jsonl('{"triples": [["a", "r", "b", 1.0, 1]], "label": "yes"}')),
    Case("triples: a node without a type", TRIPLES, "g.jsonl line 2: node 'b' of a triple has no entry in",
         jsonl('{"triples": [["a", "r", "b", 1.0, 1]], "label": 1, "node_types": {"a": "x"}}')),
    Case("triples: split for some samples only", TRIPLES, "g.jsonl line 1: no \"split\", but",
         jsonl('{"triples": [["a", "r", "c", 1.0, 1]], "label": 1, "split": "test"}')),
    Case("triples: not UTF-8", TRIPLES, "g.jsonl line 2: not UTF-8 text",
         lambda tmp: (tmp / "g.jsonl").write_bytes(GOOD.encode() + b'\n{"triples": "\xff"}\n')),
    Case("triples: a node feature that is not a number", TRIPLES,
         "g.jsonl line 2: node 'a' has features ['x']; expected a non-empty list of finite numbers",
         jsonl('{"triples": [["a", "r", "b", 1.0, 1]], "label": 1, "node_features": {"a": ["x"]}}')),
    Case("triples: features of a node not in the sample", TRIPLES,
         "g.jsonl line 2: \"node_features\" names 'z', which is not a node of the sample",
         jsonl('{"triples": [["a", "r", "b", 1.0, 1]], "label": 1, "node_features": {"z": [1]}}')),
    Case("triples: another number of node features", TRIPLES,
         "g.jsonl line 3: 1 node features, but ",
         jsonl('{"triples": [["a", "r", "b", 1.0, 1]], "label": 1, "node_features": {"a": [1, 2]}}\n'
               '{"triples": [["a", "r", "c", 1.0, 1]], "label": 1, "node_features": {"a": [1]}}')),
    Case("triples: an empty split", TRIPLES, "the val split is empty",
         jsonl('{"triples": [["a", "r", "c", 1.0, 1]], "label": 1}')),
    Case("negative sample", [*SHOW, "-1"], "sample -1 does not exist"),
    Case("sample beyond the split", [*SHOW, "100000"], "sample 100000 does not exist"),
    Case("run directory without a checkpoint", ["eval", "--run-dir", "{tmp}"], "holds no checkpoint"),
    Case("no lines at all", [*EXPLAIN, "--top", "0"], "K must be a positive integer"),
    Case("image path that is a directory", [*EXPLAIN, "--image", "{tmp}"], "is a directory"),
    Case("image in a missing directory", [*EXPLAIN, "--image", "missing/out.png"], "no directory missing"),
    Case("image format unknown", [*EXPLAIN, "--image", "out.xyz"], "cannot tell the image format of out.xyz"),
    Case("report of an empty directory", ["report", "."], "neither a run directory"),
    Case("history.json not JSON", ["report", "run"], "cannot read run/history.json", write("run/history.json", "{")),
    Case("history.json a list", ["report", "run"], "run/history.json is malformed", write("run/history.json", "[]")),
    Case("history.json epoch without numbers", ["report", "run"], "each train epoch needs",
         write("run/history.json", '{"train": [{"epoch": 0, "total_loss": "low"}], "val": []}')),
    Case("results.json a list", ["report", "run"], "run/results.json is malformed", write("run/results.json", "[]")),
    Case("results.json success without metrics", ["report", "run"], "needs test_metrics",
         write("run/results.json", '{"status": "success"}')),
    Case("summary.json entry not an object", ["report", "."], "entry 'planning' is malformed",
         write("summary.json", '{"planning": 5}')),
    Case("sweep: negative seed", [*SWEEP, "--seed", "0,-3"], f"sweep point seed-3: {SEED_RANGE}"),
    Case("sweep: infinite lr", [*SWEEP, "--lr", "inf"], "lr must be positive and finite, got inf"),
    Case("sweep: nan lr", [*SWEEP, "--lr", "nan"], "lr must be positive and finite, got nan"),
    Case("sweep: zero batch size", [*SWEEP, "--batch-size", "0"], "batch_size must be a positive integer"),
    Case("sweep: a point twice", [*SWEEP, "--lr", "1e-3,0.001"], "lists lr0.001 more than once"),
    Case("cloud run name outside the volume", ["cloud", "train", "--domain", "kg", "--run", "../x"],
         "a run is named by one directory"),
    Case("a domain twice", ["cloud", "plan", "--domains", "planning,planning"], "each once"),
    Case("pool ratio above 1", [*TRAIN, "--pool-ratio", "1.5"], "model_args.pool_ratio must be in (0, 1), got 1.5"),
    Case("zero learning rate", [*TRAIN, "--lr", "0"], "lr must be positive and finite, got 0.0"),
    Case("a hierarchy of 4 levels", [*TRAIN, "--num-levels", "4"], "num_levels must be an integer from 2 to 3"),
    Case("--set without a value", [*TRAIN, "--set", "lr"], "expected KEY=VALUE"),
    Case("--set a number to text", [*TRAIN, "--set", "lr=abc"], "--set lr=abc: lr takes a number, got 'abc'"),
    Case("--set an unknown key", [*TRAIN, "--set", "model_args.nonsense=1"],
         "--set model_args.nonsense=1: unknown run setting model_args.nonsense (model_args has"),
    Case("--set an integer to a fraction", [*TRAIN, "--set", "model_args.num_bases=2.5"],
         "model_args.num_bases takes an integer, got 2.5"),
    Case("--set the domain", [*TRAIN, "--set", "domain=kg"], "--set domain=kg: domain cannot be set here"),
    Case("--set what the job fills", [*TRAIN, "--set", "relations=1"], "relations cannot be set here"),
    Case("--set a setting out of range", [*TRAIN, "--set", "temperature.final_temp=-1"],
         "--set temperature.final_temp=-1: temperature.final_temp must be positive and finite, got -1.0"),
    Case("--config file missing", [*TRAIN, "--config", "run.toml"], "cannot read run.toml: No such file"),
    Case("--config not TOML", [*TRAIN, "--config", "run.toml"], "run.toml is not valid TOML: ",
         write("run.toml", "lr = 0.01\nepochs = \n")),
    Case("--config a wrong type", [*TRAIN, "--config", "run.toml"],
         "run.toml: model_args.num_bases takes an integer, got 'four'", write("run.toml", '[model_args]\nnum_bases = "four"\n')),
    Case("--config an unknown table", [*TRAIN, "--config", "run.toml"], "run.toml: unknown run setting model.depth",
         write("run.toml", "[model]\ndepth = 3\n")),
    Case("--config the profile", [*TRAIN, "--config", "run.toml"], "run.toml: profile cannot be set here",
         write("run.toml", 'profile = "dev"\n')),
]



def _expand(argv: list[str], tmp: Path | str, data: Path | str) -> list[str]:
    return [arg.replace("{tmp}", str(tmp)).replace("{data}", str(data)) for arg in argv]


def _message_lines(stderr: str) -> list[str]:
    """stderr's lines less argparse's usage block (``usage: ...`` and its indented continuation)."""
    lines = stderr.splitlines()
    if lines and lines[0].startswith("usage: "):
        lines = lines[1:]
        while lines and lines[0].startswith(" "):
            lines = lines[1:]
    return lines


def refusal(case: Case, tmp: Path, data: Path) -> str:
    """Run ``case`` in ``tmp`` (the working directory already) and return its error line, asserting
    it was refused as promised."""
    if case.setup:
        case.setup(tmp)
    out, err = io.StringIO(), io.StringIO()
    # main()'s log lines go to stderr as well (configure_logging): catch them with the rest.
    root, handler = logging.getLogger(), logging.StreamHandler(err)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(_expand(case.argv, tmp, data))
            except SystemExit as exc:  # argparse
                code = exc.code
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    stderr = err.getvalue()
    lines = _message_lines(stderr)
    assert code == 2, f"{case.description}: exit code {code}\n{stderr}"
    assert "Traceback" not in stderr and len(lines) == 1, f"{case.description}: stderr\n{stderr}"
    assert out.getvalue() == "", f"{case.description}: printed before refusing\n{out.getvalue()}"
    assert re.match(r"nsm [a-z -]+: error: ", lines[0]) and case.message in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tmp_path_factory.mktemp("data_cache")


@pytest.mark.parametrize("case", CASES, ids=[case.description for case in CASES])
def test_bad_input_is_refused_in_one_line(case, tmp_path, data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refusal(case, tmp_path, data)


def render_table(cases: list[Case], root: Path) -> str:
    """The README's block: one row per case, its command and its actual message, with the case's
    directory written DIR and the shared data cache DATA so that the table does not change."""
    data = root / "data_cache"
    rows = ["Some inputs `nsm` refuses, and what it says (generated from tests/test_bad_input.py; usage errors "
            "also print the command's usage above their line):", "", "| input | message |", "|---|---|"]
    for number, case in enumerate(cases):
        tmp = root / f"case{number}"
        tmp.mkdir()
        with contextlib.chdir(tmp):
            message = refusal(case, tmp, data)
        command = "nsm " + shlex.join(_expand(case.argv, "DIR", "DATA"))
        message = message.replace(str(data), "DATA").replace(str(tmp), "DIR")
        rows.append(f"| {case.description}: {_code(command)} | {_code(message)} |")
    return "\n".join(rows)


def _code(text: str) -> str:
    """``text`` as a Markdown code span inside a table cell."""
    return f"`{text}`".replace("|", "\\|")


def _block_span(readme: str) -> tuple[int, int]:
    """Where the table lies in README.md: between the two markers."""
    return readme.index(START) + len(START), readme.index(END)


def test_readme_bad_input_table_is_current(tmp_path):
    readme = README.read_text()
    start, end = _block_span(readme)
    assert readme[start:end].strip("\n") == render_table(CASES, tmp_path), \
        "README.md's bad-input table is stale: run `python tests/test_bad_input.py`"


# --- the rules behind the messages ---------------------------------------------------------------

@pytest.mark.parametrize("setting", [
    {"seed": -1}, {"seed": MAX_SEED + 1}, {"seed": 1.5}, {"seed": True}, {"epochs": MAX_EPOCHS + 1},
    {"lr": math.inf}, {"lr": math.nan}, {"lr": 0.0}, {"lr": -1e-3}, {"lr": "1e-3"}, {"batch_size": "32"},
])
def test_run_config_refuses_what_cannot_run(setting):
    """One rule for every run, whether from the CLI, a cloud sweep point or the API."""
    with pytest.raises(NSMError, match=next(iter(setting))):
        make_run_config("planning", "quick", **setting)


def test_run_config_takes_the_bounds_and_anneals_at_them():
    config = make_run_config("planning", "quick", seed=MAX_SEED, epochs=MAX_EPOCHS)
    assert config["temperature"]["decay_rate"] < 1


def test_image_is_written_where_asked(tmp_path):
    """draw_explanation writes exactly the file it returns (the one ``nsm explain`` prints)."""
    nodes = [{"name": name} for name in ("a", "b", "c")]
    edge = {"subject": "a", "relation": "r", "object": "b", "confidence": 0.5}
    explanation = {
        "domain": "causal", "split": "test", "index": 0, "input": {"nodes": nodes, "triples": {"1": [edge]}},
        "levels": [{"level": 2, "kept": nodes[:2], "edges": [edge]}, {"level": 3, "kept": nodes[:1], "edges": []}],
        "prediction": {"class": 0, "probabilities": [0.6, 0.4]}, "oracle": {"label": 0},
    }
    assert draw_explanation(explanation, tmp_path / "x.svg") == tmp_path / "x.svg"
    assert [path.name for path in tmp_path.iterdir()] == ["x.svg"]
    for bad in (tmp_path, tmp_path / "x", tmp_path / "missing" / "x.png"):
        with pytest.raises(NSMError):
            image_path(bad)


if __name__ == "__main__":  # rewrite README.md's table from the cases' current messages
    with tempfile.TemporaryDirectory() as scratch:
        table = render_table(CASES, Path(scratch))
    readme = README.read_text()
    start, end = _block_span(readme)
    README.write_text(f"{readme[:start]}\n{table}\n{readme[end:]}")
    print(f"{README}: {len(CASES)} refused inputs")
