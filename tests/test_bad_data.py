"""Bad user data and bad model inputs: refused at the door with a message that says what is wrong."""

import gzip
import shutil
from pathlib import Path
from typing import Callable

import pytest
import torch
from torch_geometric.data import Batch, Data

from nsm.data import load_dataset
from nsm.data.domains.kg.tsv import read_kg_dir
from nsm.data.knowledge_graph_dataset import KnowledgeGraphTripleDataset
from nsm.errors import NSMError
from nsm.config import GRAPH_MODELS
from nsm.models import build_model

TINY_KG = Path(__file__).parent / "data" / "tiny_kg"
KG_FILES = ("train.txt", "valid.txt", "test.txt")


def edited_kg(tmp_path: Path, edit: Callable[[Path], None]) -> Path:
    """A copy of the tiny KG under ``tmp_path``, changed by ``edit(directory)``."""
    directory = Path(shutil.copytree(TINY_KG, tmp_path / "kg"))
    edit(directory)
    return directory


def appended_to_train(name: str) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        with open(directory / "train.txt", "a") as train:
            train.write((directory / name).read_text())
    return edit


def copy_valid_to_test(directory: Path) -> None:
    shutil.copyfile(directory / "valid.txt", directory / "test.txt")


# --- KG files and the data cache ----------------------------------------------------------------

def test_a_byte_order_mark_is_not_part_of_a_name(tmp_path):
    def with_bom(directory: Path) -> None:
        for name in KG_FILES:
            (directory / name).write_bytes(b"\xef\xbb\xbf" + (directory / name).read_bytes())

    files = read_kg_dir(edited_kg(tmp_path, with_bom))
    assert files.entities == read_kg_dir(TINY_KG).entities
    assert files.triples == read_kg_dir(TINY_KG).triples


def test_a_hand_edited_cache_is_regenerated(tmp_path):
    def build() -> KnowledgeGraphTripleDataset:
        return KnowledgeGraphTripleDataset(tmp_path, "test", num_samples=400, kg_dir=TINY_KG)

    labels = build().labels
    graphs_path, = (tmp_path / "kg").glob("*.test.graphs.pt")
    stored = torch.load(graphs_path, weights_only=True)
    stored["columns"]["y"] = 1 - stored["columns"]["y"]
    torch.save(stored, graphs_path)
    checksum = r"does not match its checksum \(edited or damaged\?\); regenerating"
    with pytest.warns(UserWarning, match=checksum):
        assert build().labels == labels
    assert build().labels == labels  # the regenerated file is served again, without a warning

    # The samples' file is read when they are asked for.
    path, = (tmp_path / "kg").glob("*.test.json.gz")
    with gzip.open(path, "rt") as f:
        text = f.read()
    flipped = text.replace('"label": 1', '"label": 2').replace('"label": 0', '"label": 1').replace('"label": 2', '"label": 0')
    with gzip.open(path, "wt") as f:
        f.write(flipped)
    with pytest.warns(UserWarning, match=checksum):
        assert [s.label for s in build().samples] == labels
    assert [s.label for s in build().samples] == labels


# --- model inputs --------------------------------------------------------------------------------

F, R = 64, 8


def two_graphs() -> Batch:
    gen = torch.Generator().manual_seed(0)
    graphs = []
    for num_nodes in (5, 7):
        x = torch.zeros(num_nodes, F)
        x[:, 0] = 1
        graphs.append(Data(x=x, edge_index=torch.randint(0, num_nodes, (2, 2 * num_nodes), generator=gen),
                           edge_type=torch.randint(0, R, (2 * num_nodes,), generator=gen),
                           edge_attr=torch.rand(2 * num_nodes, generator=gen), num_nodes=num_nodes))
    return Batch.from_data_list(graphs)


def changed(name: str, index: tuple, value) -> Callable[[dict], None]:
    def change(inputs: dict) -> None:
        inputs[name] = inputs[name].clone()
        inputs[name][index] = value
    return change


def cast(name: str, dtype: torch.dtype) -> Callable[[dict], None]:
    def change(inputs: dict) -> None:
        inputs[name] = inputs[name].to(dtype)
    return change


BAD_INPUTS = [
    ("nan-x", changed("x", (3, 2), float("nan")), r"x \(shape \[12, 64\]\) holds 1 NaN or infinite values; expected finite node features"),
    ("inf-x", changed("x", (0, 0), float("inf")), r"x \(shape \[12, 64\]\) holds 1 NaN or infinite values; expected finite node features"),
    ("confidence-above-1", changed("edge_attr", 4, 1.5),
     r"edge_attr \(shape \[24\]\) holds values in \[.*, 1\.5\]; expected confidences in \[0, 1\]"),
    ("negative-confidence", changed("edge_attr", 4, -0.25), r"edge_attr .* holds values in \[-0\.25, .*\]"),
    ("nan-confidence", changed("edge_attr", 4, float("nan")),
     r"edge_attr \(shape \[24\]\) holds NaN; expected confidences in \[0, 1\]"),
    ("batch-skips-a-graph", changed("batch", slice(5, None), 2), r"batch \(shape \[12\]\) skips graph ids"),
    ("batch-starts-at-1", lambda inputs: inputs.update(batch=inputs["batch"] + 1),
     r"batch \(shape \[12\]\) skips graph ids: it starts at 1"),
    ("batch-not-sorted", lambda inputs: inputs.update(batch=inputs["batch"].flip(0)),
     r"batch \(shape \[12\]\) is not sorted"),
    ("edge-between-graphs", changed("edge_index", (1, 0), 11),
     r"edge_index \(shape \[2, 24\]\) has 1 edges between different graphs \(batch\[src\] != batch\[dst\]\)"),
    ("float64-x", cast("x", torch.float64), r"x has dtype torch\.float64; expected torch\.float32"),
    ("float64-confidences", cast("edge_attr", torch.float64),
     r"edge_attr has dtype torch\.float64; expected torch\.float32"),
]


@pytest.mark.parametrize("model_name", GRAPH_MODELS)
@pytest.mark.parametrize("change, message", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_model_inputs_name_the_tensor(model_name, change, message):
    batch = two_graphs()
    inputs = {name: batch[name] for name in ("x", "edge_index", "edge_type", "edge_attr", "batch")}
    model = build_model(model_name, node_features=F, num_relations=R, num_bases=2, num_levels=2)
    model(**inputs)  # the unchanged batch is fine
    change(inputs)
    with pytest.raises(ValueError, match=message):
        model(**inputs)


@pytest.mark.parametrize("domain", ["planning", "causal", "kg"])
@pytest.mark.parametrize("seed", [-1, 2**32, 1.5])
def test_every_domain_refuses_the_same_seeds(domain, seed, tmp_path):
    with pytest.raises(NSMError, match="seed must be an integer from 0 to 4294967295"):
        load_dataset(domain, tmp_path, "train", seed=seed)
