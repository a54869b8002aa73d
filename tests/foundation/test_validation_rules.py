"""Every validation rule, each with a bad definition: the code, the message and file:line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fsgen.loader import check

HEADER = """\
from fsgen import (Entity, FeatureGroup, FeatureSet, Fractional, Integral, List, Offline,
                   Online, Set, String, Throughput, Vector, on_demand)  # noqa: F401
# definitions under test start on line 4
"""

GROUP = """\
customer = Entity("customer_id", String, description="c")
g = FeatureGroup("grp", entity=customer, event_time="ts", owner="o", description="d")
"""

OK_FEATURE = """\
@g.feature(Integral, description="fine")
def fine(x: int) -> int:
    return x
"""

# (name, body after HEADER, code, line, message fragment)
CASES: list[tuple[str, str, str, int, str]] = [
    ("import error", GROUP + "raise RuntimeError('boom')\n", "FS100", 6, "RuntimeError: boom"),
    ("syntax error", GROUP + "def broken(:\n", "FS100", 6, "SyntaxError"),
    (
        "duplicate group",
        GROUP + OK_FEATURE + 'h = FeatureGroup("grp", entity=customer, '
        'event_time="ts", owner="o", description="d")\n',
        "FS101",
        9,
        "duplicate feature group",
    ),
    (
        "duplicate feature",
        GROUP + OK_FEATURE + '@g.feature(Integral, description="x", '
        'name="fine")\ndef other(x: int) -> int:\n    return x\n',
        "FS101",
        9,
        "duplicate feature in group 'grp' name 'fine'",
    ),
    (
        "bad group name",
        GROUP.replace('"grp"', '"bad name!"') + OK_FEATURE,
        "FS102",
        5,
        "feature group name 'bad name!'",
    ),
    (
        "bad feature name",
        GROUP + '@g.feature(Integral, description="x", name="-x")\n'
        "def f(x: int) -> int:\n    return x\n",
        "FS102",
        6,
        "feature name '-x'",
    ),
    (
        "reserved name",
        GROUP + '@g.feature(Integral, description="x")\n'
        "def write_time(x: int) -> int:\n    return x\n",
        "FS103",
        6,
        "reserved name",
    ),
    (
        "unknown input",
        GROUP + '@g.feature(Fractional, description="x")\n'
        "def avg(total: float, tenure) -> float:\n    return total / tenure\n",
        "FS104",
        6,
        "feature 'avg' depends on 'tenure', which is not defined",
    ),
    (
        "varargs",
        GROUP + '@g.feature(Integral, description="x")\ndef f(*xs: int) -> int:\n    return 1\n',
        "FS104",
        6,
        "*xs is not allowed",
    ),
    (
        "nested function",
        GROUP + "def outer():\n    @g.feature(Integral, description='x')\n"
        "    def inner(x: int) -> int:\n        return x\n    return inner\nouter()\n",
        "FS104",
        7,
        "must be defined at module level",
    ),
    (
        "unsupported raw type",
        GROUP + '@g.feature(Integral, description="x")\ndef f(x: dict) -> int:\n    return 1\n',
        "FS105",
        6,
        "unsupported type dict",
    ),
    (
        "conflicting raw types",
        GROUP + OK_FEATURE + '@g.feature(Integral, description="y")\n'
        "def f2(x: str) -> int:\n    return 1\n",
        "FS105",
        9,
        "raw field 'x' is str here but int",
    ),
    (
        "cycle",
        GROUP + '@g.feature(Integral, description="a")\ndef a(b: int) -> int:\n'
        '    return b\n@g.feature(Integral, description="b")\ndef b(a: int) -> int:\n'
        "    return a\n",
        "FS106",
        6,
        "dependency cycle in group 'grp': a -> b -> a",
    ),
    (
        "no return annotation",
        GROUP + '@g.feature(Integral, description="x")\ndef f(x: int):\n    return x\n',
        "FS107",
        6,
        "has no return annotation",
    ),
    (
        "return mismatch",
        GROUP + '@g.feature(Integral, description="x")\ndef f(x: int) -> str:\n    return str(x)\n',
        "FS107",
        6,
        "declared Integral but returns str",
    ),
    (
        "dtype not a dtype",
        GROUP + '@g.feature(int, description="x")\ndef f(x: int) -> int:\n    return x\n',
        "FS107",
        6,
        "must be an fsgen dtype",
    ),
    (
        "missing owner",
        GROUP.replace('owner="o"', 'owner=""') + OK_FEATURE,
        "FS108",
        5,
        "group 'grp' has no owner",
    ),
    (
        "missing group description",
        GROUP.replace('description="d"', 'description=""') + OK_FEATURE,
        "FS108",
        5,
        "group 'grp' has no description",
    ),
    (
        "missing feature description",
        GROUP + "@g.feature(Integral)\ndef f(x: int) -> int:\n    return x\n",
        "FS108",
        6,
        "feature 'f' has no description",
    ),
    (
        "feature set unknown feature",
        GROUP + OK_FEATURE + 'fs = FeatureSet("m", ["nope"], description="d", owner="o")\n',
        "FS109",
        9,
        "'nope' is not a known feature",
    ),
    (
        "feature set wrong keys",
        GROUP + OK_FEATURE + 'fs = FeatureSet("m", [fine], keys={g: ("a", "b")})\n',
        "FS109",
        9,
        "keyed by 1 column(s)",
    ),
    (
        "feature set missing default",
        GROUP + OK_FEATURE + 'fs = FeatureSet("m", [fine], missing="default")\n',
        "FS109",
        9,
        "no default for 'fine'",
    ),
    (
        "feature set unknown group key",
        GROUP + OK_FEATURE + 'fs = FeatureSet("m", [fine], keys={"other": "k"})\n',
        "FS109",
        9,
        "keys name unknown group 'other'",
    ),
    (
        "event time integral",
        GROUP.replace('event_time="ts"', 'event_time="ts", event_time_type=Integral') + OK_FEATURE,
        "FS110",
        5,
        "must be String (ISO-8601 UTC)",
    ),
    (
        "fractional identifier",
        GROUP.replace("String,", "Fractional,") + OK_FEATURE,
        "FS110",
        4,
        "a record identifier must be String or Integral",
    ),
    (
        "feature named like identifier",
        GROUP + '@g.feature(String, description="x")\n'
        "def customer_id(customer_id: str) -> str:\n    return customer_id\n",
        "FS111",
        6,
        "same name as the identifier or event-time field of group 'grp'",
    ),
    (
        "unknown pii",
        GROUP + '@g.feature(Integral, description="x", pii="secret")\n'
        "def f(x: int) -> int:\n    return x\n",
        "FS112",
        6,
        "PII class 'secret'",
    ),
    (
        "ambiguous on-demand",
        GROUP + OK_FEATURE + 'h = FeatureGroup("grp2", entity=customer, '
        'event_time="ts", owner="o", description="d")\n@h.feature(Integral, description="x", '
        'name="fine")\ndef fine2(x: int) -> int:\n    return x\n'
        '@on_demand(Integral, sources=[g, h], description="x")\n'
        "def od(fine: int) -> int:\n    return fine\n",
        "FS113",
        13,
        "is a feature of 'grp' and",
    ),
    (
        "on-demand parameter one slip away from a source feature",
        GROUP + OK_FEATURE.replace("fine", "monthly_spend") + "@on_demand(Integral, sources=[g], "
        'description="x")\ndef od(monthly_spnd: int) -> int:\n    return monthly_spnd\n',
        "FS113",
        9,
        "parameter 'monthly_spnd' is no feature of its sources ('grp'), so it would be a "
        "request field every caller must send; did you mean 'monthly_spend'",
    ),
    (
        "too many features",
        GROUP
        + "".join(
            f'@g.feature(Integral, description="x", name="f{i}")\ndef f{i}(x: int) -> int:\n'
            "    return x\n"
            for i in range(2500)
        ),
        "FS201",
        5,
        "SageMaker allows at most 2500",
    ),
    ("no features", GROUP, "FS201", 5, "declares no features"),
    (
        "group description too long",
        GROUP.replace('description="d"', 'description="' + "d" * 129 + '"') + OK_FEATURE,
        "FS202",
        5,
        "129 characters; the limit is 128",
    ),
    (
        "feature description too long",
        GROUP + f'@g.feature(Integral, description="{"x" * 256}")\n'
        "def f(x: int) -> int:\n    return x\n",
        "FS202",
        6,
        "the limit is 255",
    ),
    (
        "too many tags",
        GROUP.replace(
            'description="d")', 'description="d", tags={f"k{i}": "v" for i in range(51)})'
        )
        + OK_FEATURE,
        "FS203",
        5,
        "51 tags; the limit is 50",
    ),
    (
        "tag key too long",
        GROUP.replace('description="d")', 'description="d", tags={"k" * 129: "v"})') + OK_FEATURE,
        "FS203",
        5,
        "tag key",
    ),
    (
        "tag value too long",
        GROUP.replace('description="d")', 'description="d", tags={"k": "v" * 257})') + OK_FEATURE,
        "FS203",
        5,
        "value must be a string of at most 256",
    ),
    (
        "collection without InMemory",
        GROUP + '@g.feature(List(String), description="x")\n'
        "def f(x: list[str]) -> list[str]:\n    return x\n",
        "FS204",
        6,
        "only in InMemory online stores",
    ),
    (
        "two vectors",
        GROUP.replace('owner="o"', 'owner="o", online=Online(storage="InMemory")')
        + '@g.feature(Vector(3), description="x")\ndef v1(x: list[float]) -> list[float]:\n'
        '    return x\n@g.feature(Vector(3), description="x")\n'
        "def v2(x: list[float]) -> list[float]:\n    return x\n",
        "FS204",
        9,
        "more than one Vector",
    ),
    (
        "vector too large",
        GROUP.replace('owner="o"', 'owner="o", online=Online(storage="InMemory")')
        + '@g.feature(Vector(9000), description="x")\ndef v1(x: list[float]) -> list[float]:\n'
        "    return x\n",
        "FS204",
        6,
        "exceeds 8192",
    ),
    (
        "bad ttl",
        GROUP.replace('owner="o"', 'owner="o", online=Online(ttl="3 fortnights")') + OK_FEATURE,
        "FS205",
        5,
        "invalid duration '3 fortnights'",
    ),
    (
        "ttl without online",
        GROUP.replace('owner="o"', 'owner="o", online=Online(enabled=False, ttl="1d")')
        + OK_FEATURE,
        "FS205",
        5,
        "sets an online TTL but has no online store",
    ),
    (
        "no store",
        GROUP.replace('owner="o"', 'owner="o", online=False, offline=False') + OK_FEATURE,
        "FS206",
        5,
        "enables neither online nor offline",
    ),
    (
        "provisioned without units",
        GROUP.replace('owner="o"', 'owner="o", throughput=Throughput("Provisioned")') + OK_FEATURE,
        "FS206",
        5,
        "needs read_units between 1 and",
    ),
    (
        "provisioned with the InMemory online store",
        GROUP.replace(
            'owner="o"',
            'owner="o", online=Online(storage="InMemory"), '
            'throughput=Throughput("Provisioned", read_units=5, write_units=5)',
        )
        + OK_FEATURE,
        "FS206",
        5,
        "Provisioned throughput needs the Standard online store or none (InMemory is OnDemand",
    ),
    (
        "bad s3 uri",
        GROUP.replace('owner="o"', 'owner="o", offline=Offline(s3_uri="/tmp/x")') + OK_FEATURE,
        "FS207",
        5,
        "is not an s3:// URI",
    ),
    (
        "sensitive online",
        GROUP + '@g.feature(Integral, description="x", pii="sensitive")\n'
        "def f(x: int) -> int:\n    return x\n",
        "FS208",
        6,
        "PII class 'sensitive'",
    ),
]


@pytest.mark.parametrize(
    ("body", "code", "line", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule_reports_code_message_and_location(
    make_project: Callable[..., Path], body: str, code: str, line: int, fragment: str
) -> None:
    root = make_project({"featuredefs/defs.py": HEADER + body})
    result = check(root)
    matching = [d for d in result.diagnostics if d.code == code]
    rendered = "\n".join(d.render() for d in result.diagnostics)
    assert matching, f"expected {code}, got:\n{rendered}"
    hits = [d for d in matching if fragment in d.message]
    assert hits, rendered
    assert ("featuredefs/defs.py", line) in {(d.path, d.line) for d in hits}, rendered


def test_a_misspelt_group_in_feature_set_keys_gets_a_did_you_mean(
    make_project: Callable[..., Path],
) -> None:
    body = GROUP + OK_FEATURE + 'fs = FeatureSet("m", [fine], keys={"gpr": "customer_id"})\n'
    (diag,) = check(make_project({"featuredefs/defs.py": HEADER + body})).diagnostics
    assert diag.code == "FS109" and "keys name unknown group 'gpr'" in diag.message
    assert diag.hint == "did you mean 'grp'?"


@pytest.mark.parametrize("guess", ["stream", "bach"])
def test_a_guessed_source_constructor_says_which_exist(
    make_project: Callable[..., Path], guess: str
) -> None:
    """``Source.stream(...)`` (for ``Source.kinesis``) or a misspelt ``Source.batch`` is FS100
    naming the attribute, with the two constructors as the hint (not "'NoneType' object is not
    callable", which a dataclass default made of ``Source.stream``)."""
    body = (
        "from fsgen import Source\n"
        "customer = Entity('customer_id', String, description='c')\n"
        "g = FeatureGroup('grp', entity=customer, event_time='ts', owner='o', description='d',\n"
        f"                 sources=[Source.{guess}('x')])\n"
    )
    (diag,) = check(make_project({"featuredefs/defs.py": HEADER + body})).diagnostics
    assert diag.code == "FS100" and diag.line == 7  # the line of the call
    assert f"type object 'Source' has no attribute '{guess}'" in diag.message
    assert diag.hint == "a source is Source.batch(path) or Source.kinesis(stream_name)"


def test_duplicate_reports_both_places(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "featuredefs/a.py": HEADER + GROUP + OK_FEATURE,
            "featuredefs/b.py": HEADER + "from featuredefs.a import customer\n"
            'g = FeatureGroup("grp", entity=customer, event_time="ts", owner="o", '
            'description="d")\n' + OK_FEATURE,
        }
    )
    dups = [d for d in check(root).diagnostics if d.code == "FS101"]
    assert {(d.path, d.line) for d in dups} == {("featuredefs/a.py", 5), ("featuredefs/b.py", 5)}
    assert any(d.hint and "featuredefs/b.py:5" in d.hint for d in dups)


@pytest.mark.parametrize(
    ("later", "again_line"),
    [
        ("def fine(y: int) -> int:  # a helper reusing the name\n    return y\n", 9),
        ("fine = 3\n", 9),
        ('@g.feature(Integral, description="again")\ndef fine(z: int) -> int:\n    return z\n', 9),
        ("from os import path as fine\n", 9),
    ],
    ids=["helper-def", "assignment", "second-feature", "import"],
)
def test_a_feature_function_defined_again_is_fs115_with_both_places(
    make_project: Callable[..., Path], later: str, again_line: int
) -> None:
    """A module that defines a feature function and later binds its name again: generated code
    imports the name and would get the later object. The error says the name is defined twice,
    at both file:lines, and how to fix it -- not FS104's 'must be defined at module level'."""
    root = make_project({"featuredefs/defs.py": HEADER + GROUP + OK_FEATURE + later})
    diags = check(root).diagnostics
    rendered = "\n".join(d.render() for d in diags)
    assert not [d for d in diags if d.code == "FS104"], rendered
    (twice,) = [d for d in diags if d.code == "FS115"]
    assert (twice.path, twice.line) == ("featuredefs/defs.py", 6), rendered
    assert "'fine' is defined twice in 'featuredefs.defs'" in twice.message
    assert f"again at featuredefs/defs.py:{again_line}" in twice.message
    assert twice.hint and "rename one of the two" in twice.hint


def test_all_problems_reported_at_once_in_stable_order(make_project: Callable[..., Path]) -> None:
    body = GROUP.replace('owner="o"', 'owner=""') + (
        "@g.feature(Integral)\ndef f(x: int) -> str:\n    return x\n"
        '@g.feature(Integral, description="d")\ndef h(y) -> int:\n    return 1\n'
    )
    root = make_project({"featuredefs/defs.py": HEADER + body})
    first = check(root).diagnostics
    assert [d.code for d in first] == ["FS108", "FS107", "FS108", "FS104"]
    assert first == check(root).diagnostics


def test_valid_project_has_no_diagnostics(make_project: Callable[..., Path]) -> None:
    root = make_project({"featuredefs/defs.py": HEADER + GROUP + OK_FEATURE})
    result = check(root)
    assert result.diagnostics == []
    assert result.spec is not None
    assert result.spec.summary() == "1 feature group, 1 feature, 0 feature sets"


def test_a_duplicate_row_feature_is_reported_once_as_a_feature(
    make_project: Callable[..., Path],
) -> None:
    """Two row features of one name are one duplicate-feature pair, not also a duplicate
    aggregation (the group has no aggregation)."""
    body = (
        GROUP
        + OK_FEATURE
        + '@g.feature(Integral, description="x", name="fine")\n'
        + "def other(x: int) -> int:\n    return x\n"
    )
    root = make_project({"featuredefs/defs.py": HEADER + body})
    dups = [d for d in check(root).diagnostics if d.code == "FS101"]
    assert [d.message for d in dups] == ["duplicate feature in group 'grp' name 'fine'"] * 2


def test_an_import_failure_names_the_module_that_failed_not_the_one_importing_it(
    make_project: Callable[..., Path],
) -> None:
    """``a`` (sorted first) imports ``b``, which raises: one FS100, at b's line, naming b."""
    root = make_project(
        {
            "featuredefs/a.py": HEADER + "from featuredefs.b import g  # noqa: F401\n",
            "featuredefs/b.py": HEADER + GROUP + "raise RuntimeError('boom')\n",
        }
    )
    (diag,) = check(root).diagnostics
    assert (diag.code, diag.path, diag.line) == ("FS100", "featuredefs/b.py", 6)
    assert diag.message == "importing featuredefs.b failed: RuntimeError: boom"
