"""A real SOQL subset: parse, then filter/sort/limit/project records the way the query resource does.

Supported: SELECT fields (relationship paths, ``COUNT()``), FROM, WHERE with = != <> < <= > >= IN / NOT IN
LIKE, AND/OR/NOT and parentheses, datetime/date literals; ORDER BY (ASC/DESC, NULLS FIRST/LAST); LIMIT,
OFFSET. Errors carry the real message shapes (SOQL and SOSL Reference; MALFORMED_QUERY, INVALID_FIELD,
INVALID_TYPE).
"""

from forwarder.testing.simulator.soql.evaluate import execute
from forwarder.testing.simulator.soql.lexer import Query, Schema, SoqlError
from forwarder.testing.simulator.soql.parser import parse

__all__ = ["Query", "Schema", "SoqlError", "execute", "parse"]
