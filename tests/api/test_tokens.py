"""api/tokens.py: temporary tokens minted, verified and counted, with a clock the test moves."""

from __future__ import annotations

import pytest

from wirescribe.api.tokens import PREFIX, TemporaryTokens, TokenRefused, is_temporary


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(clock: Clock) -> TemporaryTokens:
    return TemporaryTokens("long-lived-s3cret", 3600, clock=clock)


def test_a_minted_token_verifies_until_it_expires(tokens: TemporaryTokens, clock: Clock) -> None:
    token, grant = tokens.mint(60)
    assert is_temporary(token) and token.startswith(PREFIX)
    assert "long-lived-s3cret" not in token
    assert tokens.verify(token, None) == grant
    assert grant.expires_at == clock.now + 60
    clock.now += 59.9
    tokens.verify(token, "https://any.example")  # no origin bound: any
    clock.now += 0.1
    with pytest.raises(TokenRefused, match="expired"):
        tokens.verify(token, None)


def test_ttl_is_capped(tokens: TemporaryTokens) -> None:
    with pytest.raises(ValueError):
        tokens.mint(3601)
    with pytest.raises(ValueError):
        tokens.mint(0)


def test_origin_binding(tokens: TemporaryTokens) -> None:
    token, _ = tokens.mint(60, origin="https://app.example")
    tokens.verify(token, "https://app.example")
    tokens.verify(token, "HTTPS://APP.EXAMPLE/")
    for origin in (None, "https://evil.example", "https://app.example.evil", "null"):
        with pytest.raises(TokenRefused, match="origin"):
            tokens.verify(token, origin)


def test_session_count_and_bounded_state(tokens: TemporaryTokens, clock: Clock) -> None:
    token, _ = tokens.mint(10, max_sessions=2)
    tokens.use(tokens.verify(token, None))
    tokens.use(tokens.verify(token, None))
    with pytest.raises(TokenRefused, match="2 session"):
        tokens.use(tokens.verify(token, None))
    unlimited, _ = tokens.mint(10)
    for _ in range(5):
        tokens.use(tokens.verify(unlimited, None))  # no count: nothing kept
    assert tokens.counted == 1
    clock.now += 11
    fresh, _ = tokens.mint(10, max_sessions=1)
    tokens.use(tokens.verify(fresh, None))
    assert tokens.counted == 1  # the expired token's entry went when a new one came


def test_the_count_map_is_bounded(clock: Clock) -> None:
    tokens = TemporaryTokens("k", 60, clock=clock, max_counted=3)
    for _ in range(3):
        tokens.use(tokens.mint(60, max_sessions=1)[1])
    with pytest.raises(TokenRefused, match="too many"):
        tokens.use(tokens.mint(60, max_sessions=1)[1])
    clock.now += 61
    tokens.use(tokens.mint(60, max_sessions=1)[1])  # the expired ones pruned
    assert tokens.counted == 1


def test_forged_tampered_and_foreign_tokens_are_refused(tokens: TemporaryTokens) -> None:
    token, _ = tokens.mint(60, max_sessions=1)
    body, _, signature = token.rpartition(".")
    other, _ = TemporaryTokens("another-server", 3600).mint(60)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for bad in (
        f"{body}.{flipped}",  # wrong signature
        f"{body}x.{signature}",  # claims changed
        other,  # signed with another STT_TOKEN
        PREFIX + "e30.",  # "{}" unsigned
        PREFIX,
        "wst1..",
    ):
        with pytest.raises(TokenRefused, match="not valid"):
            tokens.verify(bad, None)
