"""Secrets from the environment read as their reference everywhere but reveal()."""

from __future__ import annotations

import copy
import json
import pickle

from arbframe.secrets import Secret, reveal


def test_a_secret_reads_as_its_reference():
    secret = Secret("${API_KEY}", "s3cr3t-value")
    shown = [str(secret), repr(secret), f"{secret}", "%s" % secret, json.dumps({"k": secret})]
    assert all("s3cr3t" not in text for text in shown)
    assert all("${API_KEY}" in text for text in shown)
    assert reveal(secret) == "s3cr3t-value" and secret.reveal() == "s3cr3t-value"


def test_a_pickled_secret_keeps_only_the_reference():
    data = pickle.dumps({"api_key": Secret("${API_KEY}", "s3cr3t-value")})
    assert b"s3cr3t" not in data
    assert pickle.loads(data) == {"api_key": "${API_KEY}"}


def test_a_copied_secret_still_reveals():
    secret = Secret("${API_KEY}", "s3cr3t-value")
    assert copy.deepcopy({"k": secret})["k"].reveal() == "s3cr3t-value"
    assert reveal("") is None and reveal(None) is None and reveal("plain") == "plain"
