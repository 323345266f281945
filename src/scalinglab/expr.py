"""The expression language of ``--where``, ``--train-where`` and ``--map``: a small, safe subset of Python.

An expression is parsed with :mod:`ast` and checked against a whitelist before anything is evaluated;
evaluation works on NumPy arrays taken from a DataFrame's columns and never reaches Python objects,
attributes or modules. It accepts:

* column names (``loss``), and any column name in backticks (```Training FLOP```);
* numbers (``1e21``, ``6``), ``True`` and ``False``;
* arithmetic ``+ - * / // % **`` and unary ``+ -``;
* comparisons ``< <= > >= == !=``, chained too (``1e9 <= N < 1e10``); a quoted string only as an operand
  of a comparison (``run == 'a-1'``);
* boolean ``and or not`` and ``& | ~`` on boolean arrays (``&`` and ``|`` bind like ``and`` and ``or``,
  as in pandas, so ``C < 1e21 & N > 1e6`` needs no parentheses); parentheses;
* the functions in :data:`FUNCTIONS`, called with positional arguments: ``log exp sqrt ...``,
  ``minimum(a, b)`` and ``maximum(a, b)`` (elementwise; ``min`` and ``max`` are the same), and
  ``rank(x)`` / ``rank(x, by)``: the rank of each value, 1 for the smallest, ties averaged, within the
  groups of equal ``by`` when given (``rank(-loss) > 5``: all but the five highest losses), and
  ``quantile(x, q)``, the q-quantile of the values of ``x`` (``N < quantile(N, 0.8)``).

Anything else (attribute access, subscripts, other calls, keyword arguments, ``@`` names, lambdas,
comprehensions, dunder names, strings outside comparisons, ...) is one :class:`DataError` line naming the
expression and the construct.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError

#: Longest accepted expression, in characters (a guard against pathological input).
MAX_LENGTH = 4000


def _rank(x: Any, by: Any = None) -> np.ndarray:
    s = pd.Series(np.asarray(x))
    if by is None:
        return np.asarray(s.rank(method="average").to_numpy(dtype=float))
    keys = pd.Series(np.broadcast_to(np.asarray(by), s.shape))
    return np.asarray(s.groupby(keys, sort=False, dropna=False).rank(method="average").to_numpy(dtype=float))


def _quantile(x: Any, q: Any) -> Any:
    if np.ndim(q) != 0:
        raise ValueError("quantile(x, q) takes one number q in [0, 1]")
    values = np.asarray(x, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return np.float64(np.nan)
    return np.quantile(values, float(q))


def _elementwise(f: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def g(*args: Any) -> Any:
        out = args[0]
        for a in args[1:]:
            out = f(out, a)
        return out
    return g


#: name -> (function, fewest arguments, most arguments, description)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int, str]] = {
    "log": (np.log, 1, 1, "natural logarithm"),
    "log10": (np.log10, 1, 1, "base-10 logarithm"),
    "log2": (np.log2, 1, 1, "base-2 logarithm"),
    "exp": (np.exp, 1, 1, "exponential"),
    "sqrt": (np.sqrt, 1, 1, "square root"),
    "abs": (np.abs, 1, 1, "absolute value"),
    "isnan": (np.isnan, 1, 1, "True where a value is missing (NaN)"),
    "minimum": (_elementwise(np.minimum), 2, 8, "elementwise minimum of its arguments"),
    "maximum": (_elementwise(np.maximum), 2, 8, "elementwise maximum of its arguments"),
    "min": (_elementwise(np.minimum), 2, 8, "the same as minimum"),
    "max": (_elementwise(np.maximum), 2, 8, "the same as maximum"),
    "quantile": (_quantile, 2, 2, "quantile(x, q): the q-quantile of x's values (missing ones skipped), "
                                  "pandas' x.quantile(q)"),
    "rank": (_rank, 1, 2, "rank(x): 1 for the smallest value, ties averaged; rank(x, by): within groups of by"),
}

_NUMERIC_FUNCTIONS = {"log", "log10", "log2", "exp", "sqrt", "abs", "isnan"}

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide, ast.Mod: np.mod, ast.Pow: np.power,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
    ast.Eq: np.equal, ast.NotEq: np.not_equal,
}
_BITOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.BitAnd: np.logical_and, ast.BitOr: np.logical_or,
}

_CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access (.name)",
    ast.Subscript: "subscripts ([...])",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.IfExp: "conditional expressions (x if c else y)",
    ast.NamedExpr: "assignment (:=)",
    ast.Starred: "starred arguments",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}

ALLOWED = ("column names (backticks for names with spaces), numbers, + - * / // % **, comparisons, "
           "and/or/not, & | ~, parentheses and the functions " + ", ".join(FUNCTIONS))


class _Refused(Exception):
    def __init__(self, construct: str) -> None:
        super().__init__(construct)
        self.construct = construct


def _prepare(text: str) -> tuple[str, dict[str, str]]:
    """Replace backtick-quoted names by placeholders and ``&``/``|`` by ``and``/``or`` (pandas'
    precedence), outside string literals. Returns the Python source and placeholder -> column name."""
    stem = "bq"
    while stem in text:
        stem += "q"
    out: list[str] = []
    names: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif c == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise _Refused("an unclosed backtick")
            name = text[i + 1:j]
            if not name:
                raise _Refused("an empty backtick name")
            key = next((k for k, v in names.items() if v == name), None)
            if key is None:
                key = f"{stem}{len(names)}"
                names[key] = name
            out.append(f" {key} ")
            i = j + 1
        elif c == "@":
            raise _Refused("'@' names (pandas' local variables)")
        elif c == "&":
            out.append(" and ")
            i += 1
        elif c == "|":
            out.append(" or ")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out), names


class Expression:
    """A checked expression, ready to evaluate on DataFrames."""

    def __init__(self, text: str, what: str = "expression", *, label: str | None = None) -> None:
        self.text = text
        self.label = label if label is not None else f"The {what} {text!r}"
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{self.label} is empty; expected an expression over the columns.")
        if len(text) > MAX_LENGTH:
            raise DataError(f"{self.label[:200]}... is {len(text)} characters long; expressions may have at most "
                            f"{MAX_LENGTH}.")
        try:
            source, self.backticks = _prepare(text)
            try:
                tree = ast.parse(source.strip(), mode="eval")
            except SyntaxError as exc:
                raise _Refused(f"invalid syntax ({exc.msg})") from None
            except (ValueError, RecursionError, MemoryError):
                raise _Refused("invalid syntax") from None
            self.tree = tree.body
            self._check(self.tree, in_compare=False)
        except _Refused as exc:
            raise DataError(self._refusal(exc.construct)) from None
        except RecursionError:
            raise DataError(self._refusal("too deep nesting")) from None

    def _refusal(self, construct: str) -> str:
        return (f"{self.label} is not allowed: it uses {construct}; expressions accept "
                f"{ALLOWED} (README, 'Expressions').")

    def _name(self, node: ast.Name) -> str:
        return self.backticks.get(node.id, node.id)

    def _check(self, node: ast.AST, *, in_compare: bool) -> None:
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or (isinstance(v, (int, float)) and not isinstance(v, complex)):
                return
            if isinstance(v, str):
                if in_compare:
                    return
                raise _Refused("a string outside a comparison")
            raise _Refused(f"the constant {v!r}" if v is None or v is Ellipsis else f"a {type(v).__name__} constant")
        if isinstance(node, ast.Name):
            if node.id in self.backticks:
                return
            if node.id.startswith("__") or node.id.endswith("__"):
                raise _Refused(f"the dunder name {node.id!r}")
            return
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS and type(node.op) not in _BITOPS:
                raise _Refused(f"the operator {type(node.op).__name__}")
            self._check(node.left, in_compare=False)
            self._check(node.right, in_compare=False)
            return
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.UAdd, ast.USub, ast.Not, ast.Invert)):
                raise _Refused(f"the operator {type(node.op).__name__}")
            self._check(node.operand, in_compare=False)
            return
        if isinstance(node, ast.BoolOp):
            for operand in node.values:
                self._check(operand, in_compare=False)
            return
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _CMPOPS:
                    raise _Refused(f"the comparison {type(op).__name__} (in, not in, is, is not)")
            for operand in [node.left, *node.comparators]:
                self._check(operand, in_compare=True)
            return
        if isinstance(node, ast.Call):
            f = node.func
            if not isinstance(f, ast.Name) or f.id in self.backticks or f.id not in FUNCTIONS:
                what = f"a call of {f.id!r}" if isinstance(f, ast.Name) and f.id not in self.backticks else "a call"
                if isinstance(f, ast.Attribute):
                    what = f"a method call (.{f.attr}(...))"
                raise _Refused(f"{what}, which is not one of the functions")
            if node.keywords:
                raise _Refused(f"keyword arguments (in {f.id}(...))")
            lo, hi = FUNCTIONS[f.id][1], FUNCTIONS[f.id][2]
            if not lo <= len(node.args) <= hi:
                want = str(lo) if lo == hi else f"{lo} to {hi}"
                raise _Refused(f"{f.id}() with {len(node.args)} arguments (it takes {want})")
            for a in node.args:
                self._check(a, in_compare=False)
            return
        raise _Refused(_CONSTRUCTS.get(type(node), f"a {type(node).__name__} expression"))

    # -- evaluation ---------------------------------------------------------------------------------

    def evaluate(self, df: pd.DataFrame) -> Any:
        """The expression's value over ``df``: an array of ``len(df)`` values, or a scalar."""
        columns = {str(c): c for c in df.columns}
        try:
            with np.errstate(all="ignore"):
                return self._eval(self.tree, df, columns)
        except DataError:
            raise
        except RecursionError:
            raise DataError(self._refusal("too deep nesting")) from None
        except Exception as exc:  # noqa: BLE001  (numpy raises many types for ill-typed operands)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DataError(f"{self.label} could not be evaluated: {type(exc).__name__}: {first}") from None

    def _column(self, name: str, df: pd.DataFrame, columns: Mapping[str, Any]) -> np.ndarray:
        if name not in columns:
            raise DataError(f"{self.label}: no column {name!r} in the data "
                            f"(columns: {list(df.columns)}).")
        s = df[columns[name]]
        if isinstance(s, pd.DataFrame):
            raise DataError(f"{self.label} names the column {name!r}, which the data has more than once.")
        arr: np.ndarray = np.asarray(s.to_numpy())
        if arr.dtype.kind in "iu":
            return np.asarray(arr, dtype=float)
        if arr.dtype.kind == "O":
            numeric = pd.to_numeric(s, errors="coerce")
            if not (numeric.isna() & s.notna()).any() and not s.map(lambda v: isinstance(v, str)).any():
                return np.asarray(numeric.to_numpy(dtype=float))
        return arr

    def _bool(self, value: Any, op: str) -> Any:
        arr = np.asarray(value)
        if arr.dtype != bool:
            raise DataError(f"{self.label} could not be evaluated: {op} needs true/false operands "
                            "(comparisons, e.g. (C < 1e21) & (N > 1e6)).")
        return value

    def _eval(self, node: ast.AST, df: pd.DataFrame, columns: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool):
                return np.bool_(v)
            if isinstance(v, str):
                return v
            assert isinstance(v, (int, float))   # _check allowed nothing else
            return np.float64(float(v))
        if isinstance(node, ast.Name):
            return self._column(self._name(node), df, columns)
        if isinstance(node, ast.BinOp):
            left = self._eval(node.left, df, columns)
            right = self._eval(node.right, df, columns)
            bit = _BITOPS.get(type(node.op))
            if bit is not None:   # not reached after _prepare; kept for a tree built by hand
                return bit(self._bool(left, "&/|"), self._bool(right, "&/|"))
            return _BINOPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, df, columns)
            if isinstance(node.op, ast.USub):
                return np.negative(v)
            if isinstance(node.op, ast.UAdd):
                return np.positive(v)
            return np.logical_not(self._bool(v, "not/~"))
        if isinstance(node, ast.BoolOp):
            values = [self._bool(self._eval(v, df, columns), "and/or (&/|)") for v in node.values]
            f = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = values[0]
            for v in values[1:]:
                out = f(out, v)
            return out
        if isinstance(node, ast.Compare):
            operands = [self._eval(v, df, columns) for v in [node.left, *node.comparators]]
            result: Any = None
            for op, a, b in zip(node.ops, operands, operands[1:]):
                r = _compare(type(op), a, b)
                result = r if result is None else np.logical_and(result, r)
            return result
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            name = node.func.id
            args = [self._eval(a, df, columns) for a in node.args]
            if name in _NUMERIC_FUNCTIONS:
                args = [np.asarray(a, dtype=float) for a in args]
            if name == "rank":
                args = [np.broadcast_to(np.asarray(a), (len(df),)) for a in args]
            return FUNCTIONS[name][0](*args)
        raise DataError(self._refusal(type(node).__name__))  # pragma: no cover  (_check refused it)


def _compare(op: type[ast.cmpop], a: Any, b: Any) -> Any:
    if isinstance(a, str) or isinstance(b, str):
        # a string against a column: elementwise on an object array (numpy's string ufuncs refuse mixes)
        arr, s, flip = (np.asarray(b, dtype=object), a, True) if isinstance(a, str) else (np.asarray(a, dtype=object), b, False)
        if isinstance(a, str) and isinstance(b, str):
            return np.bool_(_CMPOPS[op](np.asarray(a, dtype=object), b))
        if op in (ast.Eq, ast.NotEq):
            eq = np.fromiter((v == s for v in arr.ravel()), dtype=bool, count=arr.size).reshape(arr.shape)
            return eq if op is ast.Eq else ~eq
        f = _CMPOPS[op]
        return np.fromiter((bool(f(s, v)) if flip else bool(f(v, s)) for v in arr.ravel()), dtype=bool,
                           count=arr.size).reshape(arr.shape)
    return _CMPOPS[op](a, b)


def compile_expression(text: str, what: str = "expression") -> Expression:
    """Parse and check ``text``; a :class:`DataError` names the expression and the refused construct."""
    return Expression(text, what)


def evaluate(text: str, df: pd.DataFrame, what: str = "expression") -> Any:
    """Check ``text`` and evaluate it over the columns of ``df``."""
    return Expression(text, what).evaluate(df)
