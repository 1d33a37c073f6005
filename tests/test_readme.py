"""The README's generated parts match the code: the severity table (severity.TABLE) and the central rule counts."""

from __future__ import annotations

import re
from pathlib import Path

from orgalerts.model import routes, severity

README = Path(__file__).parent.parent / "README.md"
ALL_SOURCES = ("iam", "organizations", "identity-center", "root-activity", "sts")
# With the shipped defaults: account_changes and tamper_alerts on, one target OU.
OTHER_CENTRAL_RULES = 3  # the account-change rule, the tamper rule and its anon shape


def _block(name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)\n<!-- {name}:end -->", README.read_text(), re.DOTALL)
    assert match, name
    return match.group(1)


def rule_count_rows() -> str:
    rows = []
    for sources in (("iam",), ALL_SOURCES):
        carve = routes.Carve(("ou-ab12-cd34ef56",), False) if "organizations" in sources else None
        count = len(routes.routes(sources, skip_role_prefix="orgalerts-", carve=carve))
        label = ", ".join(sources)
        rows.append(f"| `[{label}]` | {count} | {OTHER_CENTRAL_RULES} | {count + OTHER_CENTRAL_RULES} |")
    return "\n".join(rows)


def test_readme__severity_table__generated_from_the_classification_table() -> None:
    assert _block("severity-table") == severity.readme_table()


def test_readme__rule_counts__as_the_routes_build_them() -> None:
    table = _block("rule-counts").splitlines()
    assert "\n".join(table[2:]) == rule_count_rows()
