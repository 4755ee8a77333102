"""Outcome data: measures, category mappings, importers for the published crime files, population.

Each importer reads a file as it is published into a :class:`~registry.outcomes.common.ParsedCrime`
(or :class:`~registry.outcomes.common.ParsedPopulation`) without touching the database;
:mod:`registry.outcomes.store` compares it with what is stored and writes it in one transaction.
"""
