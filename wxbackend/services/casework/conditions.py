"""Branch conditions of a process definition, such as ``category == "法律援助" and amount > 5000``.

A definition is data a cadre may edit, so its conditions are evaluated by simpleeval — literals,
names, comparisons, boolean and arithmetic operators, ``in`` over a literal list, and a few pure
functions — never by ``eval``/``exec``: no attribute access (``().__class__``), no imports, no
randomness, bounded powers and string lengths. A condition is checked once when the definition
is saved (unknown names, bad syntax) so a running item never meets one that cannot be read.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from simpleeval import DEFAULT_OPERATORS, EvalWithCompoundTypes, InvalidExpression, NameNotDefined

from wxbackend.services.errors import InvalidInput

MAX_LENGTH = 500
# Pure helpers only: simpleeval's defaults include rand/randint, which would make a branch
# depend on luck.
FUNCTIONS = {"len": len, "int": int, "str": str, "abs": abs, "min": min, "max": max}


def _evaluator(names: Mapping[str, object]) -> EvalWithCompoundTypes:
    return EvalWithCompoundTypes(operators=dict(DEFAULT_OPERATORS), functions=dict(FUNCTIONS),
                      names=dict(names))


def check(expression: str, known: set[str]) -> str:
    """The expression, if it reads and names only ``known`` variables; else InvalidInput."""
    if not isinstance(expression, str) or not expression.strip() or len(expression) > MAX_LENGTH:
        raise InvalidInput(f"条件须为 1 至 {MAX_LENGTH} 个字符的表达式", code="invalid_condition")
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        raise InvalidInput(f"条件“{expression}”无法解析", code="invalid_condition") from None
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(FUNCTIONS)
    if used - known:
        raise InvalidInput(f"条件“{expression}”用到了未定义的字段：{', '.join(sorted(used - known))}",
                           code="invalid_condition")
    try:  # every feature the evaluator refuses, refused now rather than when an item runs
        _evaluator({name: 0 for name in known}).eval(expression)
    except (InvalidExpression, NameNotDefined) as exc:
        raise InvalidInput(f"条件“{expression}”不被允许：{exc}", code="invalid_condition") from None
    except (TypeError, ValueError, ZeroDivisionError, ArithmeticError):
        pass  # zeros for every field may not fit the expression; the values decide at run time
    return expression


def holds(expression: str, values: Mapping[str, object]) -> bool:
    """Whether the condition is true for an item's ``values``. A condition that cannot be
    evaluated for these values (a missing field, a type mismatch) is false, never an error that
    stops the item: the branch's default path is taken."""
    try:
        return bool(_evaluator(values).eval(expression))
    except (InvalidExpression, NameNotDefined, TypeError, ValueError, ArithmeticError):
        return False
