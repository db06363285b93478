"""Accounts and credentials: secrets, API keys bound to referrer whitelists, and their limits."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from taskd.callbacks import webhook_key
from taskd.errors import Unauthorized
from taskd.origins import Origin, OriginPattern
from taskd.records import Limits
from taskd.settings import AccountSettings
from taskd.signing import SIG, expired, signature_matches

UNKNOWN_ACCOUNT_KEY = hashlib.sha256(b"no such account").digest()


def digest(credential: str) -> bytes:
    # Credentials are looked up by digest: timing reveals nothing about the presented value.
    return hashlib.sha256(credential.encode()).digest()


@dataclass(frozen=True)
class Account:
    name: str
    referrers: tuple[OriginPattern, ...]
    limits: Limits
    max_tasks_per_request: int
    signing_keys: tuple[bytes, ...]
    webhook_key: bytes  # signs its tasks' callbacks

    def allows(self, origin: Origin) -> bool:
        return any(p.matches(origin) for p in self.referrers)


@dataclass(frozen=True)
class SignedQuery:
    """A GET whose query carries `account`, maybe `expires`, and `sig` over the rest.

    `paths`: the path as received, and as sent through a proxy that removes a prefix.
    """

    paths: tuple[str, ...]
    pairs: list[tuple[str, str]]

    def value(self, name: str) -> str | None:
        values = [v for k, v in self.pairs if k == name]
        return values[0] if len(values) == 1 else None


@dataclass(frozen=True)
class Credentials:
    """What a request presented: a secret, an API key with the request's origin, a signature."""

    secret: str | None = None
    api_key: str | None = None
    origin: Origin | None = None
    signed: SignedQuery | None = None


class Accounts:
    def __init__(self, settings: Mapping[str, AccountSettings]) -> None:
        self.by_secret: dict[bytes, Account] = {}
        self.by_api_key: dict[bytes, Account] = {}
        self.accounts: list[Account] = []
        self.by_name: dict[str, Account] = {}
        for name, conf in settings.items():
            account = Account(
                name=name,
                referrers=tuple(OriginPattern.parse(p) for p in conf.referrers),
                limits=Limits(conf.rate_per_minute, conf.max_pending),
                max_tasks_per_request=conf.max_tasks_per_request,
                signing_keys=tuple(
                    k.get_secret_value().encode() for k in [conf.secret, *conf.signing_keys]
                ),
                webhook_key=webhook_key(conf.callback_secret),
            )
            self.accounts.append(account)
            self.by_name[name] = account
            self.by_secret[digest(conf.secret.get_secret_value())] = account
            for key in conf.api_keys:
                self.by_api_key[digest(key.get_secret_value())] = account

    def authenticate(self, credentials: Credentials) -> Account:
        """The account the credentials belong to; Unauthorized otherwise."""
        if credentials.secret is not None:
            account = self.by_secret.get(digest(credentials.secret))
            if account is None:
                raise Unauthorized("invalid secret")
            return account
        if credentials.api_key is not None:
            account = self.by_api_key.get(digest(credentials.api_key))
            if account is None:
                raise Unauthorized("invalid API key")
            if credentials.origin is None:
                raise Unauthorized("an API key needs a Referer or Origin header")
            if not account.allows(credentials.origin):
                raise Unauthorized(f"referrer not allowed: {credentials.origin.serialize()}")
            return account
        if credentials.signed is not None:
            return self.verify(credentials.signed)
        raise Unauthorized("missing credentials: give a secret, an API key or a signature")

    def verify(self, signed: SignedQuery) -> Account:
        """A signed URL's account, if the signature is one of its keys' and has not expired."""
        name, sig = signed.value("account"), signed.value(SIG)
        if name is None or sig is None:
            raise Unauthorized("a signed URL needs exactly one account and one sig parameter")
        has_expired = expired(signed.pairs)
        if has_expired is None:
            raise Unauthorized("expires must be a unix time in seconds")
        account = self.by_name.get(name)
        keys = account.signing_keys if account else (UNKNOWN_ACCOUNT_KEY,)
        # Checked even for an unknown account, so timing does not tell which names exist.
        matches = any(signature_matches(keys, path, signed.pairs, sig) for path in signed.paths)
        if account is None or not matches:
            raise Unauthorized("invalid signature")
        if has_expired:
            raise Unauthorized("signed URL expired")
        return account

    def origin_allowed(self, origin: Origin) -> bool:
        """Whether any account whitelists `origin` (CORS for the creating endpoints)."""
        return any(account.allows(origin) for account in self.accounts)
