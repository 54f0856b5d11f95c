"""The domain registry: every reasoning domain NSM trains on, each declared once.

A domain is one folder, ``nsm/data/domains/<name>/``, with the same files::

    __init__.py   its Domain declaration (nsm.data.domain): dataset, model shape, sizes, cost
    schema.py     its DomainSchema: relations (the relation budget), node types and their levels
    generator.py  its samples, and the oracle that labels each from its content
    dataset.py    its TripleDataset: parameters, checks, cache identity

(kg has more, one concern a file). ``DOMAINS`` are the generated domains, the ones ``nsm validate``
and the cloud runs train; ``FILE_DOMAINS`` read a user's files (``triples``: labelled triple graphs
in JSON Lines); :func:`trainable` is both, what ``--domain`` accepts. Adding a domain is a new folder and one entry in
``DOMAINS`` below (or :func:`register` for one defined elsewhere); the run configuration, the CLI,
the local runner, the cloud jobs and the benchmarks find it here.
"""

from __future__ import annotations

from nsm.data.domain import Domain
from nsm.data.domains import causal, kg, planning, triples
from nsm.errors import NSMError

DOMAINS: dict[str, Domain] = {domain.name: domain for domain in (planning.DOMAIN, causal.DOMAIN, kg.DOMAIN)}
FILE_DOMAINS: dict[str, Domain] = {triples.DOMAIN.name: triples.DOMAIN}


def trainable() -> dict[str, Domain]:
    """Every domain a run can train: the generated ones, then those read from files."""
    return {**DOMAINS, **FILE_DOMAINS}


def get_domain(name: str) -> Domain:
    """The registered domain ``name`` (generated or from files); NSMError naming them otherwise."""
    domains = trainable()
    if name not in domains:
        raise NSMError(f"unknown domain {name!r}; choose one of {', '.join(domains)}")
    return domains[name]


def domain_questions() -> str:
    """Each registered domain with the question its samples ask, for ``--domain``'s help."""
    return "; ".join(f"{name}: {domain.question}" for name, domain in trainable().items())


def register(domain: Domain) -> None:
    """Add a domain defined outside this package (the registered ones keep their names)."""
    if trainable().get(domain.name, domain) is not domain:
        raise NSMError(f"a domain named {domain.name!r} is registered already")
    if domain.schema.name != domain.name:
        raise NSMError(f"domain {domain.name!r} has the schema of {domain.schema.name!r}")
    DOMAINS[domain.name] = domain

