"""A ledger of __slots__ accounts with computed properties, frozen dataclass entries, enums, dates,
tuple-keyed exchange rates and an audit number far beyond 4300 digits."""

import datetime
import enum
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple


class Status(enum.Enum):
    ACTIVE = "active"
    FROZEN = "frozen"


@dataclass(frozen=True, slots=True)
class Entry:
    """One posting: the day, a signed amount in cents, and a memo."""

    day: datetime.date
    amount_cents: int
    memo: str


class Account:
    """An account; its balance is computed from cents, not stored."""

    __slots__ = ("__weakref__", "_cents", "account_id", "entries", "owner", "status")

    def __init__(self, account_id: str, owner: str, cents: int) -> None:
        self.account_id = account_id
        self.owner = owner
        self._cents = cents
        self.status = Status.ACTIVE
        self.entries: List[Entry] = []

    @property
    def balance(self) -> float:
        return self._cents / 100

    def post(self, day: datetime.date, cents: int, memo: str) -> None:
        self._cents += cents
        self.entries.append(Entry(day, cents, memo))


class Ledger:
    def __init__(self, config: Optional[dict] = None) -> None:
        config = config or {}
        self.today = datetime.date.fromisoformat(config.get("as_of", "2025-01-01"))
        self.accounts: Dict[str, Account] = {
            a["account_id"]: Account(a["account_id"], a["owner"], round(a["balance"] * 100))
            for a in config.get("book", [])}
        self.rates: Dict[Tuple[str, str], float] = {("EUR", "USD"): 1.25, ("USD", "EUR"): 0.8}
        self.memos: Set[str] = set()
        self.limits = {"daily_cents": float("inf"), "min_balance_cents": 0}
        self.audit = 7 ** 6000  # a checksum of every posting, far past Python's 4300-digit str() limit

    def _post(self, account: Account, cents: int, memo: str) -> None:
        account.post(self.today, cents, memo)
        self.memos.add(memo)
        self.audit = self.audit * 31 + abs(cents)

    def get_account(self, account_id: str) -> dict:
        """An account's owner, balance and status."""
        account = self.accounts.get(account_id)
        if account is None:
            return {"success": False, "error": f"no account {account_id}"}
        return {"success": True, "data": {"owner": account.owner, "balance": account.balance,
                                          "status": account.status.value}}

    def deposit(self, account_id: str, amount: float, memo: str = "deposit") -> dict:
        """Deposit an amount into an active account."""
        account = self.accounts.get(account_id)
        if account is None or account.status is not Status.ACTIVE or amount <= 0:
            return {"success": False, "error": "deposits need an active account and a positive amount"}
        self._post(account, round(amount * 100), memo)
        return {"success": True, "message": f"deposited {amount:.2f} into {account_id}"}

    def transfer(self, from_id: str, to_id: str, amount: float, memo: str = "transfer") -> dict:
        """Move an amount between two active accounts; the source may not go below the minimum balance."""
        source, target = self.accounts.get(from_id), self.accounts.get(to_id)
        if source is None or target is None or Status.FROZEN in (source.status, target.status):
            return {"success": False, "error": "both accounts must exist and be active"}
        cents = round(amount * 100)
        if cents <= 0 or source._cents - cents < self.limits["min_balance_cents"]:
            return {"success": False, "error": "insufficient funds"}
        self._post(source, -cents, memo)
        self._post(target, cents, memo)
        return {"success": True, "message": f"moved {amount:.2f} from {from_id} to {to_id}"}

    def freeze_account(self, account_id: str) -> dict:
        """Freeze an account: no postings until it is unfrozen."""
        account = self.accounts.get(account_id)
        if account is None:
            return {"success": False, "error": f"no account {account_id}"}
        account.status = Status.FROZEN
        return {"success": True, "message": f"{account_id} frozen"}

    def list_entries(self, account_id: str) -> dict:
        """An account's postings, oldest first."""
        account = self.accounts.get(account_id)
        if account is None:
            return {"success": False, "error": f"no account {account_id}"}
        return {"success": True, "data": [{"day": e.day.isoformat(), "amount": e.amount_cents / 100, "memo": e.memo}
                                          for e in account.entries]}

    def convert(self, amount: float, from_currency: str, to_currency: str) -> dict:
        """Convert an amount between EUR and USD at the ledger's rates."""
        rate = self.rates.get((from_currency, to_currency))
        if rate is None:
            return {"success": False, "error": f"no rate from {from_currency} to {to_currency}"}
        return {"success": True, "data": round(amount * rate, 2)}
