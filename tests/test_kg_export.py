from pathlib import Path

import pytest

from nsm.data.domains.kg.rules import FactIndex, derivation, twin_relations
from nsm.data.domains.kg.tsv import read_kg_dir
from nsm.data.domains.kg.world import MIN_WORLD_ENTITIES
from nsm.data.domains.kg.export import export_synthetic_kg
from nsm.errors import NSMError

FILES = ("train.txt", "valid.txt", "test.txt")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    return export_synthetic_kg(tmp_path_factory.mktemp("export") / "kg")


def triples(path: Path) -> set[tuple[str, str, str]]:
    return {tuple(line.split("\t")) for line in path.read_text(encoding="utf-8").splitlines()}


def test_writes_grail_pair_that_reads_back(exported):
    main, ind = exported
    assert ind == main.parent / "kg_ind"
    for directory in exported:
        assert sorted(p.name for p in directory.iterdir()) == sorted(FILES)
        for name in FILES:
            content = (directory / name).read_bytes()
            assert content.endswith(b"\n") and b"\r" not in content
            assert content.decode("utf-8").splitlines() == sorted(content.decode("utf-8").splitlines())
        read_kg_dir(directory)
    # GraIL evaluates the model trained on main on _ind: _ind must fit main's relation vocabulary.
    read_kg_dir(ind, relations=read_kg_dir(main).relations)


def test_worlds_are_entity_disjoint_and_share_relations(exported):
    main, ind = (read_kg_dir(directory) for directory in exported)
    assert not set(main.entities) & set(ind.entities)
    assert set(ind.relations) <= set(main.relations)


@pytest.mark.parametrize("world", [0, 1])
def test_queries_and_their_restatements_are_not_train_edges(exported, world):
    directory = exported[world]
    train, valid, test = (triples(directory / name) for name in FILES)
    assert valid and test and not valid & test
    for h, r, t in valid | test:
        for twin in twin_relations(r):
            assert (h, twin, t) not in train and (t, twin, h) not in train


@pytest.mark.parametrize("world", [0, 1])
def test_every_query_is_derivable_from_train(exported, world):
    files = read_kg_dir(exported[world])
    train = FactIndex(files.triples["train"])
    for split in ("val", "test"):
        for query in files.triples[split]:
            assert derivation(query, train, files.entities) is not None, query


def test_export_is_deterministic(tmp_path):
    first = export_synthetic_kg(tmp_path / "a", 60, 400, seed=1)
    again = export_synthetic_kg(tmp_path / "b", 60, 400, seed=1)
    other = export_synthetic_kg(tmp_path / "c", 60, 400, seed=2)
    for x, y, z in zip(first, again, other):
        assert all((x / name).read_bytes() == (y / name).read_bytes() for name in FILES)
        assert (x / "train.txt").read_bytes() != (z / "train.txt").read_bytes()


def test_overwrites_a_previous_export_and_refuses_anything_else(tmp_path):
    main, ind = export_synthetic_kg(tmp_path / "kg", 60, 400, seed=1)
    before = (main / "train.txt").read_bytes()
    export_synthetic_kg(tmp_path / "kg", 60, 400, seed=2)
    assert (main / "train.txt").read_bytes() != before

    (ind / "notes.md").write_text("mine")
    with pytest.raises(NSMError, match="notes.md"):
        export_synthetic_kg(tmp_path / "kg", 60, 400, seed=3)
    foreign = tmp_path / "other"
    foreign.mkdir()
    (foreign / "data.csv").write_text("x")
    with pytest.raises(NSMError, match="data.csv"):
        export_synthetic_kg(foreign)
    assert not (foreign / "train.txt").exists() and not (tmp_path / "other_ind").exists()


def test_refuses_too_small_a_world(tmp_path):
    with pytest.raises(NSMError, match=str(MIN_WORLD_ENTITIES)):
        export_synthetic_kg(tmp_path / "kg", num_entities=MIN_WORLD_ENTITIES - 1)
