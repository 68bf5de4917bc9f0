"""Segment expressions: every kind of rejection, and the expressions a marketer writes."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from cdp_spark.errors import CdpError
from cdp_spark.profiles.expressions import (
    SegmentExpressionError,
    check_text,
    validate_expression,
)
from cdp_spark.profiles.segments import SCORE_FIELDS

PROFILE_SCHEMA = StructType(
    [
        StructField("person_id", StringType()),
        StructField("email", StringType()),
        StructField("emails", ArrayType(StringType())),
        StructField("phones", ArrayType(StringType())),
        StructField("city", StringType()),
        StructField("lifecycle_stage", StringType()),
        StructField("clv", DoubleType()),
        StructField("revenue", DoubleType()),
        StructField("orders_count", LongType()),
        StructField("last_purchase_date", DateType()),
        StructField("consent_email", BooleanType()),
        StructField("consent_sms", BooleanType()),
        StructField("consent_ads", BooleanType()),
        StructField("run_date", DateType()),
        *SCORE_FIELDS,
    ]
)


@pytest.mark.parametrize(
    ("where", "columns", "functions"),
    [
        (
            "lifecycle_stage = 'at_risk' and clv > 500 and consent_email",
            ("clv", "consent_email", "lifecycle_stage"),
            (),
        ),
        ("churn_decile >= 9 and propensity_score > 0.5", ("churn_decile", "propensity_score"), ()),
        (
            "datediff(current_date(), last_purchase_date) between 30 and 90",
            ("last_purchase_date",),
            ("between", "current_date", "datediff"),
        ),
        ("last_purchase_date < current_date - 30", ("last_purchase_date",), ()),
        (
            "lower(city) in ('moscow', 'kazan') and email like '%@gmail.com'",
            ("city", "email"),
            ("lower",),
        ),
        (
            "array_contains(emails, 'a@x.ru') or size(phones) > 1",
            ("emails", "phones"),
            ("array_contains", "size"),
        ),
        (
            "case when lifecycle_stage = 'new' then orders_count = 1 else coalesce(clv, 0) > 0 end",
            ("clv", "lifecycle_stage", "orders_count"),
            ("coalesce",),
        ),
        (
            "not consent_sms and email is not null and email rlike '^[a-z]'",
            ("consent_sms", "email"),
            (),
        ),
        ("CLV > 10 AND Lifecycle_Stage = 'active'", ("clv", "lifecycle_stage"), ()),
        ("city = 'a--b; /* c */'", ("city",), ()),
        ("round(abs(revenue), 0) >= cast('100' as double)", ("revenue",), ("abs", "round")),
    ],
)
def test_valid_expressions(
    spark: SparkSession, where: str, columns: tuple[str, ...], functions: tuple[str, ...]
) -> None:
    got = validate_expression(spark, where, PROFILE_SCHEMA, segment="ok")
    assert (got.columns, got.functions) == (columns, functions)


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        # unknown columns, with close matches
        (
            "lifecycle_stag = 'new'",
            "unknown column 'lifecycle_stag'; did you mean lifecycle_stage?",
        ),
        ("cvl > 5", "unknown column 'cvl'; did you mean clv?"),
        ("favourite_colour = 'red'", "unknown column 'favourite_colour'"),
        # not a boolean
        ("clv", "the expression gives a double, not a boolean"),
        ("lifecycle_stage", "the expression gives a string, not a boolean"),
        ("clv + 1", "the expression gives a double, not a boolean"),
        # subqueries
        (
            "person_id in (select person_id from gold.customer_profiles)",
            "subqueries are not allowed",
        ),
        ("exists (select 1)", "subqueries are not allowed"),
        ("(select max(clv) from gold.customer_profiles) < clv", "subqueries are not allowed"),
        # statements and multiple statements
        ("drop table gold.customer_profiles", "not a single SQL expression"),
        ("delete from gold.customer_profiles", "not a single SQL expression"),
        ("select * from gold.customer_profiles", "not a single SQL expression"),
        ("clv > 1; drop table gold.customer_profiles", "';' at position 7"),
        # comments used to hide or cut a filter
        ("consent_email -- and clv > 500", "comments are not allowed in an expression ('--'"),
        ("clv > 500 /* and consent_email */", "comments are not allowed in an expression ('/*'"),
        # functions outside the allow-list, reflection, UDF-like names, aggregates
        (
            "reflect('java.lang.Runtime', 'getRuntime') is not null",
            "function 'reflect' is not allowed",
        ),
        ("java_method('java.lang.System', 'exit', 0) = 1", "function 'java_method' is not allowed"),
        ("rand() > 0.5", "function 'rand' is not allowed"),
        ("max(clv) > 1", "function 'max' is not allowed"),
        ("default.my_udf(clv)", "function 'default.my_udf' is not allowed"),
        ("count(distinct email) > 1", "function 'count' is not allowed"),
        # other constructs
        ("exists(emails, e -> e like '%x')", "lambda functions (x -> ...) are not allowed"),
        ("", "the expression is empty"),
        ("city = 'x", "unclosed ' quote"),
        ("upper(clv, 2) = 'x'", "upper"),
    ],
)
def test_rejected_expressions(spark: SparkSession, where: str, problem: str) -> None:
    with pytest.raises(SegmentExpressionError) as err:
        validate_expression(spark, where, PROFILE_SCHEMA, segment="bad_one")
    assert isinstance(err.value, CdpError)
    assert str(err.value).startswith("segment 'bad_one': ")
    assert problem in err.value.problem


def test_unknown_column_hint_lists_the_profile_columns(spark: SparkSession) -> None:
    with pytest.raises(SegmentExpressionError) as err:
        validate_expression(spark, "nope = 1", PROFILE_SCHEMA, segment="s")
    assert err.value.hint is not None
    assert "lifecycle_stage" in err.value.hint and "churn_decile" in err.value.hint


def test_lambda_is_refused_even_inside_an_allowed_function(spark: SparkSession) -> None:
    with pytest.raises(SegmentExpressionError, match="lambda functions"):
        validate_expression(
            spark, "size(filter(emails, e -> true)) > 0", PROFILE_SCHEMA, segment="s"
        )


def test_star_is_refused(spark: SparkSession) -> None:
    with pytest.raises(SegmentExpressionError, match=r"'\*' is not allowed"):
        validate_expression(spark, "size(array(*)) > 0", PROFILE_SCHEMA, segment="s")


def test_quoted_semicolons_and_dashes_are_text() -> None:
    check_text("city = 'a;b' and email like '%--%' and `x;y` = \"--\"", segment="s")
    with pytest.raises(SegmentExpressionError, match="';' at position 11"):
        check_text("city = 'a' ;", segment="s")
