"""Validation of segment expressions: a boolean expression over profile columns, nothing else.

A segment's ``where`` is user text that ends up in a Spark plan, so it is checked before
anything runs, in three steps:

1. **text**: no ``;`` (a second statement) and no ``--`` or ``/* */`` comment outside quoted
   strings (comments are how a filter is cut short or hidden);
2. **tree**: Spark's own SQL parser (``sessionState.sqlParser.parseExpression``, reached
   through py4j) turns the text into an unresolved Catalyst expression, the very tree Spark
   would run, so there is no gap between what is checked and what runs. Statements (DDL, DML,
   ``SELECT``) do not parse as an expression. The tree is walked and every node must be of an
   allowed kind: literals, columns, comparisons, ``and``/``or``/``not``, arithmetic, ``in``,
   ``like``/``rlike``, ``is null``, ``case``, ``cast`` and calls of the functions in
   :data:`ALLOWED_FUNCTIONS`; subqueries, ``*`` and lambdas are refused by name;
3. **types**: the expression is analysed (not run) against the profile schema: every column
   must exist (the error lists close matches) and the result must be a boolean.

Every failure is a :class:`SegmentExpressionError` naming the segment and the problem.

Example:
    >>> validate_expression(spark, "lifecycle_stage = 'at_risk' and clv > 500",
    ...                     schema, segment="at_risk_high_value").columns     # doctest: +SKIP
    ('clv', 'lifecycle_stage')
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, StructType

from cdp_spark.errors import CdpError

# Functions a segment may call. Pure, deterministic, row-level functions only: no UDFs,
# no reflection (reflect, java_method), no file or table access, no aggregates.
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    {
        # text
        "lower", "upper", "trim", "ltrim", "rtrim", "length", "char_length", "substring",
        "substr", "concat", "concat_ws", "startswith", "endswith", "contains", "instr",
        "like", "ilike", "rlike", "regexp", "regexp_like", "split_part",
        # nulls and conditionals
        "coalesce", "nvl", "ifnull", "nullif", "if", "isnull", "isnotnull", "between",
        "greatest", "least",
        # numbers
        "abs", "round", "bround", "floor", "ceil", "ceiling", "sign", "pow", "power", "sqrt",
        "mod", "pmod", "log", "ln", "exp",
        # dates
        "current_date", "current_timestamp", "now", "datediff", "date_add", "date_sub",
        "add_months", "months_between", "date_diff", "to_date", "date_trunc", "trunc", "year",
        "month", "day", "dayofmonth", "dayofweek", "dayofyear", "weekofyear", "hour",
        "last_day",
        # arrays (identifier arrays, categories)
        "array_contains", "arrays_overlap", "size", "cardinality", "array", "element_at",
        "array_max", "array_min",
    }
)  # fmt: skip

# Names that parse as columns but are functions without parentheses in Spark SQL.
_NILADIC = frozenset({"current_date", "current_timestamp", "current_timezone"})

# Catalyst node kinds an expression may be made of (the parser's class names).
_ALLOWED_NODES: frozenset[str] = frozenset(
    {
        "Literal", "UnresolvedAttribute", "UnresolvedFunction", "UnresolvedExtractValue",
        "And", "Or", "Not", "EqualTo", "EqualNullSafe", "LessThan", "LessThanOrEqual",
        "GreaterThan", "GreaterThanOrEqual", "In", "IsNull", "IsNotNull", "IsTrue", "IsFalse",
        "IsUnknown", "IsNotTrue", "IsNotFalse", "IsNotUnknown", "Like", "ILike", "RLike",
        "LikeAll", "NotLikeAll", "LikeAny", "NotLikeAny", "Add", "Subtract", "Multiply",
        "Divide", "Remainder", "IntegralDivide", "UnaryMinus", "UnaryPositive", "CaseWhen",
        "Cast", "Concat", "Collate",
    }
)  # fmt: skip

_SUBQUERY_NODES = frozenset(
    {"ScalarSubquery", "Exists", "ListQuery", "InSubquery", "LateralSubquery"}
)
_LAMBDA_NODES = frozenset({"LambdaFunction", "UnresolvedNamedLambdaVariable"})


class SegmentExpressionError(CdpError):
    """A segment's ``where`` is not a valid boolean expression over profile columns."""

    def __init__(self, segment: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"segment {segment!r}: {problem}", hint=hint)
        self.segment = segment
        self.problem = problem


@dataclass(frozen=True)
class ValidatedExpression:
    """An expression that passed every check, with the columns and functions it uses.

    Example:
        >>> ValidatedExpression("clv > 1", ("clv",), ()).columns
        ('clv',)
    """

    text: str
    columns: tuple[str, ...]
    functions: tuple[str, ...]


def check_text(text: str, *, segment: str) -> None:
    """Refuse empty text, a ``;`` and comments outside quoted strings.

    Spark's parser would silently drop a comment; refusing them keeps the text a user reads
    equal to the expression that runs.

    Example:
        >>> check_text("name = 'a--b'", segment="s")       # inside quotes: fine
        >>> check_text("clv > 1 -- and consent_email", segment="s")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        cdp_spark.profiles.expressions.SegmentExpressionError: segment 's': comments are not ...
    """
    if not text.strip():
        raise SegmentExpressionError(segment, "the expression is empty")
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote != "`":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
        elif ch == ";":
            raise SegmentExpressionError(
                segment,
                f"';' at position {i}: one expression only, no further statements",
                hint='a segment is a boolean expression such as "clv > 500 and consent_email"',
            )
        elif text.startswith("--", i) or text.startswith("/*", i):
            raise SegmentExpressionError(
                segment,
                f"comments are not allowed in an expression ({text[i : i + 2]!r} at position {i})",
                hint="describe the segment in its `description` key instead",
            )
        i += 1
    if quote:
        raise SegmentExpressionError(segment, f"unclosed {quote} quote")


def parse_expression(spark: SparkSession, text: str, *, segment: str) -> Any:
    """The unresolved Catalyst expression of ``text`` (a py4j object), parsed by Spark.

    Example:
        >>> parse_expression(spark, "clv > 1", segment="s").getClass().getSimpleName()
        ...                                                              # doctest: +SKIP
        'GreaterThan'
    """
    parser = spark._jsparkSession.sessionState().sqlParser()
    try:
        return parser.parseExpression(text)
    except Exception as exc:  # py4j wraps Spark's ParseException
        detail = _first_line(str(exc))
        raise SegmentExpressionError(
            segment,
            f"not a single SQL expression: {detail}",
            hint="statements (SELECT, DROP, INSERT...) are not allowed; write a boolean "
            "expression over profile columns, e.g. \"lifecycle_stage = 'active' and clv > 100\"",
        ) from None


def referenced_names(tree: Any, *, segment: str) -> tuple[set[str], set[str]]:
    """Walk a parsed expression: the columns and functions it uses; refuse other constructs.

    Example:
        >>> referenced_names(parse_expression(spark, "lower(city) = 'x'", segment="s"),
        ...                  segment="s")                                 # doctest: +SKIP
        ({'city'}, {'lower'})
    """
    nodes: list[tuple[str, Any]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        nodes.append((node.getClass().getSimpleName(), node))
        stack.extend(_seq(node.children()))
    kinds = {kind for kind, _ in nodes}
    # The most telling problem first: a subquery inside a refused function is a subquery.
    if kinds & _SUBQUERY_NODES:
        raise SegmentExpressionError(
            segment,
            "subqueries are not allowed",
            hint="a segment filters profile rows; other tables are not reachable from it",
        )
    if kinds & _LAMBDA_NODES:
        raise SegmentExpressionError(segment, "lambda functions (x -> ...) are not allowed")
    if "UnresolvedStar" in kinds:
        raise SegmentExpressionError(segment, "'*' is not allowed; name the columns")
    columns: set[str] = set()
    functions: set[str] = set()
    for kind, node in nodes:
        if kind not in _ALLOWED_NODES:
            raise SegmentExpressionError(
                segment, f"{kind} is not allowed in a segment expression ({_node_text(node)})"
            )
        if kind == "UnresolvedAttribute":
            columns.add(str(_seq(node.nameParts())[0]))
        elif kind == "UnresolvedFunction":
            parts = [str(p) for p in _seq(node.nameParts())]
            name = parts[-1].lower()
            if len(parts) > 1 or name not in ALLOWED_FUNCTIONS:
                raise SegmentExpressionError(
                    segment,
                    f"function {'.'.join(parts)!r} is not allowed",
                    hint="allowed functions: " + ", ".join(sorted(ALLOWED_FUNCTIONS)),
                )
            if node.isDistinct() or _is_defined(node.filter()):
                raise SegmentExpressionError(
                    segment, f"aggregate forms of {name}() are not allowed"
                )
            functions.add(name)
    return columns, functions


def validate_expression(
    spark: SparkSession, text: str, schema: StructType, *, segment: str
) -> ValidatedExpression:
    """Check that ``text`` is a boolean expression over the columns of ``schema``.

    Raises:
        SegmentExpressionError: naming the segment and the problem (unknown column with close
            matches, not a boolean, subquery, statement, comment, function not allowed).

    Example:
        >>> validate_expression(spark, "clv > 500 and consent_email", profiles.schema,
        ...                     segment="vip").columns                     # doctest: +SKIP
        ('clv', 'consent_email')
    """
    check_text(text, segment=segment)
    tree = parse_expression(spark, text, segment=segment)
    columns, functions = referenced_names(tree, segment=segment)
    known = {f.name.lower(): f.name for f in schema.fields}
    for column in sorted(columns):
        if column.lower() in known or column.lower() in _NILADIC:
            continue
        close = difflib.get_close_matches(column.lower(), list(known), n=3, cutoff=0.6)
        raise SegmentExpressionError(
            segment,
            f"unknown column {column!r}"
            + (f"; did you mean {', '.join(known[c] for c in close)}?" if close else ""),
            hint="profile columns: " + ", ".join(f.name for f in schema.fields),
        )
    empty = spark.createDataFrame([], schema)
    try:
        result_type = empty.select(F.expr(text).alias("_segment")).schema["_segment"].dataType
    except Exception as exc:  # AnalysisException: wrong argument types and the like
        raise SegmentExpressionError(segment, _first_line(str(exc))) from None
    if not isinstance(result_type, BooleanType):
        raise SegmentExpressionError(
            segment,
            f"the expression gives a {result_type.simpleString()}, not a boolean",
            hint='compare it to something, e.g. "clv > 500" rather than "clv"',
        )
    resolved = tuple(sorted(known.get(c.lower(), c) for c in columns if c.lower() in known))
    return ValidatedExpression(text, resolved, tuple(sorted(functions)))


def _seq(scala_seq: Any) -> list[Any]:
    return [scala_seq.apply(i) for i in range(scala_seq.size())]


def _is_defined(option: Any) -> bool:
    return bool(option.isDefined())


def _node_text(node: Any) -> str:
    try:
        return str(node.sql())[:80]
    except Exception:
        return str(node.toString())[:80]


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else "parse error"
