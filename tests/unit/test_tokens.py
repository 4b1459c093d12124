"""Signed tokens: what they carry, and tokens of another release during a rolling upgrade or a rollback."""
from __future__ import annotations

import pytest

from crmkit.errors import Unauthorized
from crmkit.web.auth import Caller, _serializer, issue_token, read_token


def test_a_token_reads_back_as_the_caller_it_was_issued_for():
    caller = Caller(id="u-1", username="li.na", role="sales", department="sales", generation=3)
    assert read_token("secret", issue_token("secret", caller), max_age=60) == caller


def test_a_token_of_a_newer_release_still_reads_and_one_of_an_older_release_too():
    newer = _serializer("secret").dumps({"id": "u-1", "username": "li.na", "role": "sales", "department": None,
                                         "generation": 2, "scope": "something later"})
    assert read_token("secret", newer, max_age=60) == Caller("u-1", "li.na", "sales", None, 2)
    older = _serializer("secret").dumps({"id": "u-1", "username": "li.na", "role": "sales", "department": None})
    assert read_token("secret", older, max_age=60).generation == 0


@pytest.mark.parametrize("data", [{"id": "u-1"}, ["u-1"], "u-1"])
def test_a_signed_token_without_a_caller_in_it_is_refused(data):
    with pytest.raises(Unauthorized):
        read_token("secret", _serializer("secret").dumps(data), max_age=60)
