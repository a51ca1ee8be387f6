"""Pairing a reply connection without a token: only when certain (connections/pairing.py), on fakes."""
from dataclasses import dataclass

from connections.pairing import AMBIGUOUS_WAIT_S, TOKEN_GRACE_S, PendingReply, match_classic

HOST, OTHER = "127.0.0.1", "10.0.0.7"


@dataclass(eq=False)
class Session:
    name: str
    created: float
    order: int  # the accept loop's round
    host: str = HOST
    has_reply_connection: bool = False
    closed: bool = False


def reply(name, accepted, order, host=HOST, tokenless=True):
    return PendingReply(conn=name, host=host, accepted=accepted, order=order, tokenless=tokenless)


def pairs(decision):
    return {(r.conn, s.name) for r, s in decision.pairs}


def test_a_classic_client_is_paired_once_its_conversation_is_past_the_token_grace():
    a = Session("A", created=0.0, order=1)
    r = reply("rA", accepted=0.01, order=1)
    assert pairs(match_classic([r], [a], now=0.5)) == set()  # A may still send its own token
    assert pairs(match_classic([r], [a], now=TOKEN_GRACE_S + 0.1)) == {("rA", "A")}


def test_a_reply_connection_older_than_every_conversation_goes_to_none():
    """An idle socket held open before a client connects (the hijack) is closed, never attached."""
    attacker = reply("held", accepted=0.0, order=1)
    a = Session("A", created=1.0, order=20)
    decision = match_classic([attacker], [a], now=5.0)
    assert pairs(decision) == set()
    assert [r.conn for r, _ in decision.refused_replies] == ["held"]
    assert decision.refused_sessions == []


def test_a_reply_connection_from_another_host_is_not_paired():
    a = Session("A", created=0.0, order=1)
    decision = match_classic([reply("r", 0.1, 2, host=OTHER)], [a], now=3.0)
    assert pairs(decision) == set() and len(decision.refused_replies) == 1


def test_a_racing_second_reply_connection_makes_it_ambiguous_and_both_are_refused():
    a = Session("A", created=0.0, order=1)
    real, racer = reply("real", 0.01, 2), reply("racer", 0.02, 3)
    assert match_classic([real, racer], [a], now=TOKEN_GRACE_S + 0.5).pairs == []  # waits
    decision = match_classic([real, racer], [a], now=AMBIGUOUS_WAIT_S + 0.5)
    assert decision.pairs == []
    assert {r.conn for r, _ in decision.refused_replies} == {"real", "racer"}
    assert [s.name for s, _ in decision.refused_sessions] == ["A"]


def test_two_classic_clients_at_the_same_instant_are_refused_not_swapped():
    a, b = Session("A", 0.0, 1), Session("B", 0.01, 2)
    rb, ra = reply("rB", 0.02, 3), reply("rA", 0.03, 3)  # their reply connections in the other order
    assert match_classic([rb, ra], [a, b], now=2.0).pairs == []
    decision = match_classic([rb, ra], [a, b], now=AMBIGUOUS_WAIT_S + 1)
    assert decision.pairs == []
    assert {s.name for s, _ in decision.refused_sessions} == {"A", "B"}
    assert {r.conn for r, _ in decision.refused_replies} == {"rA", "rB"}


def test_classic_clients_one_after_the_other_are_each_paired_with_their_own():
    a, b = Session("A", 0.0, 1), Session("B", 0.5, 11)
    ra, rb = reply("rA", 0.01, 2), reply("rB", 0.51, 12)  # A's reply came before B's audio connection
    decision = match_classic([ra, rb], [a, b], now=0.5 + TOKEN_GRACE_S + 0.1)
    # rB came after both audio connections, but A is certainly rA's, which leaves B alone for rB
    assert pairs(decision) == {("rA", "A"), ("rB", "B")}


def test_a_token_client_still_connecting_blocks_the_guess_until_it_has_its_own():
    token_client, classic = Session("T", 0.0, 1), Session("C", 0.01, 2)
    rc = reply("rC", 0.02, 3)
    in_flight = reply("rT", 0.03, 3, tokenless=False)  # its token not read yet
    assert match_classic([rc, in_flight], [token_client, classic], now=1.5).pairs == []
    token_client.has_reply_connection = True  # its token arrived
    assert pairs(match_classic([rc], [token_client, classic], now=1.6)) == {("rC", "C")}


def test_a_client_accepted_one_round_after_a_reply_connection_counts_as_maybe_before_it():
    """The two ports' backlogs are drained one after the other: B's audio connection may have come before
    A's reply connection although it was accepted a round later. A guess would give B's reply to A."""
    a, b = Session("A", 0.0, 1), Session("B", 0.02, 3)
    rb = reply("rB", 0.01, 2)  # B's own, accepted before B itself
    decision = match_classic([rb], [a, b], now=AMBIGUOUS_WAIT_S + 1)
    assert decision.pairs == []
    assert {s.name for s, _ in decision.refused_sessions} == {"A", "B"}
