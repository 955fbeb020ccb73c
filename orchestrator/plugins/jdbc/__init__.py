"""``io.kestra.plugin.jdbc.*``: SQL queries on PostgreSQL, MySQL/MariaDB, SQLite and DuckDB.

Each database has its module (``postgresql``, ``mysql``, ``sqlite``, ``duckdb``) holding its
``Query`` and ``Queries`` types; the shared behaviour (URL checks, ``fetchType``, ``:name``
parameters, value conversion, ``Queries`` transactions) lives in :mod:`._base`.
"""
