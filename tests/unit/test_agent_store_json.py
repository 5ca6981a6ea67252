"""What the agent stores keep as JSON: an account's capacity only when it has
one (accounts stored before capacities existed still read), and a handoff
record's times exactly."""

from __future__ import annotations

import json

import pytest

from bot.handoff.ports import AgentAccount, HandoffRecord

# An account as stored before accounts had a capacity.
OLD_ACCOUNT = ('{"username": "ann", "display_name": "Ann", "role": "admin", '
               '"password_hash": "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA"}')


def test_an_account_stored_before_capacities_reads_as_the_default() -> None:
    account = AgentAccount.from_json(OLD_ACCOUNT)
    assert account == AgentAccount("ann", "Ann", "admin",
                                   "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA")
    assert account.capacity is None


def test_an_account_without_a_capacity_is_stored_as_before() -> None:
    account = AgentAccount.from_json(OLD_ACCOUNT)
    assert json.loads(account.to_json()) == json.loads(OLD_ACCOUNT)


@pytest.mark.parametrize("capacity", [0, 1, 12])
def test_a_capacity_is_kept_even_zero(capacity: int) -> None:
    account = AgentAccount("bob", "Bob", "agent", "hash", capacity=capacity)
    assert json.loads(account.to_json())["capacity"] == capacity
    assert AgentAccount.from_json(account.to_json()) == account


@pytest.mark.parametrize("record", [
    HandoffRecord(id="r1", agent="ann", agent_name="Ann", queued_at=1_800_000_000.123456,
                  claimed_at=1_800_000_010.000001, first_response_at=1_800_000_030.5,
                  closed_at=1_800_000_600.987654, csat=4),
    HandoffRecord(id="r2", agent="bob", agent_name="", queued_at=1.0, claimed_at=None,
                  first_response_at=None, closed_at=2.0),
], ids=["rated", "never-answered"])
def test_a_handoff_record_reads_back_the_same(record: HandoffRecord) -> None:
    assert HandoffRecord.from_json(record.to_json()) == record
